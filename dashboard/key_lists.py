"""What the run table's Columns and Group pickers share: a bounded few keys per list, the chosen
ones always among them, and the notes saying how many more there are.

An experiment may have logged tens of thousands of keys; a checkbox or an <option> for each made
pages of megabytes. A list holds its chosen keys and at most PICKER_KEYS_SHOWN others: the first
in key order or, while the user searches, the first containing the text
(`selectors.find_experiment_keys`, on the server or through runs/columns.json).
static/js/run_table.js applies the same rules and writes the same notes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tracker.selectors import KeyMatches

# Keys of each kind a list shows besides the chosen ones (a search's first matches).
PICKER_KEYS_SHOWN = 50
NOUNS = {"metric": "metrics", "param": "params", "tag": "tags", "dataset": "datasets"}


def contains(search: str, text: str) -> bool:
    return search.casefold() in text.casefold()


@dataclass(frozen=True)
class ListedKey:
    key: str
    chosen: bool
    matching: bool = True  # False for a chosen key the search does not match: kept, not a match


@dataclass(frozen=True)
class KeyList:
    keys: list[ListedKey]  # in key order
    more: int  # keys that match (or exist, without a search) and are not listed


def bounded_keys(
    *, keys: Sequence[str], chosen: Collection[str], search: str, found: KeyMatches | None, limit: int
) -> KeyList:
    """`keys` (one kind's, in key order) as a picker lists them.

    Without a search (`found` None): every chosen key and the first `limit`. With one, `found`
    (find_experiment_keys' answer for this kind, `limit` keys at most): the found keys and every
    chosen one, those not matching marked so, so that a submitted picker never drops a choice.
    """
    if found is None:
        listed = [ListedKey(key, key in chosen) for i, key in enumerate(keys) if key in chosen or i < limit]
        return KeyList(listed, more=len(keys) - len(listed))
    first = set(found.keys)
    listed = [
        ListedKey(key, key in chosen, matching=key in first or contains(search, key))
        for key in keys
        if key in chosen or key in first
    ]
    visible = sum(item.matching for item in listed)
    return KeyList(listed, more=max(0, found.total - visible))


def more_text(more: int, *, noun: str, searching: bool) -> str:
    """The note under a list that shows only some of its keys."""
    if searching:
        return f"and {more:,} more matching — type more to narrow them"
    return f"and {more:,} more {noun} — type to find them"


def lists_note(limit: int) -> str:
    """Said beside a search box while a list stops short (the notes under lists may be out of view)."""
    return f"Each list shows its first {limit} keys and the chosen ones: type to find the others."
