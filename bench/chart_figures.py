#!/usr/bin/env python
"""Chart figures: chart data for 10 runs x 1,000,000 points of one key (server time and the
request's peak memory), and a compare page of 20 runs x 5 keys drawn in headless Chromium.

bench/dashboard.py imports `create_chart_data`, `measure_chart` and `measure_compare`; run on
its own it prints its figures last on one line:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_h4 .venv/bin/python bench/chart_figures.py

The data lives in one experiment per size (`bench-charts-<runs>x<points>`), written through the
same storage functions the services use (PostgreSQL COPY, summaries and chart rollups kept on
write), and is reused by later runs. Chart requests go through Django's whole handler in this
process (session, middleware, view, JSON), so the time is server time with no network; peak
memory is tracemalloc's peak over one such request. The compare page is served over HTTP by a
threaded WSGI server in this process and drawn by /usr/bin/chromium; the figure is the time from
navigation start until every chart on the page has drawn its traces.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
COMPARE_RUNS, COMPARE_KEYS, COMPARE_STEPS = 20, 5, 5_000
# True once every chart of the compare page has drawn (compare.js marks each one).
DRAWN = "n => document.querySelectorAll('[id^=compare-chart-][data-drawn=\"1\"]').length === n"
CHUNK = 50_000  # points per write: COPY, summaries and rollups in one transaction
START_MS = 1_735_689_600_000  # 2025-01-01


@dataclass(frozen=True)
class ChartData:
    user_id: int
    chart_runs: list[str]  # run uuids, each with `points` points of `chart_key`
    chart_key: str
    compare_runs: list[str]  # 20 runs with 5 keys of COMPARE_STEPS points
    compare_keys: list[str]


def setup_django(*, script: str = "bench/chart_figures.py") -> None:
    """Django on the PostgreSQL that DATABASE_URL names, migrated; the bench scripts write with COPY."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DEBUG", "false")  # DEBUG keeps every SQL statement in memory
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit(f"{script} needs DATABASE_URL=postgres://… (it writes with COPY)")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _user():
    from django.contrib.auth import get_user_model

    from accounts.roles import Role
    from accounts.services import assign_role

    user, created = get_user_model().objects.get_or_create(username="bench-charts")
    if created:
        assign_role(user=user, role=Role.CONTRIBUTOR)
    return user


def _store(run, key_id: int, values, *, start_step: int = 0) -> None:
    """Points into the store the way log_batch writes them, in big chunks (no 1,000-point limit)."""
    from django.db import transaction

    from tracker.services import update_metric_summaries
    from tracker.services.metric_store import insert_points

    for begin in range(0, len(values), CHUNK):
        rows = [
            (key_id, start_step + step, START_MS + (start_step + step) * 100, float(value), False)
            for step, value in enumerate(values[begin : begin + CHUNK], start=begin)
        ]
        with transaction.atomic():
            update_metric_summaries(run=run, rows=insert_points(run_id=run.pk, rows=rows))


def _series(seed: int, points: int):
    """A noisy learning curve with one one-step spike, as a diverging batch would leave."""
    import numpy as np

    generator = np.random.default_rng(seed)
    steps = np.arange(points)
    values = 2.0 / (1 + steps / (points / 50)) + generator.normal(0, 0.02, points)
    values[int(points * 0.6180339)] = 25.0
    return values.tolist()


def _runs(*, user, name: str, count: int, keys: list[str], points: int, status: str) -> list[str]:
    """An experiment of `count` runs with `points` points per key; reused when already complete."""
    from tracker.models import Experiment, MetricSummary, Run
    from tracker.services import create_experiment, metric_key_ids, start_run, update_run

    experiment = Experiment.objects.filter(name=name).first()
    if experiment is not None:
        runs = list(Run.objects.filter(experiment=experiment).order_by("name"))
        complete = MetricSummary.objects.filter(run__in=runs, count=points).count() == count * len(keys)
        if len(runs) == count and complete:
            return [run.uuid for run in runs]
        sys.exit(
            f"experiment {name!r} is incomplete (an interrupted run?): delete it or use another database"
        )
    experiment = create_experiment(actor=user, name=name)
    key_ids = metric_key_ids(keys)
    uuids = []
    for index in range(count):
        run = start_run(
            actor=user,
            experiment=experiment,
            name=f"run-{index:03d}",
            start_time=datetime.fromtimestamp(START_MS / 1000, UTC) + timedelta(minutes=index),
        )
        for key_number, key in enumerate(keys):
            _store(run, key_ids[key], _series(index * 31 + key_number, points))
        update_run(actor=user, run=run, status=status)
        uuids.append(run.uuid)
        print(f"  {name}: run {index + 1}/{count} stored", flush=True)
    return uuids


def create_chart_data(*, runs: int = 10, points: int = 1_000_000) -> ChartData:
    """10 runs x 1,000,000 points of one key, and 20 runs x 5 keys x 5,000 points to compare."""
    user = _user()
    chart_runs = _runs(
        user=user,
        name=f"bench-charts-{runs}x{points}",
        count=runs,
        keys=["loss"],
        points=points,
        status="FINISHED",
    )
    keys = ["loss", "val_loss", "accuracy", "lr", "grad_norm"]
    compare_runs = _runs(
        user=user,
        name=f"bench-compare-{COMPARE_RUNS}x{COMPARE_KEYS}x{COMPARE_STEPS}",
        count=COMPARE_RUNS,
        keys=keys,
        points=COMPARE_STEPS,
        status="FINISHED",
    )
    _fold()
    return ChartData(user.pk, chart_runs, "loss", compare_runs, keys)


def _fold() -> None:
    """Fold the chart rollups the stored points left stale, as the beat's fold does within
    seconds of a write (`tracker.services.rollups`); until then a chart reads a stale range's
    points themselves, which for ten series of a million points took 7.8 s instead of 0.07."""
    from tracker.services.rollups import fold_stale_rollups

    started = time.perf_counter()
    folded = 0
    while count := fold_stale_rollups():
        folded += count
    if folded:
        print(f"  folded the rollups of {folded} series in {time.perf_counter() - started:.1f} s", flush=True)


def _client(user_id: int):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")  # one of the embedded defaults' ALLOWED_HOSTS
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def measure_chart(data: ChartData, *, repeats: int = 20, max_points: int = 1200) -> dict[str, float]:
    """Server time of the chart-data request for every run at full zoom-out, and its peak memory."""
    client = _client(data.user_id)
    query = {"runs": data.chart_runs, "keys": [data.chart_key], "max_points": max_points}
    body = client.get("/charts/series.json", query).json()  # warm-up, and a check of what comes back
    for series in body["series"]:
        assert series["downsampled"] and len(series["steps"]) <= max_points, series["totalPoints"]
        assert 25.0 in series["values"], "the spike was lost"
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get("/charts/series.json", query)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    tracemalloc.start()
    client.get("/charts/series.json", query)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    points = sum(series["totalPoints"] for series in body["series"])
    drawn = len(body["series"][0]["steps"])
    print(f"  chart data: {len(data.chart_runs)} series, {points:,} points stored, {drawn} drawn per series")
    p50, p95, peak_mb = statistics.median(samples), _p95(samples), peak / 2**20
    print(f"  chart data: p50 {p50:.1f} ms, p95 {p95:.1f} ms, peak {peak_mb:.1f} MB")
    return {"chart_p95_ms": round(_p95(samples), 1), "chart_peak_mb": round(peak / 2**20, 1)}


def _serve():
    """The app over HTTP on a free port, static files included (as the test live server does)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def measure_compare(data: ChartData, *, repeats: int = 5) -> dict[str, float]:
    """Time until every chart of a 20-run x 5-key compare page has drawn, in headless Chromium."""
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares this thread
    client = _client(data.user_id)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    server = _serve()
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/compare/?" + "&".join(
        [f"runs={run}" for run in data.compare_runs] + [f"keys={key}" for key in data.compare_keys]
    )
    samples = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": f"http://{host}:{port}"}]
            )
            page = context.new_page()
            page.goto(url)  # warm-up: the browser caches plotly.min.js as any visitor's would
            for _ in range(repeats):
                page.goto(url)
                page.wait_for_function(DRAWN, arg=len(data.compare_keys), timeout=60_000)
                samples.append(page.evaluate("performance.now()") / 1000)
                traces = page.evaluate("document.getElementById('compare-chart-0').data.length")
                assert traces == len(data.compare_runs), traces
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(
        f"  compare page: {len(data.compare_runs)} runs x {len(data.compare_keys)} keys drawn in "
        f"{statistics.median(samples):.2f} s median, {max(samples):.2f} s slowest of {repeats}"
    )
    return {"compare_ready_s": round(max(samples), 2)}


def main() -> None:
    setup_django()
    data = create_chart_data()
    figures = {**measure_chart(data), **measure_compare(data)}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"charts-{stamp}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    print("charts: " + " ".join(f"{name}={value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
