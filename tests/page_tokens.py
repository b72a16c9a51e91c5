"""Page tokens written by hand, as a hostile client would, for tests that the server refuses
what no column can hold. A sorted search's tokens start with its sort's signature; a forged
token carries the right one, so that it is refused for its values and not for its sort."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from tracker.models import Experiment, Run
from tracker.search import apply_experiment_search, apply_search


def forged_token(raw: str, *, signature: str | None = None) -> str:
    """A token holding the JSON list `raw`, after `signature` when there is one."""
    values = json.loads(raw)
    if signature is not None:
        values = [signature, *values]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def run_sort(order_by: Sequence[str] = ()) -> str:
    """The signature of a run search's sort."""
    return apply_search(Run.objects.none(), filter_string=None, order_by=order_by).signature


def experiment_sort(order_by: Sequence[str] = ()) -> str:
    """The signature of an experiment search's sort."""
    return apply_experiment_search(Experiment.objects.none(), filter_string=None, order_by=order_by).signature
