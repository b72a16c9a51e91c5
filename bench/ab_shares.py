#!/usr/bin/env python
"""What a change saves per request, measured against the commit before on the same machine at
the same minutes.

Machines of this kind drift by up to a third between runs a few minutes apart (bench/README.md),
so a run of server_shares.py before a change and another after it compare the machine as much as
the code. This script starts gunicorn from this checkout and from another one (`--before`), both
on the DATABASE_URL database, and sends each request to the two alternately, in rounds, so a slow
spell of the machine falls on both sides. It prints each request's p50 and mean round trip on
both sides and what the change saved (the mean shows what a rare pause, a full garbage
collection say, costs every request on average; the p50 does not see it). The no-op, which a
change to the writes leaves alone, shows the noise.

The other checkout is usually a worktree of the commit before, served with this virtualenv, so it
must need the same packages and the same migrations:

    git worktree add /tmp/before HEAD~1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_bench \\
        .venv/bin/python bench/ab_shares.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/

from ingest import RESULTS, ROOT, SCRATCH, STAMP, Server, setup_django
from server_shares import _Caller, bench_objects, write_requests

Request = Callable[[int], tuple[str, str, bytes | None]]


def mlflow_requests(run: Any, model: Any) -> dict[str, Request]:
    """The same two writes through the MLflow API, as the mlflow client sends them."""
    return {
        "mlflow_log_metric": lambda i: (
            "POST",
            "/api/2.0/mlflow/runs/log-metric",
            json.dumps(
                {"run_id": run.uuid, "key": "mlflow-loss", "value": 0.5, "step": i, "timestamp": 1}
            ).encode(),
        ),
        "mlflow_version": lambda i: (
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            json.dumps(
                {"name": model.name, "source": f"runs:/{run.uuid}/model", "run_id": run.uuid}
            ).encode(),
        ),
    }


def alternate(
    sides: dict[str, _Caller], requests: dict[str, Request], *, calls: int, rounds: int
) -> dict[str, dict[str, dict[str, float]]]:
    """p50 and mean round trip (ms) per request and side. Each round sends every request to each
    side in turn; every call is a new step or version, numbered apart per side."""
    times: dict[str, dict[str, list[float]]] = {name: {side: [] for side in sides} for name in requests}
    per_round = max(1, calls // rounds)
    for round_number in range(rounds):
        for name, request in requests.items():
            for offset, (side, caller) in enumerate(sides.items()):
                first = (offset * rounds + round_number) * per_round
                for i in range(first, first + per_round):
                    times[name][side].append(caller.call(*request(i))[0])
    return {
        figure: {
            name: {side: average(values) * 1e3 for side, values in by_side.items()}
            for name, by_side in times.items()
        }
        for figure, average in (("p50", statistics.median), ("mean", statistics.fmean))
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (the commit before)")
    parser.add_argument(
        "--calls", type=int, default=1200, help="timed calls per request and side (default 1200)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="alternations (default 12)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per side (default 2)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/ab-shares-<time>.json)")
    args = parser.parse_args()
    before = args.before.resolve()
    if not (before / "config" / "wsgi.py").exists():
        raise SystemExit(f"{before} is not a Lab Ledger checkout")

    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("ab_shares measures PostgreSQL: set DATABASE_URL")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    _, token, _, run, model = bench_objects("ab")
    connection.close()
    requests = write_requests(run, model) | mlflow_requests(run, model)

    servers = {
        "before": Server(workers=args.workers, worker_class="gthread", root=before),
        "after": Server(workers=args.workers, worker_class="gthread", root=ROOT),
    }
    try:
        for server in servers.values():
            server.wait_ready()
        sides = {side: _Caller(server.port, token) for side, server in servers.items()}
        for request in requests.values():  # connections, caches, the first key and version
            for caller in sides.values():
                for i in range(30):
                    caller.call(*request(-1 - i))
        figures = alternate(sides, requests, calls=args.calls, rounds=args.rounds)
    finally:
        for server in servers.values():
            server.stop()

    print(f"{'request':<20} {'figure':<6} {'before ms':>10} {'after ms':>10} {'saved ms':>10}")
    for name in requests:
        for figure, by_request in figures.items():
            before_ms, after_ms = by_request[name]["before"], by_request[name]["after"]
            saved = before_ms - after_ms
            print(f"{name:<20} {figure:<6} {before_ms:>10.3f} {after_ms:>10.3f} {saved:>10.3f}")
    out = args.out or RESULTS / f"ab-shares-{STAMP}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"before": str(before), "calls": args.calls, "rounds": args.rounds}
    result |= {f"{figure}_ms": by_request for figure, by_request in figures.items()}
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
