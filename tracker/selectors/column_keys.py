"""The run table's Columns picker, searched: the key names some experiments' runs have logged
that contain a text, a bounded few per kind, from the same key sets the table reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count

from config.exceptions import InvalidInput
from tracker.models import ExperimentKey

# A search answers at most this many keys of each kind: an experiment may hold tens of thousands,
# and a picker is read by a person.
MAX_KEY_MATCHES = 500
KEY_KINDS = ("metric", "param", "tag", "dataset")


@dataclass(frozen=True)
class KeyMatches:
    """The first matching keys of one kind (in key order), and how many match in all."""

    keys: list[str] = field(default_factory=list)
    total: int = 0


def find_experiment_keys(
    *, experiment_ids: Sequence[int], text: str, limit: int, kinds: Sequence[str] = KEY_KINDS
) -> dict[str, KeyMatches]:
    """Keys of the experiments (already checked readable) containing `text`, case-insensitively
    (any key for an empty text): per kind the first `limit` in key order and the number of all.

    One query counts every kind; one more per kind with a match reads its first keys. A key
    logged in several of the experiments counts once.
    """
    if not 1 <= limit <= MAX_KEY_MATCHES:
        raise InvalidInput(f"must be between 1 and {MAX_KEY_MATCHES}", field="limit")
    unknown = sorted(set(kinds) - set(KEY_KINDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} is not one of {', '.join(KEY_KINDS)}", field="kind")
    matching = ExperimentKey.objects.filter(experiment_id__in=experiment_ids, kind__in=kinds)
    if text:
        matching = matching.filter(key__icontains=text)  # LIKE's % and _ in `text` are escaped
    totals = dict(matching.order_by().values_list("kind").annotate(total=Count("key", distinct=True)))
    found = {}
    for kind in kinds:
        total = totals.get(kind, 0)
        keys: list[str] = []
        if total:
            first = matching.filter(kind=kind).values_list("key", flat=True).distinct().order_by("key")
            # The database's order picks them; Python's orders them, as the key sets are ordered.
            keys = sorted(first[:limit])
        found[kind] = KeyMatches(keys=keys, total=total)
    return found
