#!/usr/bin/env python
"""Bulk upload benchmark: a CSV of N points, end to end, next to the raw COPY rate of the same rows.

1. Writes a CSV of N points (four keys, distinct steps) under var/bench/.
2. Starts gunicorn and one Celery worker (solo pool) on the database DATABASE_URL names and the
   broker REDIS_URL names (without it, the SQLite-backed broker `make run` uses).
3. POSTs the file to /api/v1/uploads as the raw request body and polls the upload until it is
   done; meanwhile it logs one point to the same run every 0.2 s through the native API and
   records how long each call took (the upload must never hold the writers up).
4. Reads the worker's peak RSS (VmHWM), then COPYs the same rows (binary, as the ingest path
   does) into a table with the point table's columns and primary key (checked in the catalog),
   and times only COPY. The worker's log (var/bench/bulk-worker-*.log) has one line per upload
   with the phase timings (parse, validate, pack, move, summaries).

Figures: bench/README.md (2 M points, ratio 0.69 to 0.70 on a loaded 2-core machine).

Last line: `bulk: points=N points_per_s=… copy_points_per_s=… ratio=… worker_peak_rss_mb=…`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/bulk_ingest.py --points 2000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SCRATCH = ROOT / "var" / "bench"
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
KEYS = ("train/loss", "train/acc", "val/loss", "val/acc")
BASE_TIMESTAMP_MS = 1_700_000_000_000
CHUNK = 500_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--points", type=int, default=10_000_000, help="rows in the file (default 10,000,000)"
    )
    return parser.parse_args()


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DEBUG", "false")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH / f'bulk-{STAMP}.sqlite3'}"
    if not os.environ.get("REDIS_URL"):
        os.environ.setdefault("CELERY_BROKER_URL", f"sqla+sqlite:///{SCRATCH / f'broker-{STAMP}.sqlite3'}")
    os.environ["CELERY_EAGER"] = "false"
    os.environ.setdefault("LOG_LEVEL", "INFO")  # the worker logs how long staging and the final move took
    os.environ.setdefault("ARTIFACT_ROOT", str(SCRATCH / "artifacts"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def rows_of(start: int, stop: int) -> dict[str, np.ndarray]:
    """Points start..stop of the file: key i % 4, step i // 4, a wave for the value."""
    index = np.arange(start, stop, dtype=np.int64)
    return {
        "key": index % len(KEYS),
        "step": index // len(KEYS),
        "value": np.round(np.sin(index / 1000.0), 6),
        "timestamp": BASE_TIMESTAMP_MS + index,
    }


def write_csv(path: Path, points: int) -> None:
    with path.open("w") as out:
        out.write("key,step,value,timestamp\n")
        for start in range(0, points, CHUNK):
            rows = rows_of(start, min(start + CHUNK, points))
            names = np.array(KEYS)[rows["key"]]
            out.writelines(
                f"{k},{s},{v:.6f},{t}\n"
                for k, s, v, t in zip(
                    names.tolist(),
                    rows["step"].tolist(),
                    rows["value"].tolist(),
                    rows["timestamp"].tolist(),
                    strict=True,
                )
            )


def prepare_actor():
    from django.contrib.auth import get_user_model

    from accounts.roles import Role
    from accounts.services import assign_role, create_api_token
    from tracker.services import create_experiment, start_run

    user, _ = get_user_model().objects.get_or_create(username="bench-bulk")
    assign_role(user=user, role=Role.CONTRIBUTOR)
    _, token = create_api_token(user=user, name=f"bench-{STAMP}")
    experiment = create_experiment(actor=user, name=f"bulk-bench-{uuid.uuid4().hex[:8]}")
    return user, token, start_run(actor=user, experiment=experiment, name="bulk")


def start(command: list[str], name: str) -> subprocess.Popen:
    log = (SCRATCH / f"{name}-{STAMP}.log").open("w")
    return subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


def request(port: int, method: str, path: str, token: str, body=None, headers=None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request(
        method, path, body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, (json.loads(data) if data else {})


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def copy_rate(points: int, run_id: int) -> float:
    """Points per second that COPY alone stores into a table shaped like the point table."""
    from django.db import connection, transaction

    from tracker.ingest.staging import _COPY_HEADER, _COPY_ROW, _COPY_TRAILER
    from tracker.models import MetricPoint

    table = MetricPoint._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return float("nan")
        cursor.execute("DROP TABLE IF EXISTS bench_copy_points")
        cursor.execute(f"CREATE TABLE bench_copy_points (LIKE {table} INCLUDING ALL)")
        # Equivalent means the same columns and the same primary key, whose index COPY maintains.
        shapes = []
        for name in (table, "bench_copy_points"):
            cursor.execute(
                "SELECT (SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) "
                "FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped), "
                "(SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index AS i, "
                "unnest(i.indkey) WITH ORDINALITY AS k(attnum, n), pg_attribute AS a "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary "
                "AND a.attrelid = i.indrelid AND a.attnum = k.attnum)",
                [name, name],
            )
            shapes.append(cursor.fetchone())
        if shapes[0] != shapes[1] or not shapes[1][1]:
            raise SystemExit(f"the COPY table is not shaped like {table}: {shapes}")
    elapsed = 0.0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, points, CHUNK):
            rows = rows_of(start, min(start + CHUNK, points))
            packed = np.empty(len(rows["step"]), dtype=_COPY_ROW)
            packed["fields"] = 6
            packed["run_len"], packed["key_len"], packed["step_len"] = 8, 4, 8
            packed["ts_len"], packed["value_len"], packed["nan_len"] = 8, 8, 1
            packed["run_id"], packed["key_id"], packed["step"] = run_id, rows["key"] + 1, rows["step"]
            packed["timestamp"], packed["value"], packed["is_nan"] = rows["timestamp"], rows["value"], False
            data = packed.tobytes()
            started = time.perf_counter()
            columns = "run_id, key_id, step, timestamp, value, is_nan"
            with cursor.cursor.copy(f"COPY bench_copy_points ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_COPY_HEADER)
                copy.write(data)
                copy.write(_COPY_TRAILER)
            elapsed += time.perf_counter() - started
        started = time.perf_counter()
    elapsed += time.perf_counter() - started  # the COMMIT
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy_points")
    return points / elapsed


def main() -> None:
    args = parse_args()
    setup_django()
    from django.db import connection

    path = SCRATCH / f"bulk-{args.points}.csv"
    if not path.exists() or path.stat().st_mtime < Path(__file__).stat().st_mtime:
        print(f"writing {path} ({args.points:,} points)…", flush=True)
        write_csv(path, args.points)
    _, token, run = prepare_actor()
    port = 18000 + os.getpid() % 1000
    bin_dir = Path(sys.executable).parent
    server = start(
        [str(bin_dir / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "--workers", "2"], "gunicorn"
    )
    worker = start(
        [str(bin_dir / "celery"), "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        "bulk-worker",
    )  # fmt: skip
    try:
        wait_ready(port)
        time.sleep(3)  # the worker's start-up, so that it is not counted
        latencies: list[float] = []
        running = threading.Event()
        stop = threading.Event()

        def log_points() -> None:
            step = 0
            while not stop.is_set():
                if running.is_set():
                    body = json.dumps(
                        {"metrics": [{"key": "bench/live", "value": 1.0, "step": step, "timestamp": 1}]}
                    )
                    started = time.perf_counter()
                    request(port, "POST", f"/api/v1/runs/{run.uuid}/log-batch", token, body,
                            {"Content-Type": "application/json"})  # fmt: skip
                    latencies.append((time.perf_counter() - started) * 1000)
                    step += 1
                time.sleep(0.2)

        logger = threading.Thread(target=log_points, daemon=True)
        logger.start()
        started = time.perf_counter()
        with path.open("rb") as body:
            status, upload = request(
                port, "POST", f"/api/v1/uploads?run_id={run.uuid}&file_format=csv", token, body,
                {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
            )  # fmt: skip
        if status != 202:
            raise SystemExit(f"upload refused: {status} {upload}")
        stored_at = time.perf_counter()
        while True:
            _, upload = request(port, "GET", upload["url"], token)
            if upload["status"] == "running":
                running.set()
            if upload["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        stop.set()
        if upload["status"] != "done":
            raise SystemExit(f"upload failed: {upload['error']}")
        rss = peak_rss_mb(worker.pid)
    finally:
        for process in (worker, server):
            process.terminate()
            process.wait(timeout=60)
    copy_points_per_s = copy_rate(args.points, run.pk)
    points_per_s = args.points / elapsed
    result = {
        "points": args.points,
        "database": connection.vendor,
        "broker": "redis" if os.environ.get("REDIS_URL") else "sqlalchemy+sqlite",
        "file_bytes": path.stat().st_size,
        "store_file_s": round(stored_at - started, 2),
        "end_to_end_s": round(elapsed, 2),
        "worker_s": upload["duration_seconds"],
        "points_per_s": round(points_per_s),
        "copy_points_per_s": round(copy_points_per_s) if copy_points_per_s == copy_points_per_s else None,
        "ratio": round(points_per_s / copy_points_per_s, 3)
        if copy_points_per_s == copy_points_per_s
        else None,
        "worker_peak_rss_mb": round(rss, 1),
        "log_batch_during_upload_ms": {
            "calls": len(latencies),
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bulk-{connection.vendor}-{STAMP}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    print(
        f"bulk: points={args.points} points_per_s={result['points_per_s']} "
        f"copy_points_per_s={result['copy_points_per_s']} ratio={result['ratio']} "
        f"worker_peak_rss_mb={result['worker_peak_rss_mb']}"
    )


if __name__ == "__main__":
    main()
