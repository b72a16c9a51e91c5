#!/usr/bin/env python
"""Ingest benchmark: metric points through the service layer and through the native REST API.

Every path logs the same seeded workload (runs x keys x steps points, in 1,000-point batches):
  service  `tracker.services.log_batch` called in this process: the ceiling of the write path.
  api      `POST /api/v1/runs/<run_id>/log-batch` over real HTTP to a gunicorn server started
           here, from this one client process on one kept-alive connection.
  copy     PostgreSQL only: the database's own floor for the same batches, with nothing of Lab
           Ledger around it. Each batch, already validated, sorted and packed as the service packs
           it (`metric_store.copy_payload`), goes over one plain psycopg connection as a COPY and a
           COMMIT: no HTTP, no Django, no summary, no audit event, no key lookup. No server on
           this database can store these batches from one connection faster than this; the
           table's last line gives the API's rate as a share of it.
Bodies (and, for the service path, MetricInput objects) are built before each run's batches
are timed, so the client's own encoding cost is reported apart from ingestion. Beside each
phase a process seals the audit chain and folds stale rollups every few seconds, as production
does (BackgroundWork); --verify folds what is left and checks the rollups count every point.

The database is whatever DATABASE_URL names; without it, a fresh SQLite file under
var/bench/ (never the demo database). Results go to bench/results/ingest-<db>-<time>.json.

    .venv/bin/python bench/ingest.py --runs 2 --steps 1000 --verify          # quick, SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_bench .venv/bin/python bench/ingest.py --verify
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SCRATCH = ROOT / "var" / "bench"  # server logs, profiles and SQLite files: never committed
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
BASE_TIMESTAMP_MS = 1_700_000_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="runs per phase (default 20)")
    parser.add_argument("--keys", type=int, default=10, help="metric keys per run (default 10)")
    parser.add_argument("--steps", type=int, default=10_000, help="steps per key (default 10,000)")
    parser.add_argument("--batch", type=int, default=1000, help="points per batch (default 1,000)")
    parser.add_argument(
        "--phases",
        default=None,
        help="comma-separated: service, api, copy (default service,api, and copy on PostgreSQL)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="concurrent kept-alive connections from this one client process (default 1)",
    )
    parser.add_argument(
        "--worker-class",
        default="gthread",
        help="gunicorn worker class (default gthread, which keeps connections alive, as "
        "docker-compose.yml serves; sync closes each after its response)",
    )
    parser.add_argument("--verify", action="store_true", help="count stored points and summaries afterwards")
    parser.add_argument("--profile", action="store_true", help="cProfile the service phase; print the top")
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the scratch SQLite file made when DATABASE_URL is unset"
    )
    parser.add_argument("--label", default="", help="extra word in the result file name")
    parser.add_argument(
        "--out", type=Path, help="result file (default bench/results/ingest-<db>-<time>.json)"
    )
    args = parser.parse_args()
    if args.phases is not None:  # else chosen once the database is known (main)
        args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
        unknown = set(args.phases) - {"service", "api", "copy"}
        if unknown:
            parser.error(f"--phases: unknown phase(s) {', '.join(sorted(unknown))}")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000 (the API's limit per request)")
    return args


def setup_django() -> Path | None:
    """Configure and migrate the database this process and the server share.

    Returns the scratch SQLite file it made when DATABASE_URL was unset, so it can be removed.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    # DEBUG makes Django keep every SQL statement in memory: not what production pays.
    os.environ.setdefault("DEBUG", "false")
    scratch = None
    if not os.environ.get("DATABASE_URL"):
        scratch = SCRATCH / f"ingest-{STAMP}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}"
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return scratch


class BackgroundWork:
    """What production runs beside the writers, in a forked process for the length of a `with`:
    sealing the audit chain and folding the rollups that logged points leave stale, as the sealer
    and beat do, both every AUDIT_SEAL_INTERVAL_SECONDS (ROLLUP_FOLD_SECONDS is the same 5 s by
    default)."""

    def __enter__(self) -> BackgroundWork:
        import multiprocessing

        from django.conf import settings
        from django.db import connections

        connections.close_all()  # never share a connection with a forked child
        context = multiprocessing.get_context("fork")
        self.stop = context.Event()
        self.process = context.Process(target=self._loop, args=(settings.AUDIT_SEAL_INTERVAL_SECONDS,))
        self.process.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.process.join()

    def _loop(self, interval: float) -> None:
        from audit.sealing import seal_events
        from tracker.services.rollups import fold_all_stale_rollups

        while not self.stop.is_set():
            seal_events()
            fold_all_stale_rollups()
            self.stop.wait(interval)


# --- workload -------------------------------------------------------------------------------


def series_values(run_index: int, keys: int, steps: int) -> list[list[float]]:
    """values[step][key]: a seeded noisy decay, so every run and path logs the same numbers."""
    import numpy as np

    rng = np.random.default_rng(run_index)
    decay = np.exp(-np.arange(steps) / max(steps / 3, 1))[:, None]
    return (decay + 0.05 * rng.standard_normal((steps, keys))).tolist()


def batches_of(run_index: int, args: argparse.Namespace) -> list[list[tuple[str, float, int, int]]]:
    """(key, value, step, timestamp) batches in training order: every key of step s, then s + 1."""
    names = [f"metric_{k:02d}" for k in range(args.keys)]
    values = series_values(run_index, args.keys, args.steps)
    points = [
        (names[k], row[k], step, BASE_TIMESTAMP_MS + step * 10)
        for step, row in enumerate(values)
        for k in range(args.keys)
    ]
    return [points[i : i + args.batch] for i in range(0, len(points), args.batch)]


# --- service phase --------------------------------------------------------------------------


def service_phase(*, user, experiment, args: argparse.Namespace) -> dict:
    from tracker.services import MetricInput, log_batch, start_run

    build = ingest = 0.0
    latencies: list[float] = []
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    for r in range(args.runs):
        run = start_run(actor=user, experiment=experiment, name=f"service-{r:03d}")
        t0 = time.perf_counter()
        batches = [[MetricInput(k, v, step=s, timestamp=t) for k, v, s, t in b] for b in batches_of(r, args)]
        build += time.perf_counter() - t0
        if profiler:
            profiler.enable()
        for batch in batches:
            t1 = time.perf_counter()
            log_batch(actor=user, run=run, metrics=batch)
            latencies.append(time.perf_counter() - t1)
        if profiler:
            profiler.disable()
        ingest += sum(latencies[-len(batches) :])
    wall = time.perf_counter() - started
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
        profile_path = SCRATCH / f"ingest-service-{STAMP}.prof"
        stats.dump_stats(profile_path)
        print(f"profile written to {profile_path}")
    return phase_result(args, wall=wall, encode=build, ingest=ingest, latencies=latencies)


# --- copy phase: the database's floor -------------------------------------------------------


def copy_phase(*, user, experiment, args: argparse.Namespace) -> dict:
    """The batches as bare COPY + COMMIT over their own psycopg connection (see the docstring at
    the top). Their runs are real runs, so `--verify` counts their points like the others'."""
    import psycopg

    from tracker.services import start_run
    from tracker.services.batches import metric_key_ids
    from tracker.services.metric_store import COPY_POINTS_SQL, copy_payload

    key_ids = metric_key_ids(f"metric_{k:02d}" for k in range(args.keys))
    database = psycopg.connect(os.environ["DATABASE_URL"])  # as bench/writes.py's plain writers
    build = ingest = 0.0
    latencies: list[float] = []
    started = time.perf_counter()
    try:
        for r in range(args.runs):
            run = start_run(actor=user, experiment=experiment, name=f"copy-{r:03d}")
            t0 = time.perf_counter()
            payloads = [
                copy_payload(run.pk, sorted((key_ids[k], s, t, v, False) for k, v, s, t in batch))
                for batch in batches_of(r, args)
            ]
            build += time.perf_counter() - t0
            for payload in payloads:
                t1 = time.perf_counter()
                with database.cursor().copy(COPY_POINTS_SQL) as copy:
                    copy.write(payload)
                database.commit()
                latencies.append(time.perf_counter() - t1)
            ingest += sum(latencies[-len(payloads) :])
    finally:
        database.close()
    wall = time.perf_counter() - started
    return phase_result(args, wall=wall, encode=build, ingest=ingest, latencies=latencies)


# --- API phase ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn in a child process with this process's environment; stopped by its PID."""

    def __init__(self, *, workers: int, worker_class: str, root: Path = ROOT) -> None:
        """`root`: the checkout whose code it serves (bench/ab_shares.py serves two)."""
        self.port = free_port()
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.log = open(SCRATCH / f"gunicorn-{STAMP}-{self.port}.log", "w")  # noqa: SIM115
        command = [str(gunicorn), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        command += ["--worker-class", worker_class, "--chdir", str(root), "--log-level", "warning"]
        self.process = subprocess.Popen(
            command,
            env=os.environ.copy(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer /healthz within {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the master: it stops its workers gracefully
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Client:
    """One kept-alive HTTP connection; http.client reconnects by itself if the server closes it."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connects = 0

    def post(self, path: str, body: bytes) -> dict:
        if self.conn.sock is None:
            self.connects += 1
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"POST {path} -> {response.status}: {data[:500].decode(errors='replace')}")
        return json.loads(data) if data else {}


def created_run_id(payload: dict) -> str:
    """The run id from a create-run response (`run_id`, or MLflow's `run.info.run_id`)."""
    if "run_id" in payload:
        return payload["run_id"]
    if "run" in payload:
        return payload["run"]["info"]["run_id"]
    raise SystemExit(f"no run id in the create-run response: {payload}")


def api_phase(*, token: str, experiment, args: argparse.Namespace) -> dict:
    """Create the runs, encode every body, then send them on `--connections` kept-alive connections.

    With more than one connection the runs are shared out among threads of this one process, so
    the server overlaps one request's database waits with another's Python work.
    """
    server = Server(workers=args.workers, worker_class=args.worker_class)
    try:
        server.wait_ready()
        setup = Client(server.port, token)
        started = time.perf_counter()
        paths = []
        for r in range(args.runs):
            body = json.dumps({"experiment_id": str(experiment.pk), "run_name": f"api-{r:03d}"}).encode()
            paths.append(f"/api/v1/runs/{created_run_id(setup.post('/api/v1/runs', body))}/log-batch")
        t0 = time.perf_counter()
        work = [
            (
                paths[r],
                [
                    json.dumps(
                        {"metrics": [{"key": k, "value": v, "step": s, "timestamp": t} for k, v, s, t in b]}
                    ).encode()
                    for b in batches_of(r, args)
                ],
            )
            for r in range(args.runs)
        ]
        encode = time.perf_counter() - t0
        clients = [Client(server.port, token) for _ in range(args.connections)]
        latencies: list[float] = []

        def send(index: int) -> None:
            client = clients[index]
            for path, bodies in work[index :: args.connections]:
                for body in bodies:
                    t1 = time.perf_counter()
                    client.post(path, body)
                    latencies.append(time.perf_counter() - t1)  # list.append is atomic under the GIL

        t_ingest = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.connections) as pool:
            list(pool.map(send, range(args.connections)))
        ingest = time.perf_counter() - t_ingest
        wall = time.perf_counter() - started
        result = phase_result(args, wall=wall, encode=encode, ingest=ingest, latencies=latencies)
        result["server"] = {
            "workers": args.workers,
            "worker_class": args.worker_class,
            "client_connections": args.connections,
            "tcp_connects": sum(c.connects for c in clients),
            "body_bytes_per_batch": len(work[-1][1][-1]) if work and work[-1][1] else 0,
        }
        return result
    finally:
        server.stop()


# --- results --------------------------------------------------------------------------------


def phase_result(args, *, wall: float, encode: float, ingest: float, latencies: list[float]) -> dict:
    points = args.runs * args.keys * args.steps
    ordered = sorted(latencies)
    return {
        "points": points,
        "batches": len(latencies),
        "wall_s": round(wall, 3),
        "encode_s": round(encode, 3),
        "ingest_s": round(ingest, 3),
        "points_per_s_wall": round(points / wall),
        "points_per_s_ingest": round(points / ingest),
        "batch_ms_p50": round(statistics.median(ordered) * 1000, 2),
        "batch_ms_p95": round(ordered[int(len(ordered) * 0.95) - 1 if len(ordered) > 1 else 0] * 1000, 2),
    }


def verify(experiment, args: argparse.Namespace, phases: list[str]) -> dict:
    """Count what landed: every point, one summary per run and key, counts and last steps right,
    and, once the last fold has run, every point in the finest rollups."""
    from django.db.models import Count, Max, Min, Sum

    from audit.verification import verify_chain
    from tracker.models import MetricPoint, MetricRollup, MetricSummary, Run
    from tracker.services.rollups import fold_all_stale_rollups

    report: dict = {"ok": True, "stale_series_at_the_end": fold_all_stale_rollups()}
    for phase in phases:
        runs = Run.objects.filter(experiment=experiment, name__startswith=f"{phase}-")
        points = MetricPoint.objects.filter(run__in=runs).count()
        expected = args.runs * args.keys * args.steps
        if phase == "copy":  # points only: the floor writes no summary, rollup or event
            report[phase] = {"expected_points": expected, "stored_points": points, "ok": points == expected}
            report["ok"] &= points == expected
            continue
        summaries = MetricSummary.objects.filter(run__in=runs).aggregate(
            rows=Count("pk"), counted=Sum("count"), first_last=Min("last_step"), last_last=Max("last_step")
        )
        rolled_up = MetricRollup.objects.filter(run__in=runs, level=0).aggregate(rolled_up=Sum("count"))
        ok = (
            points == expected
            and summaries["rows"] == args.runs * args.keys
            and summaries["counted"] == expected
            and summaries["first_last"] == summaries["last_last"] == args.steps - 1
            and rolled_up["rolled_up"] == expected
        )
        summaries.update(rolled_up)
        report[phase] = {"expected_points": expected, "stored_points": points, **summaries, "ok": ok}
        report["ok"] &= ok
    chain = verify_chain()
    report["audit_chain"] = {"checked": chain.checked, "ok": chain.ok}
    report["ok"] &= chain.ok
    return report


def print_table(result: dict) -> None:
    print()
    print(f"Ingest on {result['database']} ({result['workload']['points_per_phase']:,} points per phase)")
    header = (
        f"{'path':<8} {'wall s':>8} {'pts/s wall':>11} {'encode s':>9} {'ingest s':>9} {'pts/s ingest':>13}"
    )
    print(header + f" {'batch p50/p95 ms':>17}")
    print("-" * (len(header) + 18))
    for name, phase in result["phases"].items():
        print(
            f"{name:<8} {phase['wall_s']:>8.1f} {phase['points_per_s_wall']:>11,} {phase['encode_s']:>9.1f} "
            f"{phase['ingest_s']:>9.1f} {phase['points_per_s_ingest']:>13,} "
            f"{phase['batch_ms_p50']:>8.1f}/{phase['batch_ms_p95']:<.1f}"
        )
    phases = result["phases"]
    if "api" in phases and "copy" in phases:
        share = phases["api"]["points_per_s_ingest"] / phases["copy"]["points_per_s_ingest"]
        print(f"api / copy floor (points/s while ingesting): {share:.2f}")
    before, after = result["machine"]["load_average_before"], result["machine"]["load_average_after"]
    print(f"load average (1/5/15 min) before {before}, after {after}")
    if "verify" in result:
        print(f"verify: {'OK' if result['verify']['ok'] else 'FAILED'} {json.dumps(result['verify'])}")


def main() -> int:
    args = parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    scratch_db = setup_django()

    from django.contrib.auth import get_user_model
    from django.db import connection

    vendor = connection.vendor
    if args.phases is None:
        args.phases = ["service", "api"] + (["copy"] if vendor == "postgresql" else [])
    elif "copy" in args.phases and vendor != "postgresql":
        raise SystemExit("--phases copy: the floor is PostgreSQL's COPY; set DATABASE_URL")

    from accounts.roles import Role
    from accounts.services import assign_role, create_api_token
    from tracker.services import create_experiment

    user, _ = get_user_model().objects.get_or_create(username="bench")
    assign_role(user=user, role=Role.CONTRIBUTOR)
    _, token = create_api_token(user=user, name=f"bench {STAMP}")
    experiment = create_experiment(actor=user, name=f"bench-ingest-{STAMP}")

    result: dict = {
        "benchmark": "ingest",
        "time": STAMP,
        "database": vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other work on the machine skews the figures; a load near the core count is a warning.
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "workload": {
            "runs": args.runs,
            "keys": args.keys,
            "steps": args.steps,
            "batch": args.batch,
            "points_per_phase": args.runs * args.keys * args.steps,
        },
        "phases": {},
    }
    for phase in args.phases:
        print(f"{phase}: logging {args.runs * args.keys * args.steps:,} points …", flush=True)
        with BackgroundWork():
            if phase == "service":
                result["phases"]["service"] = service_phase(user=user, experiment=experiment, args=args)
            elif phase == "copy":
                result["phases"]["copy"] = copy_phase(user=user, experiment=experiment, args=args)
            else:
                connection.close()  # hold no connection (or SQLite lock) while the server writes
                result["phases"]["api"] = api_phase(token=token, experiment=experiment, args=args)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.verify:
        result["verify"] = verify(experiment, args, args.phases)
    suffix = f"-{args.label}" if args.label else ""
    out = args.out or RESULTS / f"ingest-{vendor}{suffix}-{STAMP}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"results: {out}")
    if scratch_db and not args.keep_db:
        connection.close()
        for path in scratch_db.parent.glob(scratch_db.name + "*"):  # with its -wal and -shm files
            path.unlink()
    return 0 if result.get("verify", {"ok": True})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
