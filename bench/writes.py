#!/usr/bin/env python
"""Write benchmark: concurrent commits through the service layer against plain inserts.

The phases run in this one invocation, on the PostgreSQL that DATABASE_URL names, with the same
number of concurrent writers (--writers, default 32), each a forked process of its own with its
own connection (processes, not threads, so the GIL never caps the service layer):
  plain    each writer loops `INSERT INTO <scratch table> …; COMMIT` over plain psycopg: the
           database's own group-commit ceiling on this machine.
  service  each writer loops `tracker.services.log_metric` (one point, its own run; one
           transaction with its audit event each), with a process sealing the audit chain and
           folding stale rollups every few seconds (ingest.BackgroundWork), as the sealer and
           beat do in production.
  statement  diagnostic: each writer sends the single-point statement the service sends (point,
           summary with its stale rollup range, key set and audit event; a transaction of its
           own, one round trip) over plain psycopg, its parameters built once: what the database
           alone allows for this write, against which `service` shows the cost of the Python
           around it.
  parts    diagnostic: the single-point statement, and the same without its audit event
           (`statement_sql(event=…)`), each from --writers psycopg connections as in `statement`
           and, one connection, its p50 round trip: what the event costs the database. Printed
           on its own `parts:` line, before the last.
  shares   bench/server_shares.py: the server's share (client time taken off) through gunicorn
           of an authenticated no-op, a one-point log and a model version, beside the bare
           durable commit; the issue's budget is noop + 2 x commit floor for each write.
  chain    diagnostic, plain psycopg again, isolating what the audit chain adds to a commit:
           `headlock` is the old append (INSERT; SELECT head FOR UPDATE; UPDATE head; COMMIT),
           `sealed` the new one (INSERT … audit_next_sequence(); COMMIT). Printed on its own
           `chain:` line, before the last. (Its numbers are gaps in the audit sequence: harmless.)
Each phase runs --seconds after every writer is ready (a barrier); commits/s = commits / seconds.
Where PostgreSQL runs on this machine, each commit phase also prints, on a `cpu:` line before the
last, the CPU milliseconds per commit that PostgreSQL's processes and this script's children (the
writers and the background sealer and fold) spent in it, and the cores they kept busy: on a
machine whose cores are all busy, a write can commit at half the plain rate only if its CPU per
commit, database and client together, is at most twice the plain commit's.
The last line is `writes: name=value …`, the figures in FIGURES order (plain, service and
shares run by default). Results also go to bench/results/writes-<time>.json.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_bench .venv/bin/python bench/writes.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
SCRATCH_TABLE = "bench_writes_scratch"

# The figures of the `writes:` line, in print order. Each phase fills its own; a phase this
# script does not run leaves its entry out of the line.
FIGURES: dict[str, float | None] = {
    "plain_32": None,  # plain INSERT; COMMIT commits/s, --writers connections
    "service_32": None,  # log_metric commits/s through the service layer, --writers processes
    "ratio": None,  # service_32 / plain_32
    # The "shares" phase (bench/server_shares.py, through gunicorn, client time taken off):
    "commit_floor_ms": None,  # a bare durable INSERT; COMMIT from an open connection
    "noop_share_ms": None,  # an authenticated no-op request (GET /api/v1/me)
    "log_metric_share_ms": None,  # one point through the native log-batch endpoint
    "version_share_ms": None,  # creating a model version
    # Diagnostics after the figures: what the database alone takes for the same write.
    "statement_floor_ms": None,  # shares: the single-point statement from an open connection, p50
    "statement_32": None,  # the single-point statement alone, --writers psycopg connections
    # service_32 / statement_32: the service layer's rate against its own statement sent bare,
    # which on a machine whose cores run out first is what the Python around the write costs.
    "service_per_statement": None,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=32, help="concurrent writers per phase (default 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per phase (default 10)")
    parser.add_argument(
        "--phases",
        default="plain,service,shares",
        help="comma-separated: plain, service, statement, parts, shares, chain",
    )
    parser.add_argument("--verify", action="store_true", help="seal and verify the audit chain afterwards")
    return parser.parse_args()


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DEBUG", "false")  # DEBUG keeps every SQL statement in memory
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("bench/writes.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class CpuMeter:
    """CPU seconds spent inside its `with` by this script's children (the forked
    writers and background process, counted once they are joined) and by the PostgreSQL server's
    processes, when that server runs on this machine: its live processes, plus what its
    postmaster has reaped of backends that exited (a writer's connection ends with its process).
    """

    def __init__(self) -> None:
        self.children = self.postgres = self.wall = 0.0
        self._ticks = os.sysconf("SC_CLK_TCK")

    def _postgres_seconds(self) -> float | None:
        total, found = 0, False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended while we looked
                continue
            found = True
            total += int(fields[11]) + int(fields[12])  # utime, stime
            if not _is_postgres(fields[1]):  # the postmaster: add the backends it has reaped
                total += int(fields[13]) + int(fields[14])
        return total / self._ticks if found else None

    def _children_seconds(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuMeter:
        self._children0, self._postgres0 = self._children_seconds(), self._postgres_seconds()
        self._wall0 = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.monotonic() - self._wall0
        self.children = self._children_seconds() - self._children0
        postgres = self._postgres_seconds()
        if postgres is not None and self._postgres0 is not None:
            self.postgres = postgres - self._postgres0

    def record(self, label: str, commits: int) -> None:
        """CPU[label]: CPU ms per commit of each side, and the cores both kept busy meanwhile
        (the phase's setup and teardown around its timed seconds included)."""
        CPU[label] = {
            "postgres_ms": round(self.postgres * 1000 / max(commits, 1), 3),
            "writers_ms": round(self.children * 1000 / max(commits, 1), 3),
            "cores": round((self.postgres + self.children) / self.wall, 2),
        }


def _is_postgres(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


# The `cpu:` lines: each commit phase's CpuMeter.record, filled as the phases run.
CPU: dict[str, dict[str, float]] = {}


def _timed(barrier, seconds: float, write) -> int:
    """Wait for every writer, then call `write` until the time is up; the number of commits."""
    barrier.wait()
    deadline = time.monotonic() + seconds
    commits = 0
    while time.monotonic() < deadline:
        write(commits)
        commits += 1
    return commits


def _plain_writer(index: int, barrier, seconds: float, results) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:

        def write(n: int) -> None:
            conn.execute(f"INSERT INTO {SCRATCH_TABLE} (writer, n) VALUES (%s, %s)", (index, n))
            conn.commit()

        results.put(_timed(barrier, seconds, write))


_CHAIN_APPENDS = {
    "headlock": [
        f"INSERT INTO {SCRATCH_TABLE} (writer, n) VALUES (%(writer)s, %(n)s)",
        f"SELECT n FROM {SCRATCH_TABLE}_head WHERE id = 1 FOR UPDATE",
        f"UPDATE {SCRATCH_TABLE}_head SET n = n + 1 WHERE id = 1",
    ],
    "sealed": [f"INSERT INTO {SCRATCH_TABLE} (writer, n) VALUES (%(writer)s, audit_next_sequence())"],
}


def _chain_writer(index: int, barrier, seconds: float, results, kind: str) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:

        def write(n: int) -> None:
            for statement in _CHAIN_APPENDS[kind]:
                conn.execute(statement, {"writer": index, "n": n})
            conn.commit()

        results.put(_timed(barrier, seconds, write))


def _service_writer(index: int, barrier, seconds: float, results, user_id: int, run_id: int) -> None:
    from django.contrib.auth import get_user_model

    from tracker.models import Run
    from tracker.services import MetricInput, log_metric

    user = get_user_model().objects.get(pk=user_id)
    run = Run.objects.get(pk=run_id)
    base_ms = int(time.time() * 1000)

    def write(n: int) -> None:
        log_metric(
            actor=user, run=run, point=MetricInput("loss", 1.0 / (n + 1), step=n, timestamp=base_ms + n)
        )

    results.put(_timed(barrier, seconds, write))


def _statement_writer(
    index: int, barrier, seconds: float, results, user_id: int, run_id: int, part: str = "full"
) -> None:
    import psycopg
    from django.contrib.auth import get_user_model
    from server_shares import single_point_sender

    from tracker.models import Run

    user = get_user_model().objects.get(pk=user_id)
    run = Run.objects.get(pk=run_id)
    statement = _part_statement(part)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=1) as conn:
        results.put(_timed(barrier, seconds, single_point_sender(conn, user, run, statement)))


# The parts phase's statements: whether the audit event is kept.
_PARTS = {"full": True, "no_event": False}


def _part_statement(part: str) -> str:
    from tracker.services.single_point import statement_sql

    return statement_sql(event=_PARTS[part])


def parts_phase(args: argparse.Namespace) -> dict[str, float]:
    """Commits/s from --writers connections and the one-connection p50 (ms) of each part."""
    from django.contrib.auth import get_user_model
    from server_shares import statement_floor_ms

    from tracker.services import create_experiment, start_run

    figures: dict[str, float] = {}
    for part in _PARTS:
        figures[f"{part}_32"] = round(service_phase(args, _statement_writer, (part,), label=part))
    user = get_user_model().objects.get(username="bench")
    experiment = create_experiment(actor=user, name=f"bench-writes-{STAMP}-part-floors")
    for part in _PARTS:
        run = start_run(actor=user, experiment=experiment, name=part)
        floor = statement_floor_ms(os.environ["DATABASE_URL"], 400, user, run, _part_statement(part))
        figures[f"{part}_ms"] = round(floor, 3)
    return figures


def _run_writers(target, writers: int, seconds: float, extra: list[tuple]) -> int:
    """Fork `writers` processes running `target`; the total commits they made in `seconds`."""
    from django.db import connections

    connections.close_all()  # never share a connection with a forked child
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(writers), context.Queue()
    processes = [
        context.Process(target=target, args=(i, barrier, seconds, results, *extra[i])) for i in range(writers)
    ]
    for process in processes:
        process.start()
    total = sum(results.get(timeout=seconds + 300) for _ in processes)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            sys.exit(f"a writer exited with status {process.exitcode}")
    return total


def _scratch_phase(args: argparse.Namespace, target, label: str, extra: tuple = ()) -> float:
    """Commits/s of `target` writers into a fresh scratch table (and head row), dropped after."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}, {SCRATCH_TABLE}_head")
        cursor.execute(f"CREATE TABLE {SCRATCH_TABLE} (id bigserial PRIMARY KEY, writer int, n bigint)")
        cursor.execute(f"CREATE TABLE {SCRATCH_TABLE}_head (id int PRIMARY KEY, n bigint)")
        cursor.execute(f"INSERT INTO {SCRATCH_TABLE}_head VALUES (1, 0)")
    try:
        with CpuMeter() as meter:
            commits = _run_writers(target, args.writers, args.seconds, [extra] * args.writers)
        meter.record(label, commits)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}, {SCRATCH_TABLE}_head")
    return commits / args.seconds


def plain_phase(args: argparse.Namespace) -> float:
    return _scratch_phase(args, _plain_writer, "plain")


def service_phase(args: argparse.Namespace, writer=None, extra: tuple = (), label: str = "service") -> float:
    """Commits/s of `writer` (default: log_metric through the service layer), each to its own run
    (`extra` after the run's arguments), with sealing and the rollup fold beside them."""
    from django.contrib.auth import get_user_model
    from ingest import BackgroundWork

    from accounts.roles import Role
    from accounts.services import assign_role
    from tracker.services import create_experiment, start_run

    user, _ = get_user_model().objects.get_or_create(username="bench")
    assign_role(user=user, role=Role.CONTRIBUTOR)
    writer = writer or _service_writer
    experiment = create_experiment(actor=user, name=f"bench-writes-{STAMP}-{writer.__name__}{''.join(extra)}")
    runs = [start_run(actor=user, experiment=experiment, name=f"writer-{i:02d}") for i in range(args.writers)]
    with CpuMeter() as meter, BackgroundWork():
        commits = _run_writers(writer, args.writers, args.seconds, [(user.pk, r.pk, *extra) for r in runs])
    meter.record(label, commits)
    return commits / args.seconds


def verify_phase() -> dict[str, Any]:
    from audit.sealing import seal_events
    from audit.verification import verify_chain

    seal_events()
    report = verify_chain()
    return {"ok": report.ok, "checked": report.checked, "unsealed": report.unsealed}


def main() -> None:
    args = parse_args()
    setup_django()
    phases = {phase.strip() for phase in args.phases.split(",")}
    if "plain" in phases:
        FIGURES["plain_32"] = round(plain_phase(args))
        print(f"plain:   {FIGURES['plain_32']:>8} commits/s ({args.writers} psycopg connections)", flush=True)
    if "service" in phases:
        FIGURES["service_32"] = round(service_phase(args))
        print(
            f"service: {FIGURES['service_32']:>8} commits/s ({args.writers} processes, log_metric)",
            flush=True,
        )
    if "statement" in phases:
        FIGURES["statement_32"] = round(service_phase(args, _statement_writer, label="statement"))
        print(
            f"statement: {FIGURES['statement_32']:>6} commits/s ({args.writers} psycopg connections, "
            "the single-point statement alone)",
            flush=True,
        )
    parts: dict[str, float] = {}
    if "parts" in phases:
        parts = parts_phase(args)
        print("parts: " + " ".join(f"{name}={value}" for name, value in parts.items()), flush=True)
    chain: dict[str, int] = {}
    if "chain" in phases:
        chain = {
            f"{kind}_32": round(_scratch_phase(args, _chain_writer, kind, (kind,))) for kind in _CHAIN_APPENDS
        }
        print("chain: " + " ".join(f"{name}={value}" for name, value in chain.items()), flush=True)
    for label, figures in CPU.items():
        print(f"cpu: {label} " + " ".join(f"{name}={value}" for name, value in figures.items()), flush=True)
    if "shares" in phases:
        from server_shares import measure_server_shares

        shares = measure_server_shares()
        FIGURES.update({name: round(shares[name], 3) for name in FIGURES if name.endswith("_ms")})
    if FIGURES["plain_32"] and FIGURES["service_32"]:
        FIGURES["ratio"] = round(FIGURES["service_32"] / FIGURES["plain_32"], 2)
    if FIGURES["service_32"] and FIGURES["statement_32"]:
        FIGURES["service_per_statement"] = round(FIGURES["service_32"] / FIGURES["statement_32"], 2)
    result: dict[str, Any] = {
        "stamp": STAMP,
        "writers": args.writers,
        "seconds": args.seconds,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "figures": FIGURES,
        "chain": chain,
        "parts": parts,
        "cpu": CPU,
    }
    if args.verify:
        result["verified"] = verify_phase()
        print(f"verified: {result['verified']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"writes-{STAMP}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("writes: " + " ".join(f"{name}={value}" for name, value in FIGURES.items() if value is not None))


if __name__ == "__main__":
    main()
