#!/usr/bin/env python
"""How fast can the mlflow client go when the server costs nothing?

The MLflow targets in issue 3 are ratios of wall time measured through the real client,
and the client spends CPU of its own on every call (building the request, requests and
urllib3, parsing the protobuf JSON back into entities). This script measures that floor:
it puts a replaying proxy between the client and a real server. The first request to each
timed endpoint goes through to the server and its answer is kept; every later request to
that endpoint gets the kept bytes back at once, so the server's share is close to nothing.
The proxy's own round trip is measured and reported too (`proxy_round_trip_p50_ms`), so it
can be taken off the floor.

The timed calls are the shared harness's own (log_metric one at a time, search_runs with
the harness's filter and order over 1,000 seeded runs, create_model_version x 100), and the
search runs are seeded with the harness's own setup function, imported from the shared
bench folder. Run it with the mlflow virtualenv's Python:

  MLFLOW_TRACKING_TOKEN=... /tmp/mlflow-venv/bin/python bench/client_floor.py \
      --upstream http://127.0.0.1:5002 --out bench/results/client-floor-<stamp>.json

It prints a table of the floor figures; bench/share_ratios.py takes them off each server's times.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from mlflow.tracking import MlflowClient

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"  # ../shared/bench

# Endpoints whose answers are replayed after the first; search answers are kept per query.
REPLAYED = {
    ("POST", "/api/2.0/mlflow/runs/log-metric"),
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("POST", "/api/2.0/mlflow/model-versions/create"),
}
FORWARDED_HEADERS = ("authorization", "content-type", "accept", "user-agent")


class ReplayProxy:
    """A keep-alive HTTP/1.1 proxy on its own event-loop thread."""

    def __init__(self, upstream: str, port: int) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port or 80
        self.port = port
        self.kept: dict[tuple[str, str, bytes], bytes] = {}
        self.replayed = 0
        self.forwarded = 0
        self._upstream = threading.local()
        self._started = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._serve, daemon=True).start()
        self._started.wait()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        for sock in server.sockets:
            sock.setsockopt(6, 1, 1)  # TCP_NODELAY, as gunicorn sets it
        self._started.set()
        loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(6, 1, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                writer.write(self._answer(method, target, headers, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _answer(self, method: str, target: str, headers: dict, body: bytes) -> bytes:
        path = target.split("?", 1)[0]
        replayed = (method, path) in REPLAYED
        key = (method, path, body if path.endswith("/runs/search") else b"")
        if replayed and key in self.kept:
            self.replayed += 1
            return self.kept[key]
        self.forwarded += 1
        answer = self._forward(method, target, headers, body)
        if replayed and answer.startswith(b"HTTP/1.1 200"):
            self.kept[key] = answer
        return answer

    def _forward(self, method: str, target: str, headers: dict, body: bytes) -> bytes:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
        sent = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        connection.request(method, target, body=body, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        content_type = response.getheader("Content-Type", "application/json")
        return (
            f"HTTP/1.1 {response.status} {response.reason}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode("latin-1") + payload


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def timed(calls: int, call) -> list[float]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)
    return latencies


def seed(client: MlflowClient, bench, args) -> tuple[str, str, list[str]]:
    """An experiment with the harness's search runs, and a run to log to; made once. With
    --seeded, a later run on the same server reads them from that file instead of seeding again
    (a thousand runs through the client take longer than the measurement itself)."""
    if args.seeded and args.seeded.exists():
        seeded = json.loads(args.seeded.read_text())
        return seeded["experiment_id"], seeded["run_id"], seeded["expected_ids"]
    experiment_id = client.create_experiment(f"client-floor-{time.time_ns()}")
    run_id = client.create_run(experiment_id, run_name="floor-log-metric").info.run_id
    setup = SimpleNamespace(search_runs=args.search_runs)
    # The harness seeds each phase with "<seed>-<phase>": the same runs, so the same 56 matches
    # (a plain Random(seed) once made 44, and the floor read a smaller answer than the harness).
    rng = random.Random(f"{args.seed}-search")
    _, expected_ids, _ = bench._search_setup(client, experiment_id, setup, rng, 0)
    if args.seeded:
        seeded = {"experiment_id": experiment_id, "run_id": run_id, "expected_ids": expected_ids}
        args.seeded.write_text(json.dumps(seeded))
    return experiment_id, run_id, expected_ids


def measure(client: MlflowClient, bench, args, experiment_id: str, run_id: str, expected_ids: list[str]):
    rng = random.Random(f"{args.seed}-log_metric")
    log_metric = timed(
        args.warmup + args.latency_calls,
        lambda i: client.log_metric(
            run_id, "loss", rng.random(), timestamp=int(time.time() * 1000), step=i, synchronous=True
        ),
    )[args.warmup :]

    def search(_):
        found = client.search_runs(
            [experiment_id], filter_string=bench.SEARCH_FILTER, order_by=bench.SEARCH_ORDER, max_results=100
        )
        if [run.info.run_id for run in found] != expected_ids:
            raise SystemExit("search answered other runs than the harness expects")

    search_latencies = timed(3 + args.search_queries, search)[3:]

    name = f"floor-model-{time.time_ns()}"
    started = time.perf_counter()
    client.create_registered_model(name)
    versions = timed(
        args.model_versions,
        lambda _: client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id),
    )
    client.set_registered_model_alias(name, "champion", "1")
    registry_total = time.perf_counter() - started

    return {
        "proxy_round_trip_p50_ms": percentile(proxy_round_trips(args.port, args.latency_calls), 50) * 1e3,
        "log_metric_p50_ms": percentile(log_metric, 50) * 1e3,
        "log_metric_p95_ms": percentile(log_metric, 95) * 1e3,
        "search_p50_ms": percentile(search_latencies, 50) * 1e3,
        "search_p95_ms": percentile(search_latencies, 95) * 1e3,
        "create_model_version_p50_ms": percentile(versions, 50) * 1e3,
        "registry_total_s": registry_total,
    }


def proxy_round_trips(port: int, calls: int) -> list[float]:
    """The proxy's own share of each figure: a bare http.client request for a replayed answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.connect()
    connection.sock.setsockopt(6, 1, 1)

    def call(_):
        connection.request("POST", "/api/2.0/mlflow/runs/log-metric", body=b"{}")
        connection.getresponse().read()

    latencies = timed(calls, call)
    connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True, help="a real server, e.g. http://127.0.0.1:5002")
    parser.add_argument("--port", type=int, default=5009)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument(
        "--seeded", type=Path, help="keep the seeded experiment's ids here, and reuse them if it exists"
    )
    parser.add_argument("--shared-bench", type=Path, default=SHARED_BENCH)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--search-runs", type=int, default=1000)
    parser.add_argument("--search-queries", type=int, default=20)
    parser.add_argument("--model-versions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, str(args.shared_bench.resolve()))
    import mlflow_client_bench as bench

    proxy = ReplayProxy(args.upstream, args.port)
    proxy.start()
    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{args.port}")
    experiment_id, run_id, expected_ids = seed(client, bench, args)
    samples = []
    for _ in range(args.repeats):
        proxy.kept.clear()
        samples.append(measure(client, bench, args, experiment_id, run_id, expected_ids))
    floor = {field: statistics.median(sample[field] for sample in samples) for field in samples[0]}
    result = {"upstream": args.upstream, "floor": floor, "samples": samples, "replayed": proxy.replayed}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print(f"| figure | the client alone (replaying proxy, median of {args.repeats}) |")
    print("|---|---|")
    for field, value in floor.items():
        print(f"| {field} | {value:.2f} |")


if __name__ == "__main__":
    main()
