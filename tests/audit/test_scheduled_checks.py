"""Scheduled checks keep their result on a row and start from the last verified checkpoint."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import AuditCheckpoint, AuditEvent, AuditVerification
from audit.selectors import latest_verification
from audit.services import make_checkpoint
from audit.tasks import verify_audit_chain
from tracker.services import create_experiment

pytestmark = pytest.mark.django_db


def _log(actor, *names):
    for name in names:
        create_experiment(actor=actor, name=name)


def _set_action(sequence: int, action: str) -> None:
    """Rewrite one event below the ORM, as someone with the database's password could."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AuditEvent._meta.db_table} SET action = %s WHERE sequence = %s", [action, sequence]
        )


def _run(**kwargs) -> AuditVerification:
    return AuditVerification.objects.get(pk=verify_audit_chain.delay(**kwargs).get())


def test_the_first_check_walks_the_whole_chain_and_keeps_its_result(contributor):
    _log(contributor, "a", "b")
    events = AuditEvent.objects.count()

    check = _run()

    assert (check.status, check.ok, check.mode) == ("done", True, "incremental")
    assert (check.from_sequence, check.through_sequence, check.checked) == (1, events, events)
    assert check.anchor is None and check.finished_at is not None
    assert latest_verification() == check


def test_the_next_check_starts_from_the_checkpoint_the_last_one_verified(contributor):
    _log(contributor, "a", "b")
    checkpoint = make_checkpoint()
    _run()
    _log(contributor, "c")

    check = _run()

    assert check.anchor == checkpoint
    assert check.from_sequence == checkpoint.sequence
    # From the checkpoint's own event to the head (which now includes the first check's event).
    assert check.checked == AuditEvent.objects.count() - checkpoint.sequence
    assert check.checkpoints_checked == 1


def test_an_incremental_check_finds_a_rewrite_that_reaches_the_anchor(contributor):
    _log(contributor, "a", "b")
    checkpoint = make_checkpoint()
    _run()
    with connection.cursor() as cursor:  # the anchor event itself, edited
        cursor.execute(
            f"UPDATE {AuditEvent._meta.db_table} SET action = 'forged' WHERE sequence = %s",
            [checkpoint.sequence],
        )

    check = _run()

    assert (check.ok, check.broken_sequence, check.reason) == (
        False,
        checkpoint.sequence,
        "content does not match its hash (edited)",
    )


def test_an_edit_below_the_anchor_is_left_to_the_full_check(contributor):
    """What incremental means: the daily full walk is what re-reads verified history."""
    _log(contributor, "a", "b", "c")
    make_checkpoint()
    _run()
    _set_action(2, "forged")

    assert _run().ok is True
    full = _run(full=True)

    assert (full.mode, full.ok, full.broken_sequence) == ("full", False, 2)


def test_after_a_failed_check_every_check_walks_the_whole_chain_until_one_passes(contributor):
    """A break found by the full walk is not hidden by the next incremental check."""
    _log(contributor, "a", "b", "c")
    make_checkpoint()
    _run()
    _set_action(2, "forged")
    assert _run(full=True).ok is False
    _log(contributor, "d")

    again = _run()

    assert (again.mode, again.anchor, again.from_sequence) == ("incremental", None, 1)
    assert (again.ok, again.broken_sequence) == (False, 2)
    assert latest_verification() == again
    _set_action(2, "experiment.created")  # put back as it was: the whole walk passes
    assert _run().ok is True
    assert _run().anchor is not None  # incremental again, from the last checkpoint


def test_a_check_that_cannot_read_the_checkpoint_file_fails_with_the_reason(contributor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    (tmp_path / "checkpoints.jsonl").write_text("not json\n")
    _log(contributor, "a")

    check = _run()

    assert (check.status, check.ok) == ("failed", False)
    assert check.reason == f"{tmp_path / 'checkpoints.jsonl'} line 1: not JSON (Expecting value)"


def test_a_checkpoint_made_after_a_check_is_not_taken_on_trust(contributor):
    _log(contributor, "a")
    _run()
    checkpoint = make_checkpoint()
    with connection.cursor() as cursor:  # below the ORM, which refuses to change a checkpoint
        cursor.execute(
            f"UPDATE {AuditCheckpoint._meta.db_table} SET document = %s WHERE id = %s",
            [checkpoint.document.replace('"main"', '"x"'), checkpoint.pk],
        )

    check = _run()

    assert check.status == "failed"
    assert check.reason == f"checkpoint {checkpoint.pk}: payload.heads: no 'main' chain"


def test_a_check_left_waiting_by_a_dead_worker_is_not_shared_forever(contributor):
    from datetime import timedelta

    from django.utils import timezone

    from audit.services import request_verification

    stuck, _ = request_verification(actor=contributor)  # on_commit never fires here: nothing runs it
    AuditVerification.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=2))

    fresh, queued = request_verification(actor=contributor)

    assert queued and fresh.pk != stuck.pk


def test_a_check_with_an_unreadable_key_fails_with_the_reason(contributor, settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = "not a key"
    _log(contributor, "a")

    check = _run()

    assert (check.status, check.ok) == ("failed", False)
    assert check.reason.startswith("AUDIT_SIGNING_KEY: not an Ed25519 private key")
