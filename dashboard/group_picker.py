"""The run table's Group picker: the params to group by and the metric the group rows summarise,
each a <select> of the chosen keys plus a bounded few others (the Columns picker's rules, in
key_lists.py). "Find" narrows both by a substring, on the server (the `find_group` parameter,
without JavaScript) or through `runs/columns.json` as the user types (static/js/run_table.js)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.selectors import KeyMatches, KeySets

from .key_lists import NOUNS, PICKER_KEYS_SHOWN, ListedKey, bounded_keys, contains, lists_note, more_text

GROUP_KEY_KINDS = ("param", "metric")  # what the two selects list: group_by, group_metric


@dataclass(frozen=True)
class GroupSelect:
    kind: str  # the key set it lists
    options: list[ListedKey]  # the chosen keys first, in the URL's order, then the others in key order
    more: int  # keys that match (or exist, without a search) and are not listed
    searching: bool = False

    @property
    def more_text(self) -> str:
        return more_text(self.more, noun=NOUNS[self.kind], searching=self.searching) if self.more else ""

    @property
    def matching(self) -> int:
        return sum(option.matching for option in self.options)


@dataclass(frozen=True)
class GroupPicker:
    by: GroupSelect  # group_by: params, several
    metric: GroupSelect  # group_metric: one metric, or none
    search: str
    url: str  # runs/columns.json for these experiments and kinds; the script adds `q`
    limit: int = PICKER_KEYS_SHOWN

    @property
    def truncated_note(self) -> str:
        if self.search or not (self.by.more or self.metric.more):
            return ""
        return lists_note(self.limit)

    @property
    def nothing_found(self) -> bool:
        return bool(self.search) and not (self.by.matching or self.metric.matching)


def group_picker(
    *,
    key_sets: KeySets,
    group_by: Sequence[str],
    metric: str,
    search: str,
    matches: dict[str, KeyMatches] | None,
    url: str,
    limit: int = PICKER_KEYS_SHOWN,
) -> GroupPicker:
    """The picker for the grouping the URL holds. Without a search each select lists its chosen
    keys and the first `limit` others; with one, `matches` (find_experiment_keys' answer for it)
    gives the first matching keys, listed after the chosen ones, which are always listed (a
    submitted picker must not drop them), whether they match or not, logged or not."""
    searching = bool(search) and matches is not None

    def select(kind: str, keys: list[str], chosen: Sequence[str]) -> GroupSelect:
        found = matches.get(kind, KeyMatches()) if searching and matches is not None else None
        listed = bounded_keys(keys=keys, chosen=set(chosen), search=search, found=found, limit=limit)
        first = [ListedKey(key, True, matching=not searching or contains(search, key)) for key in chosen]
        others = [item for item in listed.keys if not item.chosen]
        return GroupSelect(kind, first + others, more=listed.more, searching=searching)

    return GroupPicker(
        by=select("param", key_sets.params, group_by),
        metric=select("metric", key_sets.metrics, [metric] if metric else []),
        search=search,
        url=url,
        limit=limit,
    )
