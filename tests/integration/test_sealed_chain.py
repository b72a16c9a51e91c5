"""The sealed audit chain on real PostgreSQL, with writers in other processes.

Writers commit events unsealed and in parallel; the sealer links them after the commit. These
tests run the writers as real processes (and threads with their own connections), roll some of
them back, leave one transaction open across a seal, and kill one mid-transaction: the chain
must still verify, with every committed event sealed exactly once and none below the head.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings

from audit.models import AuditEvent
from audit.sealing import seal_events
from audit.services import record_event
from audit.verification import verify_chain
from tests.integration.audit_writers import WRITER_TYPE
from tests.integration.conftest import ROOT, _test_database_url, wait_for

pytestmark = pytest.mark.services


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "AUDIT_SIGNING_KEY_FILE": str(settings.AUDIT_SIGNING_KEY_FILE),
        "AUDIT_CHECKPOINT_FILE": settings.AUDIT_CHECKPOINT_FILE,
    }


def _spawn(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True, **kwargs
    )


class Holder:
    """A writer process whose transaction stays open until the test says otherwise."""

    def __init__(self) -> None:
        self.process = _spawn("-m", "tests.integration.audit_writers", "hold", stdin=subprocess.PIPE)

    def ask(self, command: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def holder(postgres):
    started = Holder()
    yield started
    started.close()


def _write(*names: str) -> list[int]:
    """Commit one event per name from the test's own connection (autocommit: one transaction each)."""
    return [
        record_event(actor=None, action="test.written", object_type=WRITER_TYPE, object_id=name).sequence
        for name in names
    ]


def _sealed(name: str) -> bool:
    return AuditEvent.objects.get(object_id=name).is_sealed


def _assert_whole_chain(committed: set[str]) -> None:
    """Everything committed is sealed once, in one chain that verifies; nothing else is there."""
    seal_events()
    report = verify_chain()
    assert (report.ok, report.unsealed) == (True, 0), report.broken
    rows = list(AuditEvent.objects.filter(object_type=WRITER_TYPE).values_list("object_id", "hash"))
    assert sorted(name for name, _ in rows) == sorted(committed)
    assert all(digest is not None for _, digest in rows)
    assert report.checked == AuditEvent.objects.count()


def _stopped(process: subprocess.Popen, signum: int) -> str:
    """Send `signum` and return what the process printed; killed (and the test failed) if it
    has not exited within a minute, so no sealer outlives its test and seals the next one's."""
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the process did not stop on signal {signum}: {output}")
    return output


# Runs `python <argv[2:]>` with SIGINT set to signal.<argv[1]>.
_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, getattr(signal, sys.argv[1])); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@pytest.mark.parametrize(
    ("signum", "started_as"),
    [
        (signal.SIGTERM, "a service"),  # what `docker compose stop` and systemd send
        (signal.SIGINT, "a service"),  # Ctrl-C in a terminal
        (signal.SIGTERM, "a background job"),  # SIGINT ignored: SIGTERM still stops it
    ],
)
def test_a_looping_sealer_stops_cleanly_on_a_signal_and_leaves_the_chain_sealed(postgres, signum, started_as):
    _write("before")
    # Whatever this test run inherited: a terminal or a service manager starts it with SIGINT's
    # default action; a script's `command &` with SIGINT ignored. exec keeps either.
    sigint = "SIG_IGN" if started_as == "a background job" else "SIG_DFL"
    loop = ["manage.py", "seal_audit", "--loop", "--interval", "0.01"]
    sealer = _spawn("-c", _WITH_SIGINT, sigint, *loop, stderr=subprocess.STDOUT)
    assert sealer.stdout and sealer.stdout.readline().startswith("Sealing the audit chain every")
    assert wait_for(lambda: _sealed("before"), timeout=30)

    output = _stopped(sealer, signum)

    assert sealer.returncode == 0, output
    assert output.startswith("Stopped after ") and "Traceback" not in output
    _assert_whole_chain({"before"})


def test_32_writers_with_rollbacks_and_a_sealer_running_leave_a_chain_that_verifies(postgres):
    """Four processes of eight threads, each thread on its own connection, a sealer looping."""
    sealer = _spawn("manage.py", "seal_audit", "--loop", "--interval", "0.01", stderr=subprocess.STDOUT)
    assert sealer.stdout and sealer.stdout.readline().startswith("Sealing the audit chain every")
    writers = [
        _spawn("-m", "tests.integration.audit_writers", "burst", str(worker), "8", "24")
        for worker in range(4)
    ]
    committed: set[str] = set()
    try:
        for writer in writers:
            out, _ = writer.communicate(timeout=300)
            assert writer.returncode == 0
            committed.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
        sealer_output = _stopped(sealer, signal.SIGTERM)
    # 32 threads x 24 transactions, a quarter rolled back, a third of the rest with two events.
    assert len(committed) == 32 * (18 + 6)
    # The loop sealed while writers were in flight; the chain check below finds any event it
    # sealed past before that event committed.
    assert "Traceback" not in sealer_output
    assert sealer.returncode == 0, sealer_output
    _assert_whole_chain(committed)
    # Rolled-back transactions used numbers too: the chain skips them.
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences[-1] > len(sequences)


def test_an_open_transaction_holds_sealing_below_its_event_until_it_commits(holder):
    _write("before")
    seal_events()
    held = int(holder.ask("event held"))
    later = _write("later-1", "later-2")

    # The held event's number lies below the later ones: sealing them now would leave it below the head.
    result = seal_events()
    assert result.head_sequence < held < min(later)
    assert not _sealed("later-1") and result.unsealed == 2

    assert holder.ask("commit") == "committed"
    result = seal_events()
    assert result.head_sequence == max(later) and result.unsealed == 0
    _assert_whole_chain({"before", "held", "later-1", "later-2"})


def test_a_long_transaction_that_writes_after_a_seal_lands_above_the_head(holder):
    """Started (and holding a transaction id) before the seal, its event is sealed later, on top."""
    holder.ask("xid")
    _write("early-1", "early-2")
    head = seal_events().head_sequence
    assert _sealed("early-2")  # no floor is held: a transaction with no event holds nothing back

    late = int(holder.ask("event late"))
    assert late > head
    assert holder.ask("commit") == "committed"
    assert seal_events().head_sequence == late
    _assert_whole_chain({"early-1", "early-2", "late"})


def test_a_writer_killed_mid_transaction_leaves_a_gap_and_a_chain_that_verifies(holder):
    _write("first")
    doomed = int(holder.ask("event doomed"))
    after = _write("after")
    assert seal_events().head_sequence < doomed

    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait(timeout=30)
    # The server ends the dead client's transaction once it sees the connection close.
    assert wait_for(lambda: seal_events().head_sequence == after[0], timeout=60)
    assert not AuditEvent.objects.filter(sequence=doomed).exists()
    _assert_whole_chain({"first", "after"})


def test_a_rolled_back_writer_leaves_a_gap_that_verification_accepts(holder):
    _write("one")
    gap = int(holder.ask("event undone"))
    assert holder.ask("rollback") == "rolled back"
    _write("two")
    _assert_whole_chain({"one", "two"})
    assert not AuditEvent.objects.filter(sequence=gap).exists()
