"""The run table's Columns picker: the columns shown, plus a bounded few of the others per kind.

An experiment may have logged tens of thousands of keys, three picker entries per metric; a
checkbox for each made pages of megabytes. The picker lists every chosen column (so submitting it
keeps them) and at most PICKER_KEYS_SHOWN keys per kind besides (the rules of key_lists.py,
which the Group picker shares); "Find a column" narrows it by a
substring, on the server (the `find_column` parameter, without JavaScript) or through
`runs/columns.json` as the user types (static/js/run_table.js applies the same rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.selectors import KeyMatches

from .key_lists import NOUNS, PICKER_KEYS_SHOWN, bounded_keys, contains, lists_note, more_text
from .tables import KIND_ORDER, ColumnChoice

__all__ = ["PICKER_KEYS_SHOWN", "ColumnPicker", "PickerEntry", "PickerGroup", "column_picker"]

LEGENDS = {
    "attr": "Run",
    "metric": "Metrics (latest)",
    "metric_min": "Metrics (min)",
    "metric_max": "Metrics (max)",
    "param": "Params",
    "tag": "Tags",
    "dataset": "Datasets",
}
# The key set each group of the picker lists: a metric's three columns share the metric keys.
KEY_KIND = {"metric": "metric", "metric_min": "metric", "metric_max": "metric", "param": "param",
            "tag": "tag", "dataset": "dataset"}  # fmt: skip


@dataclass(frozen=True)
class PickerEntry:
    """A checkbox; `hidden` when it does not match the search (a chosen one is still submitted)."""

    choice: ColumnChoice
    hidden: bool = False

    @property
    def text(self) -> str:
        return self.choice.label if self.choice.kind == "attr" else self.choice.key


@dataclass(frozen=True)
class PickerGroup:
    kind: str
    entries: list[PickerEntry]
    more: int  # keys of this kind that match (or exist, without a search) and are not listed
    searching: bool = False

    @property
    def legend(self) -> str:
        return LEGENDS[self.kind]

    @property
    def key_kind(self) -> str:
        return KEY_KIND.get(self.kind, "")

    @property
    def noun(self) -> str:
        return NOUNS.get(self.key_kind, "")

    @property
    def more_text(self) -> str:
        """The note under a group that lists only some of its keys (the script writes the same)."""
        return more_text(self.more, noun=self.noun, searching=self.searching)

    @property
    def empty(self) -> bool:
        """Nothing to see: no visible entry and nothing more to find (hidden ones still count)."""
        return not self.more and all(entry.hidden for entry in self.entries)


@dataclass(frozen=True)
class ColumnPicker:
    groups: list[PickerGroup]
    search: str
    url: str  # runs/columns.json for these experiments; the script adds `q`
    limit: int = PICKER_KEYS_SHOWN

    @property
    def chosen_out_of_sight(self) -> int:
        return sum(entry.hidden and entry.choice.shown for group in self.groups for entry in group.entries)

    @property
    def truncated_note(self) -> str:
        """Said beside the search box when a list stops short (the per-group notes are at the
        bottom of lists that scroll); the script writes the same."""
        if self.search or not any(group.more for group in self.groups):
            return ""
        return lists_note(self.limit)

    @property
    def nothing_found(self) -> bool:
        return bool(self.search) and all(group.empty for group in self.groups)


def column_picker(
    *,
    choices: list[ColumnChoice],
    search: str,
    matches: dict[str, KeyMatches] | None,
    url: str,
    limit: int = PICKER_KEYS_SHOWN,
) -> ColumnPicker:
    """The picker for `choices` (choose_columns' list, in key order within each kind).

    Without a search a group lists its first `limit` keys and every chosen one. With one,
    `matches` (find_experiment_keys' answer for the search, `limit` per kind) gives the first
    matching keys; a group lists those and every chosen one, the chosen ones that do not match
    out of sight, so a submitted picker never drops a column.
    """
    by_kind: dict[str, list[ColumnChoice]] = {kind: [] for kind in KIND_ORDER}
    for choice in choices:
        by_kind[choice.kind].append(choice)
    groups = []
    for kind, of_kind in by_kind.items():
        if not of_kind:
            continue
        if kind == "attr":  # seven at most: all listed, those not matching out of sight
            entries = [PickerEntry(c, hidden=bool(search) and not contains(search, c.label)) for c in of_kind]
            groups.append(PickerGroup(kind, entries, more=0, searching=bool(search)))
            continue
        found = matches.get(KEY_KIND[kind], KeyMatches()) if search and matches is not None else None
        listed = bounded_keys(
            keys=[c.key for c in of_kind],
            chosen={c.key for c in of_kind if c.shown},
            search=search,
            found=found,
            limit=limit,
        )
        by_key = {c.key: c for c in of_kind}
        entries = [PickerEntry(by_key[item.key], hidden=not item.matching) for item in listed.keys]
        groups.append(PickerGroup(kind, entries, more=listed.more, searching=found is not None))
    return ColumnPicker(groups=groups, search=search, url=url, limit=limit)
