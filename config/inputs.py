"""Plain values that more than one app's services take, already parsed from their wire format.

A tag is the same key/value pair on a run, an experiment, a logged model, a registered model and a
model version, so the tracker and the registry both take this one type; it lives here so that the
registry need not import the tracker's services for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagInput:
    key: str
    value: str
