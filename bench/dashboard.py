#!/usr/bin/env python
"""Dashboard benchmark: the run table at 100,000 runs, then (through bench/chart_figures.py)
chart data and the compare page.

The data lives in the PostgreSQL that DATABASE_URL names, in one experiment named
`bench-dashboard-<N>`: N runs x 20 params x 10 metric summaries, a tag and a dataset input per
run, written with COPY. A later run of the script finds the experiment complete and reuses it.

What is timed is server time: each request goes through Django's full handler in this process
(middleware, login session or bearer token, view, template or serializer), with no network.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_h5 \
        .venv/bin/python bench/dashboard.py --runs 100000

The last line printed is
`dashboard: runs=N run_table_p95_ms=… chart_p95_ms=… chart_peak_mb=… compare_ready_s=…`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import chart_figures  # bench/chart_figures.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
PARAMS, METRICS = 20, 10
START = datetime(2025, 1, 1, tzinfo=UTC)
# Param values come from small sets, as a sweep's do, so filters and groups have many runs each.
CHOICES = [[f"v{i}" for i in range(2 + (k % 5) * 2)] for k in range(PARAMS)]
DATASET_VERSIONS = ["1.0", "2.0", "2.1"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the experiment (default 100,000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per query shape (default 20)")
    parser.add_argument("--skip-charts", action="store_true", help="run-table figures only")
    return parser.parse_args()


def bench_user():
    from django.contrib.auth import get_user_model

    from accounts.roles import Role
    from accounts.services import assign_role, create_api_token

    user, created = get_user_model().objects.get_or_create(username="bench-dashboard")
    if created:
        assign_role(user=user, role=Role.CONTRIBUTOR)
    _, token = create_api_token(user=user, name=f"bench-dashboard-{STAMP}")
    return user, token


def _copy(cursor, table: str, columns: str, rows) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def create_run_table_data(*, runs: int, user) -> int:
    """The experiment with `runs` runs, created once with COPY and reused afterwards."""
    from django.db import connection, transaction

    from tracker.models import Experiment, ExperimentKey, Run
    from tracker.services import metric_key_ids

    name = f"bench-dashboard-{runs}"
    experiment = Experiment.objects.filter(name=name).first()
    if experiment is not None and experiment.keys.exists():  # the key set is written last
        return experiment.pk
    started = time.perf_counter()
    print(f"creating {runs:,} runs x {PARAMS} params x {METRICS} metrics in {name!r} …", flush=True)
    rng = random.Random(20261204)
    with transaction.atomic():
        if experiment is not None:  # an earlier attempt died half-way: start again
            Run.objects.filter(experiment=experiment).delete()
            experiment.delete()
        experiment = Experiment.objects.create(name=name, description="bench/dashboard.py data")
        key_ids = metric_key_ids(f"m{k}" for k in range(METRICS))
        with connection.cursor() as django_cursor:
            cursor = django_cursor.cursor
            cursor.execute("SELECT coalesce(max(id), 0) FROM tracker_run")
            first_id = cursor.fetchone()[0] + 1
            ids = range(first_id, first_id + runs)
            starts = [START + timedelta(seconds=30 * i) for i in range(runs)]
            _copy(
                cursor,
                "tracker_run",
                "id, uuid, experiment_id, name, status, start_time, end_time, user_id, artifact_uri, "
                "lifecycle, code_commit, source, environment, updated_at",
                (
                    (
                        run_id,
                        f"{rng.getrandbits(128):032x}",
                        experiment.pk,
                        f"run-{index:06d}",
                        "FINISHED" if index % 10 else "FAILED",
                        starts[index],
                        starts[index] + timedelta(seconds=60 + index % 600),
                        user.pk,
                        "",
                        "active",
                        f"{index % 97:040x}",
                        "",
                        "{}",
                        starts[index],
                    )
                    for index, run_id in enumerate(ids)
                ),
            )
            cursor.execute("SELECT setval(pg_get_serial_sequence('tracker_run', 'id'), %s)", [ids[-1]])
            _copy(
                cursor,
                "tracker_param",
                "run_id, key, value",
                ((run_id, f"p{k:02d}", rng.choice(CHOICES[k])) for run_id in ids for k in range(PARAMS)),
            )
            _copy(
                cursor,
                "tracker_tag",
                "run_id, key, value",
                ((run_id, "team", ("vision", "nlp", "speech")[run_id % 3]) for run_id in ids),
            )
            _copy(
                cursor,
                "tracker_datasetinput",
                "run_id, name, digest, version, source_type, source, context, schema, profile, tags, "
                "created_at",
                (
                    (run_id, "digits", f"{run_id % 3:064x}", DATASET_VERSIONS[run_id % 3], "", "",
                     "training", "", "", "[]", START)
                    for run_id in ids
                ),
            )  # fmt: skip

            def summaries():
                for run_id in ids:
                    for k in range(METRICS):
                        last = rng.random()
                        low, high = last * rng.random(), last + (1 - last) * rng.random()
                        yield (run_id, key_ids[f"m{k}"], last, False, 99, 1_700_000_000_000, low, high, 100)

            _copy(
                cursor,
                "tracker_metricsummary",
                "run_id, key_id, last_value, last_is_nan, last_step, last_timestamp, "
                "min_value, max_value, count",
                summaries(),
            )
        keys = [("param", f"p{k:02d}") for k in range(PARAMS)] + [("metric", f"m{k}") for k in range(METRICS)]
        keys += [("tag", "team"), ("dataset", "digits")]
        ExperimentKey.objects.bulk_create(
            [ExperimentKey(experiment=experiment, kind=kind, key=key) for kind, key in keys]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"created in {time.perf_counter() - started:.0f} s", flush=True)
    return experiment.pk


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# Filtered and sorted run-table views: what people ask of a big sweep.
SHAPES = [
    {"filter": "params.p01 = 'v1' and metrics.m1 > 0.5", "order_by": "metrics.m2 DESC"},
    {"filter": "datasets.version = '2.1' and metrics.m0 > 0.3", "order_by": "params.p02 ASC"},
    {"filter": "tags.team = 'nlp' and params.p03 IN ('v0', 'v1')", "order_by": "attributes.duration DESC"},
    {"filter": "metrics.m4 < 0.2", "order_by": "metrics.m4 ASC"},
    {"filter": "", "order_by": "metrics.m3 DESC"},
]


NEXT_LINK = re.compile(r'<a class="button" rel="next" href="([^"]+)">')
COUNT_URL = re.compile(r'data-count-url="([^"]+)"')


def measure_run_table(*, experiment_id: int, user, token: str, repeat: int) -> dict:
    from django.test import Client

    html = Client(HTTP_HOST="localhost")
    html.force_login(user)
    api = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    page_url = f"/experiments/{experiment_id}/runs/"
    api_url = f"/api/v1/experiments/{experiment_id}/runs"
    timings: dict[str, list[float]] = {}

    def timed(name: str, client, url: str) -> object:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.content[:500]!r}")
        timings.setdefault(name, []).append(elapsed)
        return response

    for index, shape in enumerate(SHAPES):
        query = {**shape, "page_size": 50}
        api_query = {"filter": shape["filter"], "order_by": shape["order_by"], "max_results": 50}
        timed(f"warm-{index}", html, f"{page_url}?{urlencode(query)}")
        for _ in range(repeat):
            first = timed(f"html-{index}", html, f"{page_url}?{urlencode(query)}")
            found = NEXT_LINK.search(first.content.decode())
            if found:  # the second page, through the table's own "Next page" link
                timed(f"html-{index}-page2", html, page_url + unescape(found.group(1)))
            counted = COUNT_URL.search(first.content.decode())
            if counted:  # the total, which run_table.js fetches once the page is shown
                timed(f"count-{index}", html, unescape(counted.group(1)))
            timed(f"api-{index}", api, f"{api_url}?{urlencode(api_query)}")
    # The experiment list over every experiment (this one's N runs counted and their last
    # activity found), and a search of it ordered by activity.
    for _ in range(repeat):
        timed("list", html, "/")
        timed("list-search", html, "/?" + urlencode({"q": "bench", "sort": "activity"}))
    # The page's own requests make run_table_p95_ms; the total's request, which the browser
    # sends after the page is drawn, has its own figure.
    every = [t for name, values in timings.items() if name.startswith(("html", "api")) for t in values]
    counts = [t for name, values in timings.items() if name.startswith("count") for t in values]
    per_shape = {
        name: round(p95(values), 1) for name, values in timings.items() if not name.startswith("warm")
    }
    return {"run_table_p95_ms": round(p95(every), 1), "per_shape_p95_ms": per_shape,
            "run_table_median_ms": round(statistics.median(every), 1),
            "count_p95_ms": round(p95(counts), 1) if counts else None,
            "experiment_list_p95_ms": round(p95(timings["list"] + timings["list-search"]), 1)}  # fmt: skip


def chart_and_compare_figures() -> dict:
    """The chart-data and compare-page figures, from bench/chart_figures.py."""
    data = chart_figures.create_chart_data()
    return {**chart_figures.measure_chart(data), **chart_figures.measure_compare(data)}


def main() -> None:
    args = parse_args()
    chart_figures.setup_django(script="bench/dashboard.py")
    user, token = bench_user()
    experiment_id = create_run_table_data(runs=args.runs, user=user)
    figures = measure_run_table(experiment_id=experiment_id, user=user, token=token, repeat=args.repeat)
    for name, value in figures["per_shape_p95_ms"].items():
        print(f"  {name:<16} p95 {value:8.1f} ms")
    if not args.skip_charts:
        figures.update(chart_and_compare_figures())
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"dashboard-{args.runs}-{STAMP}.json"
    # The machine's load while measuring: other processes' CPU use shows up as server time.
    figures["load_average_1m"] = round(os.getloadavg()[0], 1)
    out.write_text(json.dumps({"runs": args.runs, **figures}, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    fields = ["run_table_p95_ms", "chart_p95_ms", "chart_peak_mb", "compare_ready_s"]
    values = " ".join(f"{name}={figures.get(name, 'nan')}" for name in fields)
    print(f"load average (1 min) at the end: {figures['load_average_1m']} on {os.cpu_count()} cores")
    listed = figures["experiment_list_p95_ms"]
    print(f"experiment list (every experiment, and a search by activity): p95 {listed} ms")
    if figures.get("count_p95_ms") is not None:
        print(f"total of matching runs (runs/count.json, after the page): p95 {figures['count_p95_ms']} ms")
    print(f"dashboard: runs={args.runs} {values}")


if __name__ == "__main__":
    main()
