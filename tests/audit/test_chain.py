"""The audit trail is append-only and hash-chained; tampering is found and named."""

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AppendOnlyError, AuditEvent
from audit.sealing import seal_events
from audit.services import record_event
from audit.verification import verify_chain
from tracker.services import create_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(contributor):
    for name in ("a", "b", "c", "d"):
        create_experiment(actor=contributor, name=name)
    seal_events()
    return list(AuditEvent.objects.order_by("sequence"))


def test_each_event_links_to_the_previous_hash(events):
    assert events[0].previous_hash == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event.previous_hash == previous.hash
        assert event.sequence == previous.sequence + 1


def test_intact_chain_verifies(events):
    report = verify_chain()
    assert report.ok and report.checked == len(events)


def test_orm_refuses_to_update_or_delete_events(events):
    event = events[0]
    event.action = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def _raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_edited_event_is_detected_by_sequence(events):
    table = AuditEvent._meta.db_table
    _raw(f"UPDATE {table} SET actor_name = %s WHERE sequence = %s", ["mallory", events[2].sequence])
    report = verify_chain()
    assert not report.ok
    assert (report.broken.sequence, report.broken.reason) == (
        events[2].sequence,
        "content does not match its hash (edited)",
    )


def test_removed_event_in_the_middle_is_detected(events):
    _raw(f"DELETE FROM {AuditEvent._meta.db_table} WHERE sequence = %s", [events[1].sequence])
    report = verify_chain()
    assert (report.broken.sequence, report.broken.reason) == (events[1].sequence, "event is missing")


def test_removed_newest_event_is_detected(events):
    _raw(f"DELETE FROM {AuditEvent._meta.db_table} WHERE sequence = %s", [events[-1].sequence])
    assert verify_chain().broken.sequence == events[-1].sequence


def test_rehashed_forgery_breaks_the_next_link(events):
    """Recomputing a forged event's own hash still leaves the next event pointing at the old one."""
    from audit.hashing import event_hash

    forged = events[1]
    new_hash = event_hash(
        sequence=forged.sequence,
        created_at=forged.created_at,
        actor_name="mallory",
        action=forged.action,
        object_type=forged.object_type,
        object_id=forged.object_id,
        before=forged.before,
        after=forged.after,
        previous_hash=forged.previous_hash,
    )
    _raw(
        f"UPDATE {AuditEvent._meta.db_table} SET actor_name = %s, hash = %s WHERE sequence = %s",
        ["mallory", new_hash, forged.sequence],
    )
    report = verify_chain()
    assert (report.broken.sequence, report.broken.reason) == (
        events[2].sequence,
        "previous_hash does not match the event before",
    )


def test_verify_audit_command_names_the_first_broken_link(events):
    _raw(
        f"UPDATE {AuditEvent._meta.db_table} SET after = %s WHERE sequence = %s",
        ['{"x": 1}', events[0].sequence],
    )
    with pytest.raises(CommandError) as error:
        call_command("verify_audit")
    assert str(error.value).startswith(
        f"Audit chain broken at event #{events[0].sequence}: content does not match"
    )


def test_verify_audit_command_reports_an_intact_chain(events, capsys):
    call_command("verify_audit")
    assert f"Audit chain intact: {len(events)} events verified." in capsys.readouterr().out


def test_non_finite_numbers_in_event_data_are_stored_as_strings(contributor, experiment):
    event = record_event(actor=contributor, action="test.nan", target=experiment, after={"v": float("nan")})
    event.refresh_from_db()
    assert event.after == {"v": "NaN"}
    assert verify_chain().ok


def test_verification_task_records_a_broken_chain_in_the_chain(events):
    from audit.tasks import verify_audit_chain

    _raw(
        f"UPDATE {AuditEvent._meta.db_table} SET action = %s WHERE sequence = %s",
        ["forged", events[1].sequence],
    )
    verify_audit_chain.delay()  # eager in tests
    event = AuditEvent.objects.latest("sequence")
    assert event.action == "audit.chain_broken"
    assert event.after == {
        "checked": 1,
        "broken_sequence": events[1].sequence,
        "reason": "content does not match its hash (edited)",
    }


postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="SQLite seals each event before its commit"
)


@postgres_only
def test_an_event_is_unsealed_until_the_sealer_links_it(contributor):
    create_experiment(actor=contributor, name="fresh")
    event = AuditEvent.objects.get(action="experiment.created")
    waiting = AuditEvent.objects.count()  # the persona's role assignment is an event too
    assert (event.is_sealed, event.previous_hash, event.sealed_at) == (False, None, None)
    assert (verify_chain().checked, verify_chain().unsealed) == (0, waiting)

    result = seal_events()

    event.refresh_from_db()
    assert (result.sealed, result.head_sequence, result.unsealed) == (waiting, event.sequence, 0)
    assert event.is_sealed and event.sealed_at is not None
    assert verify_chain().checked == waiting


def test_a_hash_stripped_from_the_newest_event_is_found(events):
    _raw(f"UPDATE {AuditEvent._meta.db_table} SET hash = NULL WHERE sequence = %s", [events[-1].sequence])
    report = verify_chain()
    assert (report.broken.sequence, report.broken.reason) == (
        events[-1].sequence,
        "event has no hash but lies below the sealed head (its seal was removed)",
    )


def test_a_hash_stripped_mid_chain_is_named_as_stripped(events):
    _raw(f"UPDATE {AuditEvent._meta.db_table} SET hash = NULL WHERE sequence = %s", [events[1].sequence])
    report = verify_chain()
    assert (report.broken.sequence, report.broken.reason) == (
        events[1].sequence,
        "event has no hash but lies below the sealed head (its seal was removed)",
    )


def test_a_stripped_hash_is_a_break_not_an_event_waiting_for_the_sealer(events):
    from audit.selectors import unsealed_count

    _raw(f"UPDATE {AuditEvent._meta.db_table} SET hash = NULL WHERE sequence = %s", [events[1].sequence])
    # Only events after the head wait for the sealer; the page's and the check's counts agree.
    assert unsealed_count() == 0
    assert verify_chain().unsealed == 0


def test_a_stripped_hash_neither_stops_sealing_nor_hides_from_the_check(events, contributor):
    from audit.tasks import verify_audit_chain

    _raw(f"UPDATE {AuditEvent._meta.db_table} SET hash = NULL WHERE sequence = %s", [events[-1].sequence])
    create_experiment(actor=contributor, name="after the tampering")
    verify_audit_chain.delay()  # seals the new event first; the walk still names the stripped one

    newest = AuditEvent.objects.filter(action="experiment.created").latest("sequence")
    assert newest.is_sealed and newest.previous_hash == events[-1].hash  # linked on from the head
    assert AuditEvent.objects.latest("sequence").action == "audit.chain_broken"
    assert verify_chain().broken.sequence == events[-1].sequence
