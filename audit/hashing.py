"""The canonical form an event is hashed in; shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    *,
    sequence: int,
    created_at: datetime,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    previous_hash: str,
) -> str:
    body = canonical_json(
        {
            "sequence": sequence,
            "created_at": created_at.isoformat(timespec="microseconds"),
            "actor": actor_name,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
        }
    )
    return hashlib.sha256((body + previous_hash).encode("utf-8")).hexdigest()
