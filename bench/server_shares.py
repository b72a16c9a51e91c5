#!/usr/bin/env python
"""The server's share of single writes, beside the framework's floor and the database's.

Issue 13 asks that each single write cost the server at most an authenticated no-op's share plus
twice a bare durable commit. This script measures, in one run, on the PostgreSQL that
DATABASE_URL names and through gunicorn (started here, stopped by its PID):

  commit_floor_ms      `INSERT; COMMIT` of one row from an open psycopg connection (durable:
                       synchronous_commit as the server has it), p50
  noop_share_ms        GET /api/v1/me: bearer-token authentication, the role, DRF, a tiny answer
  log_metric_share_ms  POST /api/v1/runs/<id>/log-batch with one metric point (a new step each call)
  version_share_ms     POST /api/v1/models/<name>/versions (a new version each call)
  statement_floor_ms   the single-point statement the service sends for a log_metric (point,
                       summary with its stale rollup range, key set, audit event; a transaction of its own in
                       autocommit mode) from an open psycopg connection, p50: the database's own part
                       of log_metric_share_ms, to set beside the budget

A share is the p50 round trip to gunicorn minus the p50 round trip of the same request to a
replaying server that answers at once with the bytes gunicorn gave (so the client's own work and
the loopback are taken off, as bench/client_floor.py does for the mlflow client). Real and
replayed calls alternate in rounds, and each round goes through all three endpoints, so a slow
spell of the machine hits every figure alike.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_bench .venv/bin/python bench/server_shares.py

bench/writes.py imports `measure_server_shares` and `shares_line` and appends the four figures
to its own last line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import socketserver
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/, for ingest's server helpers

from ingest import RESULTS, SCRATCH, STAMP, Server, setup_django

FIGURES = (
    "commit_floor_ms",
    "noop_share_ms",
    "log_metric_share_ms",
    "version_share_ms",
    "statement_floor_ms",
)


def shares_line(figures: dict[str, float]) -> str:
    """`commit_floor_ms=… noop_share_ms=… log_metric_share_ms=… version_share_ms=… statement_floor_ms=…`."""
    return " ".join(f"{name}={figures[name]:.3f}" for name in FIGURES)


class _Replay(socketserver.ThreadingTCPServer):
    """Answers every request on a kept-alive connection with `answer`, at once."""

    daemon_threads = True
    allow_reuse_address = True
    answer = b""


class _ReplayHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            length = 0
            line = self.rfile.readline()
            if not line:
                return
            while line not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                line = self.rfile.readline()
            self.rfile.read(length)
            self.wfile.write(self.server.answer)  # type: ignore[attr-defined]
            self.wfile.flush()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


class _Caller:
    """One kept-alive connection with TCP_NODELAY, as the mlflow client's requests has."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None) -> tuple[float, bytes]:
        """Seconds for one round trip, and the raw answer (status line, headers, body)."""
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status >= 400:
            raise SystemExit(f"{method} {path} -> {response.status}: {payload[:300]!r}")
        head = f"HTTP/1.1 {response.status} {response.reason}\r\n"
        head += f"Content-Type: {response.getheader('Content-Type', 'application/json')}\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        return elapsed, head.encode("latin-1") + payload

    def close(self) -> None:
        self.conn.close()


def commit_floor_ms(database_url: str, calls: int) -> float:
    """p50 of a one-row `INSERT; COMMIT` on an open psycopg connection (a table made for it)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor (id bigserial PRIMARY KEY, v int)")
        conn.commit()
        latencies = []
        for i in range(calls):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_floor (v) VALUES (%s)", (i,))
            conn.commit()
            latencies.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_commit_floor")
        conn.commit()
    return statistics.median(latencies) * 1e3


def single_point_sender(
    conn: Any, user: Any, run: Any, statement: str | None = None
) -> Callable[[int], None]:
    """A function that sends the service's single-point statement bare on an autocommit psycopg
    connection, a transaction of its own as the service sends it, its parameters built once,
    point n differing from the others by its timestamp (a new point on the same step, as most
    points of a run land in rollup buckets that exist already). `statement`: a part of it
    (`statement_sql(event=False)`), for writes.py's `parts` phase."""
    import psycopg

    from config.db import numbered_sql
    from tracker.services.single_point import STATEMENT, statement_params

    after = {"metrics": {"received": 1, "inserted": 0, "keys": ["loss"]}, "params": {}, "tags": {}}
    params = statement_params(
        actor=user, run_uuid=run.uuid, key="loss", step=7, timestamp=0, value=0.5, is_nan=False,
        event_action="run.batch_logged", event_after=after,
    )  # fmt: skip
    sql, names = numbered_sql(statement or STATEMENT)
    values = [params[name] for name in names]
    timestamp = names.index("timestamp")
    cursor = psycopg.RawCursor(conn)

    def send(n: int) -> None:
        values[timestamp] = n + 1
        cursor.execute(sql, values)

    return send


def statement_floor_ms(
    database_url: str, calls: int, user: Any, run: Any, statement: str | None = None
) -> float:
    """p50 of the single-point statement alone (single_point_sender) on an open connection: what
    the database itself takes for the write that log_metric_share_ms measures."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, prepare_threshold=1) as conn:
        send = single_point_sender(conn, user, run, statement)
        latencies = []
        for i in range(calls):
            started = time.perf_counter()
            send(i)
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1e3


def _shares(
    real: _Caller,
    replay: _Caller,
    server: _Replay,
    requests: dict[str, Callable[[int], tuple[str, str, bytes | None]]],
    *,
    calls: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """Per endpoint, p50 to gunicorn minus p50 to the replaying server. Each round sends every
    endpoint its real calls and then their replays, so a slow spell of the machine falls on all
    of them alike, and a write's share is compared with the no-op's of the same minutes (measured
    one endpoint after another, the budget's two sides had drifted apart by a third)."""
    real_times: dict[str, list[float]] = {name: [] for name in requests}
    replay_times: dict[str, list[float]] = {name: [] for name in requests}
    per_round = max(1, calls // rounds)
    i = 0
    for _ in range(rounds):
        for name, request in requests.items():
            for _ in range(per_round):
                elapsed, answer = real.call(*request(i))
                real_times[name].append(elapsed)
                i += 1
            server.answer = answer
            for _ in range(per_round):
                replay_times[name].append(replay.call(*request(10**9 + i))[0])
    figures = {}
    for name in requests:
        real_p50, replay_p50 = statistics.median(real_times[name]), statistics.median(replay_times[name])
        figures[name] = {
            "share_ms": (real_p50 - replay_p50) * 1e3,
            "p50_ms": real_p50 * 1e3,
            "p95_ms": _percentile(real_times[name], 0.95) * 1e3,
            "client_p50_ms": replay_p50 * 1e3,
        }
    return figures


def bench_objects(label: str) -> tuple[Any, str, Any, Any, Any]:
    """A contributor named `bench` with a fresh token, an experiment with a run, and a registered
    model, in the DATABASE_URL database: (user, token, experiment, run, model)."""
    from django.contrib.auth import get_user_model

    from accounts.roles import Role
    from accounts.services import assign_role, create_api_token
    from registry.services import create_registered_model
    from tracker.services import create_experiment, start_run

    user, _ = get_user_model().objects.get_or_create(username="bench")
    assign_role(user=user, role=Role.CONTRIBUTOR)
    _, token = create_api_token(user=user, name=f"bench {label} {STAMP}")
    name = f"bench-{label}-{time.time_ns()}"
    experiment = create_experiment(actor=user, name=name)
    run = start_run(actor=user, experiment=experiment, name=label)
    model = create_registered_model(actor=user, name=name)
    return user, token, experiment, run, model


def write_requests(run: Any, model: Any) -> dict[str, Callable[[int], tuple[str, str, bytes | None]]]:
    """The issue's three requests on the native API, request `i` of each differing as it must:
    the no-op, a `log_metric` (one point, a new step each call) and a new model version."""
    log_path = f"/api/v1/runs/{run.uuid}/log-batch"
    version_body = json.dumps({"run_id": run.uuid}).encode()
    return {
        "noop": lambda i: ("GET", "/api/v1/me", None),
        "log_metric": lambda i: (
            "POST",
            log_path,
            json.dumps({"metrics": [{"key": "loss", "value": 1.0 / (abs(i) + 2), "step": i}]}).encode(),
        ),
        "version": lambda i: ("POST", f"/api/v1/models/{model.name}/versions", version_body),
    }


def measure_server_shares(*, calls: int = 400, rounds: int = 8, warmup: int = 30, workers: int = 2) -> dict:
    """Set up a user, run and model in the DATABASE_URL database, start gunicorn, measure.

    Returns the four FIGURES (ms) and, under "detail", each endpoint's p50/p95 and client floor.
    """
    setup_django()
    from django.db import connection

    from tracker.services import start_run

    if connection.vendor != "postgresql":
        raise SystemExit("server_shares measures PostgreSQL: set DATABASE_URL")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    user, token, experiment, run, model = bench_objects("shares")
    statement_run = start_run(actor=user, experiment=experiment, name="statement floor")
    connection.close()

    floor = commit_floor_ms(os.environ["DATABASE_URL"], calls)
    statement_floor = statement_floor_ms(os.environ["DATABASE_URL"], calls, user, statement_run)
    server = Server(workers=workers, worker_class="gthread")
    replay_server = _Replay(("127.0.0.1", 0), _ReplayHandler)
    threading.Thread(target=replay_server.serve_forever, daemon=True).start()
    try:
        server.wait_ready()
        real = _Caller(server.port, token)
        replay = _Caller(replay_server.server_address[1], token)
        endpoints = write_requests(run, model)
        for request in endpoints.values():
            for i in range(warmup):  # connections, caches, the first key and version
                real.call(*request(-1 - i))
        detail = _shares(real, replay, replay_server, endpoints, calls=calls, rounds=rounds)
        real.close()
        replay.close()
    finally:
        server.stop()
        replay_server.shutdown()
    return {
        "commit_floor_ms": floor,
        "noop_share_ms": detail["noop"]["share_ms"],
        "log_metric_share_ms": detail["log_metric"]["share_ms"],
        "version_share_ms": detail["version"]["share_ms"],
        "statement_floor_ms": statement_floor,
        "detail": detail,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400, help="timed calls per endpoint (default 400)")
    parser.add_argument("--rounds", type=int, default=8, help="real/replayed alternations (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/shares-<time>.json)")
    args = parser.parse_args()
    figures = measure_server_shares(calls=args.calls, rounds=args.rounds, workers=args.workers)
    budget = figures["noop_share_ms"] + 2 * figures["commit_floor_ms"]
    figures["budget_ms"] = budget
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"shares-{STAMP}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    for name, row in figures["detail"].items():
        print(
            f"{name:<10} share {row['share_ms']:6.2f} ms  (p50 {row['p50_ms']:.2f}, p95 {row['p95_ms']:.2f}, "
            f"client alone {row['client_p50_ms']:.2f})"
        )
    print(f"budget per write (noop share + 2 x commit floor): {budget:.2f} ms")
    print(f"load average at the end: {figures['load_average']}")
    print(f"results: {out}")
    print(f"shares: {shares_line(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
