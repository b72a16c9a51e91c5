"""Signed checkpoints make a rewrite by the database's own administrator visible."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection

from audit.chain import EDITED
from audit.checkpoint_format import MAIN_CHAIN, Head, key_id_of, parse_checkpoint, sign_heads
from audit.checkpoints import public_key, signing_key
from audit.hashing import event_hash
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.sealing import seal_events
from audit.services import make_checkpoint
from audit.tasks import make_checkpoint as make_checkpoint_task
from audit.verification import verify_chain
from config.exceptions import Conflict
from tracker.services import create_experiment

pytestmark = pytest.mark.django_db


def _log(actor, *names):
    """Write events and seal them, as the sealer does within seconds of their commit."""
    for name in names:
        create_experiment(actor=actor, name=name)
    seal_events()


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rewrite_from(sequence: int, **changes) -> None:
    """What a database administrator can do: edit one event, rehash it and every later one, move the head."""
    table = AuditEvent._meta.db_table
    events = list(AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"))
    previous_hash = events[0].previous_hash
    for event in events:
        fields = {
            "actor_name": event.actor_name,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "before": event.before,
            "after": event.after,
        }
        if event.sequence == sequence:
            fields.update(changes)
        digest = event_hash(
            sequence=event.sequence, created_at=event.created_at, previous_hash=previous_hash, **fields
        )
        _raw(
            f"UPDATE {table} SET actor_name = %s, previous_hash = %s, hash = %s WHERE sequence = %s",
            [fields["actor_name"], previous_hash, digest, event.sequence],
        )
        previous_hash = digest
    _raw(f"UPDATE {AuditChainHead._meta.db_table} SET hash = %s WHERE id = 1", [previous_hash])


def _cut_newest(count: int) -> int:
    """Delete the newest events and move the head back, so the rest links perfectly."""
    table = AuditEvent._meta.db_table
    newest = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)[0]
    keep = newest - count
    _raw(f"DELETE FROM {table} WHERE sequence > %s", [keep])
    kept = AuditEvent.objects.get(sequence=keep)
    _raw(
        f"UPDATE {AuditChainHead._meta.db_table} SET sequence = %s, hash = %s WHERE id = 1", [keep, kept.hash]
    )
    return keep


def test_a_checkpoint_signs_the_chain_head_with_the_configured_key(contributor):
    _log(contributor, "a", "b")
    head = AuditChainHead.objects.get()

    checkpoint = make_checkpoint()

    signed = parse_checkpoint(checkpoint.document)
    assert (checkpoint.sequence, checkpoint.hash) == (head.sequence, head.hash)
    assert signed.heads == [Head(MAIN_CHAIN, head.sequence, head.hash)]
    assert signed.payload["version"] == 1
    assert signed.key_id == checkpoint.key_id == key_id_of(public_key())
    assert signed.signature_problem({signed.key_id: public_key()}) is None


def test_nothing_new_to_sign_makes_no_second_checkpoint(contributor):
    _log(contributor, "a")
    make_checkpoint()

    assert make_checkpoint() is None
    assert AuditCheckpoint.objects.count() == 1


def test_the_task_promotions_enqueue_makes_a_checkpoint(contributor):
    _log(contributor, "a")

    checkpoint_id = make_checkpoint_task.delay().get()

    assert AuditCheckpoint.objects.get(pk=checkpoint_id).sequence == AuditChainHead.objects.get().sequence


def test_an_empty_chain_is_not_signed(db):
    assert make_checkpoint() is None


def test_checkpoints_are_appended_to_the_file_outside_the_database(contributor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "elsewhere" / "checkpoints.jsonl")
    _log(contributor, "a")
    first = make_checkpoint()
    _log(contributor, "b")
    second = make_checkpoint()

    lines = (tmp_path / "elsewhere" / "checkpoints.jsonl").read_text().splitlines()

    assert lines == [first.document, second.document]


def test_checkpoints_are_stored_one_object_each_in_a_configured_storage(contributor, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "audit": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    settings.AUDIT_CHECKPOINT_STORAGE = "audit"
    _log(contributor, "a")

    checkpoint = make_checkpoint()

    [stored] = list((tmp_path / "audit-checkpoints").iterdir())
    assert stored.name.startswith(f"{checkpoint.sequence:012d}-")
    assert stored.read_text() == checkpoint.document


def test_a_checkpoint_that_cannot_be_copied_outside_is_not_stored_either(contributor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path)  # a folder: appending to it fails
    _log(contributor, "a")

    with pytest.raises(IsADirectoryError):
        make_checkpoint()

    assert AuditCheckpoint.objects.count() == 0


def test_the_task_logs_a_copy_it_could_not_write_and_makes_nothing(contributor, settings, tmp_path, caplog):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path)
    _log(contributor, "a")

    assert make_checkpoint_task.delay().get() is None

    assert AuditCheckpoint.objects.count() == 0
    assert f"audit checkpoint not made: [Errno 21] Is a directory: '{tmp_path}'" in caplog.text


def test_the_orm_refuses_to_change_or_remove_a_checkpoint(contributor):
    from audit.models import AppendOnlyError

    _log(contributor, "a")
    checkpoint = make_checkpoint()

    checkpoint.sequence = 1
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    with pytest.raises(AppendOnlyError):
        checkpoint.delete()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()


def test_embedded_mode_generates_a_key_only_its_owner_can_read(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "var" / "signing-key.pem"

    key = signing_key()

    assert stat.S_IMODE(settings.AUDIT_SIGNING_KEY_FILE.stat().st_mode) == 0o600
    assert key_id_of(signing_key().public_key()) == key_id_of(key.public_key())


def test_a_missing_key_file_is_refused_when_generating_is_off(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "absent.pem"
    settings.AUDIT_GENERATE_SIGNING_KEY = False

    with pytest.raises(ImproperlyConfigured, match=r"AUDIT_SIGNING_KEY_FILE: .*absent.pem does not exist"):
        signing_key()


def test_a_key_in_the_environment_wins_over_the_file(settings):
    import base64

    from cryptography.hazmat.primitives import serialization

    other = Ed25519PrivateKey.generate()
    raw = other.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    settings.AUDIT_SIGNING_KEY = base64.b64encode(raw).decode()

    assert key_id_of(public_key()) == key_id_of(other.public_key())


# The attacks --------------------------------------------------------------------------------


def test_without_a_checkpoint_a_full_rewrite_goes_unnoticed(contributor):
    """The reason checkpoints exist: a recomputed chain links perfectly."""
    _log(contributor, "a", "b", "c")
    _rewrite_from(2, actor_name="mallory")

    assert verify_chain().ok


def test_a_rewritten_event_is_found_once_a_later_checkpoint_exists(contributor):
    _log(contributor, "a", "b", "c", "d")
    checkpoint = make_checkpoint()
    _log(contributor, "e", "f")
    _rewrite_from(2, actor_name="mallory")

    report = verify_chain()

    assert not report.ok
    assert (report.broken.sequence, report.broken.reason) == (
        checkpoint.sequence,
        f"hash differs from the one checkpoint {checkpoint.pk} signed "
        f"(history rewritten at or before #{checkpoint.sequence})",
    )


def test_a_rewrite_is_found_through_the_checkpoint_file_when_the_rows_are_deleted_too(
    contributor, settings, tmp_path
):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    _log(contributor, "a", "b", "c")
    checkpoint = make_checkpoint()
    _rewrite_from(1, actor_name="mallory")
    _raw(f"DELETE FROM {AuditCheckpoint._meta.db_table}")

    report = verify_chain()

    assert report.broken.sequence == checkpoint.sequence
    assert report.broken.reason.startswith("hash differs from the one checkpoints.jsonl line 1 signed")


def test_a_rewritten_chain_is_never_signed(contributor):
    _log(contributor, "a", "b")
    signed = make_checkpoint()
    _log(contributor, "c", "d")
    _rewrite_from(1, actor_name="mallory")
    head = AuditChainHead.objects.get().sequence

    with pytest.raises(Conflict) as error:
        make_checkpoint()

    assert str(error.value) == (
        f"audit.chain: refusing to sign the chain head #{head}: event #{signed.sequence} hash differs "
        f"from the one checkpoint {signed.pk} signed (history rewritten at or before #{signed.sequence})"
    )
    assert AuditCheckpoint.objects.count() == 1


def test_the_task_refusing_to_sign_shows_the_break_as_the_latest_check(contributor):
    from audit.selectors import latest_verification

    _log(contributor, "a", "b")
    signed = make_checkpoint()
    _log(contributor, "c")
    _rewrite_from(1, actor_name="mallory")

    assert make_checkpoint_task.delay().get() is None  # no exception reaches the enqueuing request

    check = latest_verification()
    assert (check.ok, check.broken_sequence) == (False, signed.sequence)
    assert check.reason.startswith(f"hash differs from the one checkpoint {signed.pk} signed")
    assert AuditCheckpoint.objects.count() == 1


def test_deleting_the_newest_events_is_found_against_the_newest_checkpoint(contributor):
    _log(contributor, "a", "b", "c", "d")
    checkpoint = make_checkpoint()
    keep = _cut_newest(2)

    report = verify_chain()

    assert (report.broken.sequence, report.broken.reason) == (
        keep + 1,
        f"event is missing: checkpoint {checkpoint.pk} signed the chain up to #{checkpoint.sequence}",
    )


def test_an_altered_checkpoint_fails_its_signature(contributor):
    _log(contributor, "a", "b", "c")
    checkpoint = make_checkpoint()
    document = json.loads(checkpoint.document)
    document["payload"]["heads"][0]["sequence"] = 2
    _raw(
        f"UPDATE {AuditCheckpoint._meta.db_table} SET document = %s WHERE id = %s",
        [json.dumps(document), checkpoint.pk],
    )

    report = verify_chain()

    assert (report.broken.sequence, report.broken.reason) == (
        2,
        f"checkpoint {checkpoint.pk}: signature does not verify (forged or altered)",
    )


def test_a_checkpoint_signed_with_another_key_is_not_trusted(contributor):
    _log(contributor, "a", "b")
    head = AuditChainHead.objects.get()
    forged = sign_heads(
        private_key=Ed25519PrivateKey.generate(),
        heads=[Head(MAIN_CHAIN, head.sequence, head.hash)],
        signed_at="2026-01-01T00:00:00+00:00",
    )
    row = AuditCheckpoint.objects.create(
        created_at="2026-01-01T00:00:00Z",
        sequence=head.sequence,
        hash=head.hash,
        key_id=forged.key_id,
        document=forged.as_json(),
    )

    report = verify_chain()

    assert (
        report.broken.reason
        == f"checkpoint {row.pk}: signed with key {forged.key_id}, which is not a trusted key"
    )


def test_a_checkpoint_claiming_the_trusted_key_but_signed_by_another_fails(contributor):
    _log(contributor, "a", "b")
    head = AuditChainHead.objects.get()
    forged = sign_heads(
        private_key=Ed25519PrivateKey.generate(),
        heads=[Head(MAIN_CHAIN, head.sequence, head.hash)],
        signed_at="2026-01-01T00:00:00+00:00",
    )
    document = json.loads(forged.as_json())
    document["payload"]["key_id"] = key_id_of(public_key())
    row = AuditCheckpoint.objects.create(
        created_at="2026-01-01T00:00:00Z",
        sequence=head.sequence,
        hash=head.hash,
        key_id="x",
        document=json.dumps(document),
    )

    assert (
        verify_chain().broken.reason == f"checkpoint {row.pk}: signature does not verify (forged or altered)"
    )


def test_a_retired_key_still_verifies_its_checkpoints(contributor, settings, tmp_path):
    from audit.checkpoint_format import public_key_pem

    _log(contributor, "a")
    old = make_checkpoint()
    retired = tmp_path / "retired.pub"
    retired.write_text(public_key_pem(public_key()))
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "new-key.pem"
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = [retired]
    _log(contributor, "b")
    new = make_checkpoint()

    report = verify_chain()

    assert new.key_id != old.key_id
    assert report.ok and report.checkpoints_checked == 2


def test_an_edit_in_the_middle_is_still_named_exactly(contributor):
    _log(contributor, "a", "b", "c")
    make_checkpoint()
    _raw(f"UPDATE {AuditEvent._meta.db_table} SET action = 'forged' WHERE sequence = 2")

    report = verify_chain()

    assert (report.broken.sequence, report.broken.reason) == (2, EDITED)
    assert report.checked == 1


def test_audit_checkpoint_command_signs_and_reports(contributor, capsys):
    _log(contributor, "a")

    call_command("audit_checkpoint")
    call_command("audit_checkpoint")

    checkpoint = AuditCheckpoint.objects.get()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Checkpoint {checkpoint.pk} signed the chain head #{checkpoint.sequence} (")
    assert out[1] == "Nothing new to sign: the newest checkpoint already covers the chain head."


def test_audit_checkpoint_command_refuses_a_rewritten_chain(contributor):
    _log(contributor, "a", "b")
    signed = make_checkpoint()
    _log(contributor, "c")
    _rewrite_from(1, actor_name="mallory")

    with pytest.raises(CommandError) as error:
        call_command("audit_checkpoint")

    assert str(error.value).startswith(
        f"audit.chain: refusing to sign the chain head #{signed.sequence + 1}: event #{signed.sequence} hash"
    )


def test_verify_audit_command_counts_the_checkpoints_it_matched(contributor, capsys):
    _log(contributor, "a", "b")
    make_checkpoint()

    call_command("verify_audit")

    events = AuditEvent.objects.count()
    assert capsys.readouterr().out.strip() == (
        f"Audit chain intact: {events} events verified. Signed checkpoints matched: 1."
    )


def test_verify_audit_command_names_an_unreadable_checkpoint_file(contributor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "checkpoints.jsonl")
    (tmp_path / "checkpoints.jsonl").write_text('{"payload": {}, "signature": "x"}\n')

    with pytest.raises(CommandError) as error:
        call_command("verify_audit")

    assert str(error.value) == (
        f"Could not check the audit chain: {tmp_path / 'checkpoints.jsonl'} line 1: "
        "payload.format: expected 'labledger.audit-checkpoint', got None"
    )


def test_audit_checkpoint_command_says_why_the_copy_failed(contributor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path)
    _log(contributor, "a")

    with pytest.raises(CommandError) as error:
        call_command("audit_checkpoint")

    assert str(error.value) == f"No checkpoint made: [Errno 21] Is a directory: '{tmp_path}'"
    assert AuditCheckpoint.objects.count() == 0
