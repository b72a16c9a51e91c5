"""An export verifies with only the public key and the checkpoint file: no server, no database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts.permissions import SYSTEM_READER
from audit.checkpoint_format import MAIN_CHAIN, Head, public_key_pem, sign_heads
from audit.checkpoints import public_key_text
from audit.export import csv_lines, jsonl_lines
from audit.models import AuditCheckpoint, AuditEvent
from audit.offline_verify import main, verify
from audit.selectors import EventFilter, export_events
from audit.services import make_checkpoint
from tracker.services import create_experiment

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def trail(contributor, tmp_path):
    """A chain with two checkpoints, exported as the API would, plus the key and checkpoint file."""
    for name in ("a", "b", "c"):
        create_experiment(actor=contributor, name=name)
    make_checkpoint()
    for name in ("d", "e"):
        create_experiment(actor=contributor, name=name)
    make_checkpoint()
    (tmp_path / "key.pub").write_text(public_key_text())
    _write_checkpoints(tmp_path / "checkpoints.jsonl")
    _export(tmp_path / "export.jsonl")
    return tmp_path


def _write_checkpoints(path: Path) -> None:
    rows = AuditCheckpoint.objects.order_by("sequence")
    path.write_text("".join(row.document + "\n" for row in rows))


def _export(path: Path, filters: EventFilter | None = None) -> None:
    lines = csv_lines if path.suffix == ".csv" else jsonl_lines
    events = export_events(filters=filters or EventFilter(), reader=SYSTEM_READER)
    path.write_text("".join(lines(events)), newline="")


def _verify(folder: Path, export: str = "export.jsonl") -> tuple[int, str]:
    return verify(folder / export, [folder / "key.pub"], [folder / "checkpoints.jsonl"])


def _edit_lines(path: Path, edit) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in edit(records)))


def test_an_intact_export_verifies(trail):
    total = AuditEvent.objects.count()

    assert _verify(trail) == (
        0,
        f"INTACT: events #1-#{total} verified ({total}); signed checkpoints matched: 2",
    )


def test_without_checkpoints_the_verdict_says_what_it_cannot_prove(trail):
    total = AuditEvent.objects.count()

    assert verify(trail / "export.jsonl", [trail / "key.pub"], []) == (
        0,
        f"INTACT: events #1-#{total} verified ({total}); signed checkpoints matched: 0 "
        "(without a signed checkpoint, a chain recomputed from scratch would pass too)",
    )


def test_a_csv_export_verifies_too(trail):
    _export(trail / "export.csv")
    total = AuditEvent.objects.count()

    assert _verify(trail, "export.csv") == (
        0,
        f"INTACT: events #1-#{total} verified ({total}); signed checkpoints matched: 2",
    )


def test_an_edited_line_is_named(trail):
    def edit(records):
        records[1]["actor"] = "mallory"
        return records

    _edit_lines(trail / "export.jsonl", edit)

    assert _verify(trail) == (
        1,
        "BROKEN at event #2: content does not match its hash (edited) (1 events verified before it)",
    )


def test_a_rewritten_and_rehashed_export_fails_against_the_checkpoint(trail):
    from audit.chain import event_from_record, export_record
    from audit.hashing import event_hash

    first_checkpoint = AuditCheckpoint.objects.order_by("sequence").first()

    def rewrite(records):
        previous = records[0]["previous_hash"]
        for record in records:
            if record["sequence"] == 2:
                record["actor"] = "mallory"
            event = event_from_record(record)._replace(previous_hash=previous)
            fields = event._asdict()
            fields.pop("hash")
            event = event._replace(hash=event_hash(**fields))
            record.update(export_record(event))
            previous = event.hash
        return records

    _edit_lines(trail / "export.jsonl", rewrite)
    status, verdict = _verify(trail)

    assert status == 1
    assert verdict.startswith(
        f"BROKEN at event #{first_checkpoint.sequence}: "
        "hash differs from the one checkpoints.jsonl line 1 signed"
    )


def test_an_export_cut_short_of_the_newest_checkpoint_is_broken(trail):
    newest = AuditCheckpoint.objects.order_by("sequence").last()
    _edit_lines(trail / "export.jsonl", lambda records: records[:-2])

    assert _verify(trail) == (
        1,
        f"BROKEN at event #{newest.sequence - 1}: event is missing: checkpoints.jsonl line 2 signed the "
        f"chain up to #{newest.sequence} ({newest.sequence - 2} events verified before it)",
    )


def test_a_forged_checkpoint_line_fails_its_signature(trail):
    head = AuditEvent.objects.order_by("-sequence").first()
    forged = sign_heads(
        private_key=Ed25519PrivateKey.generate(),
        heads=[Head(MAIN_CHAIN, head.sequence, head.hash)],
        signed_at="2026-01-01T00:00:00+00:00",
    )
    document = json.loads(forged.as_json())
    document["payload"]["key_id"] = AuditCheckpoint.objects.first().key_id
    with (trail / "checkpoints.jsonl").open("a") as file:
        file.write(json.dumps(document) + "\n")

    assert _verify(trail) == (
        1,
        "BROKEN: checkpoint checkpoints.jsonl line 3: signature does not verify (forged or altered)",
    )


def test_checkpoints_are_checked_against_the_public_key_given_not_one_they_name(trail):
    (trail / "key.pub").write_text(public_key_pem(Ed25519PrivateKey.generate().public_key()))

    status, verdict = _verify(trail)

    assert status == 1
    assert verdict.startswith("BROKEN: checkpoint checkpoints.jsonl line 1: signed with key ed25519:")


def test_an_export_starting_at_a_checkpoint_is_anchored_by_it(trail):
    anchor = AuditCheckpoint.objects.order_by("sequence").first()
    _edit_lines(trail / "export.jsonl", lambda records: records[anchor.sequence - 1 :])
    total = AuditEvent.objects.count()

    assert _verify(trail) == (
        0,
        f"INTACT: events #{anchor.sequence}-#{total} verified ({total - anchor.sequence + 1}); "
        "signed checkpoints matched: 2",
    )


def test_an_export_starting_anywhere_else_is_refused_with_a_reason(trail):
    _edit_lines(trail / "export.jsonl", lambda records: records[1:])

    assert _verify(trail) == (
        2,
        f"{trail / 'export.jsonl'}: starts at event #2, and no checkpoint signs #2 to anchor it; "
        "export from the start of the chain or from a checkpointed sequence",
    )


def test_a_filtered_export_does_not_pass_for_the_whole_chain(trail):
    _export(trail / "export.jsonl", EventFilter(action="experiment.created"))
    first = AuditEvent.objects.filter(action="experiment.created").order_by("sequence")[0].sequence
    assert first > 1  # the persona's role was recorded before

    assert _verify(trail) == (
        2,
        f"{trail / 'export.jsonl'}: starts at event #{first}, and no checkpoint signs #{first} to anchor it; "
        "export from the start of the chain or from a checkpointed sequence",
    )


def test_a_broken_line_is_named_with_its_file_and_number(trail, capsys):
    with (trail / "export.jsonl").open("a") as file:
        file.write('{"sequence": 99, "created_at": "soon"\n')

    status = main([str(trail / "export.jsonl"), "--public-key", str(trail / "key.pub")])

    assert status == 2
    assert capsys.readouterr().err.startswith(f"UNREADABLE: {trail / 'export.jsonl'} line ")


def test_a_csv_line_with_a_bad_time_names_the_field(trail, capsys):
    _export(trail / "export.csv")
    lines = (trail / "export.csv").read_text().splitlines(keepends=True)
    cells = lines[1].split(",")
    cells[1] = "yesterday"
    lines[1] = ",".join(cells)
    (trail / "export.csv").write_text("".join(lines), newline="")

    status = main([str(trail / "export.csv"), "--public-key", str(trail / "key.pub")])

    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"UNREADABLE: {trail / 'export.csv'} line 2: created_at: 'yesterday' is not an ISO 8601 time"
    )


def test_the_command_line_runs_without_django(trail):
    """Run as an auditor would, and prove nothing from Django was imported on the way."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['offline_verify'] + sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_module('audit.offline_verify', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n"
        "sys.exit(status)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(trail / "export.jsonl"),
            "--public-key",
            str(trail / "key.pub"),
            "--checkpoints",
            str(trail / "checkpoints.jsonl"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("INTACT: events #1-#")
