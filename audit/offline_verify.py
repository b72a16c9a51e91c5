"""Verify an audit export with no server and no database: only the export, the public key and
the checkpoint file(s) kept outside the database.

    python -m audit.offline_verify export.jsonl --public-key audit-key.pub --checkpoints checkpoints.jsonl

Imports nothing from Django (only `cryptography`), so an auditor can run it from a copy of this
package. Exit status: 0 intact, 1 broken or a forged checkpoint, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from .chain import ChainEvent, ExportFormatError, TrustedHead, event_from_record, record_from_csv, walk_chain
from .checkpoint_format import CheckpointFormatError, key_id_of, load_public_key_pem, parse_checkpoint
from .hashing import GENESIS_HASH

INTACT, BROKEN, UNREADABLE = 0, 1, 2


class InputError(Exception):
    """Input the verifier cannot read; the message names the file and line."""


def _read_export(path: Path) -> Iterator[ChainEvent]:
    """Events one at a time (constant memory); CSV by extension, JSON lines otherwise."""
    with path.open(encoding="utf-8", newline="") as file:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(file)
            for record in reader:
                yield _event(path, record_from_csv(record), line=reader.line_num, json_cells=True)
            return
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path} line {number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path} line {number}: not a JSON object")
            yield _event(path, record, line=number, json_cells=False)


def _event(path: Path, record: dict, *, line: int, json_cells: bool) -> ChainEvent:
    try:
        return event_from_record(record, json_cells=json_cells)
    except ExportFormatError as error:
        raise InputError(f"{path} line {line}: {error}") from None


def _read_checkpoints(paths: list[Path], keys: dict) -> tuple[list[TrustedHead], list[str]]:
    """Every checkpoint line, signature checked; returns the trusted heads and the forgeries."""
    trusted, forged = [], []
    for path in paths:
        with path.open(encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                label = f"{path.name} line {number}"
                try:
                    checkpoint = parse_checkpoint(line)
                except CheckpointFormatError as error:
                    raise InputError(f"{path} line {number}: {error}") from None
                problem = checkpoint.signature_problem(keys)
                if problem is not None:
                    forged.append(f"{label}: {problem}")
                    continue
                trusted.append(TrustedHead(label, checkpoint.main_head))
    return trusted, forged


def verify(export: Path, public_keys: list[Path], checkpoint_files: list[Path]) -> tuple[int, str]:
    """The exit status and the one-line verdict."""
    keys = {}
    for key_path in public_keys:
        key = load_public_key_pem(key_path.read_bytes())
        keys[key_id_of(key)] = key
    trusted, forged = _read_checkpoints(checkpoint_files, keys)
    if forged:
        return BROKEN, f"BROKEN: checkpoint {forged[0]}"
    events = _read_export(export)
    first = next(events, None)
    if first is None:
        return UNREADABLE, f"{export}: no events"
    # The chain's first event links to the genesis hash (its number may be above 1: numbers that
    # rolled back are skipped); an export that starts mid-chain is anchored by a checkpoint at
    # its first sequence.
    from_start = first.previous_hash == GENESIS_HASH
    if not from_start and not any(t.head.sequence == first.sequence for t in trusted):
        return UNREADABLE, (
            f"{export}: starts at event #{first.sequence}, and no checkpoint signs #{first.sequence} "
            "to anchor it; export from the start of the chain or from a checkpointed sequence"
        )
    report = walk_chain(
        itertools.chain([first], events),
        first_sequence=first.sequence,
        previous_hash=GENESIS_HASH if from_start else None,
        checkpoints=[t for t in trusted if t.head.sequence >= first.sequence],
    )
    if report.broken is not None:
        return BROKEN, (
            f"BROKEN at event #{report.broken.sequence}: {report.broken.reason} "
            f"({report.checked} events verified before it)"
        )
    verdict = (
        f"INTACT: events #{first.sequence}-#{report.last_sequence} verified ({report.checked}); "
        f"signed checkpoints matched: {report.checkpoints_checked}"
    )
    if not report.checkpoints_checked:
        verdict += " (without a signed checkpoint, a chain recomputed from scratch would pass too)"
    return INTACT, verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.offline_verify", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("export", type=Path, help="the audit export: .csv, or JSON lines")
    parser.add_argument(
        "--public-key", type=Path, action="append", required=True, help="PEM; repeat for retired keys"
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint file (JSON lines); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        status, verdict = verify(args.export, args.public_key, args.checkpoints)
    except (InputError, CheckpointFormatError, OSError, UnicodeDecodeError, csv.Error) as error:
        print(f"UNREADABLE: {error}", file=sys.stderr)
        return UNREADABLE
    print(verdict, file=sys.stdout if status == INTACT else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
