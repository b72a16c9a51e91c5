"""The compare page and the run page in Chromium: traces per chart, diff highlighting, smoothing,
log scale, group bands, a hostile run name shown as text, and a live run's chart growing."""

from __future__ import annotations

import contextlib
import io
import math
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from playwright.sync_api import expect

from config.inputs import TagInput
from tracker.permissions import Level, set_experiment_permission
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    finish_run,
    log_batch,
    log_inputs,
    start_run,
    store_artifact,
)

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"
RESULTS = Path("test-results")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# A 1 x 1 PNG: an artifact the compare page shows as an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def _run(contributor, experiment, name, *, opt, lr, version, minutes, finished=True, steps=300):
    run = start_run(
        actor=contributor, experiment=experiment, name=name, start_time=T0 + timedelta(minutes=minutes)
    )
    start_ms = 1_740_830_400_000 + minutes * 60_000
    loss = [
        MetricInput(
            "loss",
            1.0 / (1 + step / (20 * lr * 1000)) + (step % 9) / 300 + minutes / 40,
            step,
            start_ms + step * 1000,
        )
        for step in range(steps)
    ]
    acc = [
        MetricInput("accuracy", 1 - 1.0 / (2 + step / (30 + 10 * minutes)), step, start_ms + step * 1000)
        for step in range(steps)
    ]
    points = loss + acc + [MetricInput("epochs", 10.0, 0, start_ms)]  # the same in every run
    for start in range(0, len(points), 1000):
        log_batch(
            actor=contributor,
            run=run,
            metrics=points[start : start + 1000],
            params=[ParamInput("opt", opt), ParamInput("lr", str(lr))] if start == 0 else (),
        )
    log_inputs(
        actor=contributor, run=run, datasets=[DatasetSpec("digits", (f"{minutes + 10:x}" * 64)[:64], version)]
    )
    weights = io.BytesIO(b"weights %d" % minutes)
    store_artifact(actor=contributor, owner=run, path="model.pkl", content=weights)
    store_artifact(actor=contributor, owner=run, path="curve.png", content=io.BytesIO(PNG))
    if finished:
        run = finish_run(actor=contributor, run=run, end_time=run.start_time + timedelta(minutes=5))
    return run


@pytest.fixture
def compared(transactional_db, contributor):
    experiment = create_experiment(actor=contributor, name="compare-sweep")
    return [
        _run(contributor, experiment, "adam-fast", opt="adam", lr=0.01, version="2.1", minutes=0),
        _run(contributor, experiment, "adam-slow", opt="adam", lr=0.001, version="2.1", minutes=1),
        _run(contributor, experiment, "sgd-fast", opt="sgd", lr=0.01, version="2.0", minutes=2),
        _run(contributor, experiment, HOSTILE, opt="sgd", lr=0.005, version="2.1", minutes=3),
    ]


def compare_url(live_server, runs, extra: str = "") -> str:
    return f"{live_server.url}/compare/?" + "&".join(f"runs={run.uuid}" for run in runs) + extra


def traces(page, element_id: str) -> list[dict]:
    return page.evaluate(
        """id => document.getElementById(id).data.map(t => ({
            name: t.name, n: t.x.length, y: Array.from(t.y).slice(0, 50), fill: t.fill || null,
            opacity: t.opacity === undefined ? 1 : t.opacity, showlegend: t.showlegend !== false }))""",
        element_id,
    )


def wait_drawn(page, element_id: str) -> None:
    page.wait_for_selector(f"#{element_id}[data-drawn='1'] svg path.js-line", state="attached")


def test_compare_draws_a_trace_per_run_diffs_smooths_logs_and_groups(
    login, viewer, compared, live_server, recorded
):
    RESULTS.mkdir(exist_ok=True)
    page = login(viewer)
    page.goto(compare_url(live_server, compared, "&keys=loss&keys=accuracy"))
    wait_drawn(page, "compare-chart-0")
    wait_drawn(page, "compare-chart-1")

    # One trace per run on every chart, each run in the same colour on both charts.
    for chart in ("compare-chart-0", "compare-chart-1"):
        assert [t["name"] for t in traces(page, chart)] == [
            "adam-fast", "adam-slow", "sgd-fast", "&lt;img src=x onerror=alert(1)&gt;",
        ]  # fmt: skip
    colours = page.evaluate(
        "['compare-chart-0', 'compare-chart-1']"
        ".map(id => document.getElementById(id).data.map(t => t.line.color))"
    )
    assert colours[0] == colours[1] and len(set(colours[0])) == 4
    # The hostile name is text in the legend, in the run list and in the diff header.
    assert HOSTILE in page.locator("#compare-chart-0 .legendtext").all_text_contents()
    assert page.locator(".compare-runs a", has_text=HOSTILE).count() == 1
    assert page.locator("#diff-table thead th", has_text=HOSTILE).count() == 1
    # Hover names the run, as text.
    page.evaluate("Plotly.Fx.hover('compare-chart-0', [{curveNumber: 3, pointNumber: 10}])")
    hover = page.locator("#compare-chart-0 .hoverlayer").text_content()
    assert HOSTILE in hover and "step 10" in hover
    page.evaluate("Plotly.Fx.unhover('compare-chart-0')")

    # The diff highlights what differs and can hide what is equal; dataset versions warn.
    assert page.locator("#diff-table tr.differs th", has_text="lr").count() == 1
    assert page.locator("#diff-table tr.differs td.diff").count() >= 8
    assert page.locator("#dataset-warning").is_visible()
    same_rows = page.locator("#diff-table tr.same")
    assert same_rows.count() >= 1 and same_rows.first.is_visible()
    # The metric table: each run's latest value, the highest and lowest marked in words.
    loss_row = page.locator("#metric-table tr[data-key='loss']")
    assert loss_row.locator(".extreme", has_text="highest").count() == 1
    assert loss_row.locator(".extreme", has_text="lowest").count() == 1
    assert page.locator("#metric-table thead th", has_text=HOSTILE).count() == 1
    same_metric = page.locator("#metric-table tr.same[data-key='epochs']")
    assert same_metric.is_visible() and same_metric.locator(".extreme").count() == 0
    # The artifact table: different weights flagged, the same image shown in every column.
    expect(page.locator("#artifact-table tr.differs[data-path='model.pkl']")).to_be_visible()
    thumbs = page.locator("#artifact-table tr.same[data-path='curve.png'] img.artifact-thumb")
    assert thumbs.count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('#artifact-table img.artifact-thumb')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.check("#only-differences")
    expect(same_rows.first).to_be_hidden()
    expect(same_metric).to_be_hidden()
    expect(loss_row).to_be_visible()
    expect(thumbs.first).to_be_hidden()
    page.screenshot(path=str(RESULTS / "compare-page.png"), full_page=True)

    # Smoothing adds a smoothed line over a faint raw one, and changes the drawn values.
    raw = traces(page, "compare-chart-0")[0]["y"]
    page.evaluate(
        "el => { el.value = '0.9'; el.dispatchEvent(new Event('input')); }",
        page.locator("#smoothing").element_handle(),
    )
    smoothed = traces(page, "compare-chart-0")
    assert len(smoothed) == 8
    assert smoothed[0]["opacity"] == 0.25 and smoothed[0]["y"] == raw
    assert smoothed[1]["y"] != raw and smoothed[1]["name"] == "adam-fast"
    assert "smoothing=0.9" in page.url

    # Log scale on every chart.
    page.check("#log-scale")
    assert page.evaluate("document.getElementById('compare-chart-1').layout.yaxis.type") == "log"
    assert "log=1" in page.url

    # Group by a param: a mean line with a min-max band per group, from the server.
    with page.expect_response(lambda response: "group_by=opt" in response.url):
        page.select_option("#group-by", "opt")
    page.wait_for_function(
        "() => document.getElementById('compare-chart-0').data.some(t => t.fill === 'tonexty')"
    )
    grouped = traces(page, "compare-chart-0")
    assert [t["fill"] for t in grouped].count("tonexty") == 2
    assert [t["name"] for t in grouped if t["showlegend"]] == ["opt=adam (2 runs)", "opt=sgd (2 runs)"]
    page.screenshot(path=str(RESULTS / "compare-page-grouped.png"), full_page=True)

    # Parallel coordinates and the scatter are drawn too.
    assert page.locator("#parallel-chart .parcoords").count() == 1
    assert page.locator("#scatter-chart .scatterlayer .point").count() == 4

    # Parameter importance for the loss: both params differ; only lr has a correlation.
    page.wait_for_selector("#importance-table tbody tr")
    rows = page.locator("#importance-table tbody tr")
    assert sorted(rows.locator("th").all_inner_texts()) == ["lr", "opt"]
    cells = {row.locator("th").inner_text(): row.locator("td").all_inner_texts() for row in rows.all()}
    assert cells["opt"][1] == "—" and re.fullmatch(r"[+-]\d\.\d\d", cells["lr"][1])
    assert page.locator("#importance-status").inner_text().startswith("For loss, over the 4 runs")
    page.locator("#importance").screenshot(path=str(RESULTS / "compare-importance.png"))
    assert recorded.console_errors == []


def test_a_long_run_name_wraps_instead_of_pushing_the_other_runs_off_the_page(
    login, viewer, contributor, live_server, transactional_db
):
    experiment = create_experiment(actor=contributor, name="long-names")
    long_name = "baseline-" + "-".join(f"lr0.0{i}-wd0.00{i}-seed{i}" for i in range(6))
    runs = [
        _run(contributor, experiment, long_name, opt="adam", lr=0.01, version="2.1", minutes=0, steps=20),
        _run(contributor, experiment, "short", opt="sgd", lr=0.1, version="2.1", minutes=1, steps=20),
    ]
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(compare_url(live_server, runs))
    for table in ("metric-table", "diff-table", "artifact-table"):
        widths = page.evaluate(
            "id => { const box = document.getElementById(id).parentElement;"
            " return [box.scrollWidth, box.clientWidth]; }",
            table,
        )
        assert widths[0] <= widths[1], f"#{table} is {widths[0]} px wide in a {widths[1]} px box"
    page.locator("#metric-table").screenshot(path=str(RESULTS / "compare-long-run-name.png"))


def test_many_runs_draw_without_a_legend_and_parallel_ticks_show_text_as_written(
    login, viewer, contributor, live_server, transactional_db, recorded
):
    """Fourteen legend entries took most of a chart's height; a categorical axis's ticks are
    plain text, so an escaped value showed its entities."""
    experiment = create_experiment(actor=contributor, name="many")
    opts = ("<i>adam</i>", "sgd", "8", "64", "32")
    runs = [
        _run(contributor, experiment, f"r{i:02d}", opt=opts[i % 5], lr=0.01, version="2", minutes=i, steps=5)
        for i in range(14)
    ]
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(compare_url(live_server, runs, "&keys=loss&pc=opt&pc_metric=loss"))
    wait_drawn(page, "compare-chart-0")
    assert page.locator("#compare-chart-0 .legend").count() == 0
    expect(page.locator("#compare-chart-0-note")).to_contain_text("No legend for 14 lines")
    page.wait_for_selector("#parallel-chart .parcoords")
    ticks = page.locator("#parallel-chart .parcoords .tick text").all_text_contents()
    assert {t for t in ticks if t in opts} == set(opts)  # shown as written, not as "&lt;i&gt;…"
    order = page.evaluate("document.getElementById('parallel-chart').data[0].dimensions[0].ticktext")
    assert order == ["8", "32", "64", "<i>adam</i>", "sgd"]  # numbers in numeric order, then words
    assert recorded.console_errors == []


@contextlib.contextmanager
def logging_points(contributor, run, *, first_step: int):
    """A training loop beside the test: a point of `loss` every 0.3 s until the block ends."""
    stop = threading.Event()

    def log_points() -> None:
        step = first_step
        try:
            while not stop.is_set():
                log_batch(
                    actor=contributor, run=run, metrics=[MetricInput("loss", 0.5 - step / 1000, step, 1)]
                )
                step += 1
                time.sleep(0.3)
        finally:
            connection.close()

    logger = threading.Thread(target=log_points, daemon=True)
    logger.start()
    try:
        yield
    finally:
        stop.set()
        logger.join()


@pytest.fixture
def live(contributor, compared):
    """A run still running beside the compared ones, with 20 points of each metric so far."""
    return _run(
        contributor,
        compared[0].experiment,
        "live-run",
        opt="adam",
        lr=0.01,
        version="2.1",
        minutes=9,
        finished=False,
        steps=20,
    )


def test_a_live_runs_chart_grows_while_points_are_logged_and_polling_stops_when_it_ends(
    login, viewer, contributor, compared, live, live_server
):
    page = login(viewer)
    page.goto(compare_url(live_server, [compared[0], live], "&keys=loss"))
    wait_drawn(page, "compare-chart-0")
    before = traces(page, "compare-chart-0")[1]["n"]
    assert before == 20
    assert page.evaluate("document.body.getAttribute('data-polling')") == "on"

    with logging_points(contributor, live, first_step=20):
        page.wait_for_function(
            "n => document.getElementById('compare-chart-0').data[1].x.length > n + 5",
            arg=before,
            timeout=20_000,
        )
    grown = traces(page, "compare-chart-0")[1]
    assert grown["n"] > before + 5
    expect(page.locator("#live-status")).to_have_text(
        "Live: new points are added every 3 s while a run shown is running."
    )
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "compare-live.png"), full_page=True)
    finish_run(actor=contributor, run=live)
    page.wait_for_function("() => document.body.getAttribute('data-polling') === 'stopped'", timeout=15_000)
    expect(page.locator("#live-status")).to_have_text("Every run shown has ended.")


def test_live_updates_stop_and_say_why_once_the_polls_are_refused(
    login, viewer, contributor, compared, live, live_server
):
    """The viewer loses the experiment while watching: one refused poll is retried, three in a
    row stop polling and say why (the run page shares this poller)."""
    page = login(viewer)
    page.goto(compare_url(live_server, [compared[0], live], "&keys=loss"))
    wait_drawn(page, "compare-chart-0")
    assert page.evaluate("document.body.getAttribute('data-polling')") == "on"
    set_experiment_permission(
        actor=contributor, experiment=live.experiment, grantee=viewer, level=Level.NO_PERMISSIONS
    )
    page.wait_for_function("() => document.body.getAttribute('data-polling') === 'stopped'", timeout=20_000)
    status = page.locator("#live-status").text_content()
    assert status.startswith("Live updates stopped: ") and status.endswith(" Reload the page to try again.")
    assert "HTTP" not in status and "JSON" not in status  # the server's own words
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "compare-live-refused.png"))


def test_a_running_runs_page_adds_new_points_to_its_charts_and_stops_when_the_run_ends(
    login, viewer, contributor, live, live_server
):
    """With 24 keys: more than one chart-data request holds (20), so the poll is split."""
    RESULTS.mkdir(exist_ok=True)
    log_batch(
        actor=contributor, run=live, metrics=[MetricInput(f"extra{i:02d}", 0.0, 0, 1) for i in range(21)]
    )
    page = login(viewer)
    page.goto(f"{live_server.url}/runs/{live.uuid}/")
    page.wait_for_function("() => document.body.getAttribute('data-polling') === 'on'", timeout=15_000)
    loss = next(
        i for i, key in enumerate(page.locator(".chart-card figcaption").all_text_contents()) if key == "loss"
    )
    chart = f"metric-chart-{loss}"
    assert traces(page, chart)[0]["n"] == 20
    expect(page.locator("#live-status")).to_contain_text("Live: new points are added every 3 s")
    with logging_points(contributor, live, first_step=20):
        page.wait_for_function(
            f"() => document.getElementById('{chart}').data[0].x.length > 25", timeout=20_000
        )
    page.screenshot(path=str(RESULTS / "run-detail-live.png"), full_page=True)
    steps = page.evaluate(f"Array.from(document.getElementById('{chart}').data[0].x)")
    assert steps == sorted(set(steps))  # each new point once, in order
    expect(page.locator(f"#{chart}-note")).to_contain_text(f"Showing all {len(steps)} points")
    finish_run(actor=contributor, run=live)
    page.wait_for_function("() => document.body.getAttribute('data-polling') === 'stopped'", timeout=15_000)
    expect(page.locator("#live-status")).to_have_text(
        "The run has ended: reload the page for its final summary."
    )


def test_a_finished_runs_page_does_not_poll(login, viewer, compared, live_server):
    page = login(viewer)
    page.goto(f"{live_server.url}/runs/{compared[0].uuid}/")
    page.wait_for_selector("#metric-chart-0.js-plotly-plot svg path.js-line", state="attached")
    page.wait_for_function(  # every chart has its answer: polling would have begun by now
        "() => [...document.querySelectorAll('.chart-note')].every(n => n.textContent !== 'Loading…')"
    )
    assert page.evaluate("document.body.getAttribute('data-polling')") is None
    assert page.locator("#live-status").is_hidden()


def test_the_run_page_shows_a_failure_reason_previews_and_its_charts(
    login, contributor, live_server, transactional_db
):
    RESULTS.mkdir(exist_ok=True)
    experiment = create_experiment(actor=contributor, name="previews")
    run = start_run(actor=contributor, experiment=experiment, name=HOSTILE, start_time=T0)
    values = [math.sin(step / 40) for step in range(3000)]
    values[1234] = 25.0
    points = [MetricInput("loss", v, step, 1_740_830_400_000 + step) for step, v in enumerate(values)]
    for start in range(0, len(points), 1000):
        log_batch(actor=contributor, run=run, metrics=points[start : start + 1000])
    log_batch(
        actor=contributor, run=run, tags=[TagInput("failure_reason", "CUDA out of memory at step 1234")]
    )
    diverged = [
        MetricInput("z_diverged", value, step, 1_740_830_400_000)
        for step, value in enumerate([math.nan, math.inf])
    ]
    log_batch(actor=contributor, run=run, metrics=diverged)
    for path, content in {
        "config.yaml": b"lr: 0.01\nopt: adam\n",
        "metrics.csv": b"step,loss\n0,0.9\n1,0.8\n",
        "notes.txt": f"{HOSTILE}\nsecond line\n".encode(),
        "model.bin": b"\x00\x01",
    }.items():
        store_artifact(actor=contributor, owner=run, path=path, content=io.BytesIO(content))
    finish_run(actor=contributor, run=run, status="FAILED")
    page = login(contributor)
    page.goto(f"{live_server.url}/runs/{run.uuid}/")
    wait_drawn_run = "#metric-chart-0.js-plotly-plot svg path.js-line"
    page.wait_for_selector(wait_drawn_run, state="attached")
    assert page.locator("#failure-reason pre").text_content() == "CUDA out of memory at step 1234"
    assert page.locator("pre.artifact-text").first.text_content() == "lr: 0.01\nopt: adam"
    assert HOSTILE in page.locator("pre.artifact-text").nth(2).text_content()
    # The spike survives the server's reduction of 3,000 points to the chart's width.
    assert page.evaluate("Math.max(...document.getElementById('metric-chart-0').data[0].y)") == 25.0
    expect(page.locator("#metric-chart-1-note")).to_have_text(
        "Nothing to draw: every point shown is NaN or ±Infinity."
    )
    page.click("text=Edit run")
    page.screenshot(path=str(RESULTS / "run-detail.png"), full_page=True)
    page.fill("input[name=name]", "renamed-run")
    page.click("button:text('Rename')")
    page.wait_for_selector("text=Run renamed.")
    assert page.locator("h1.run-name").text_content().startswith("renamed-run")


def test_grouping_says_its_lines_are_over_steps_and_marks_the_x_axis_unused(
    login, viewer, compared, live_server, recorded
):
    """While grouped the x-axis choice is kept (and still sent) but marked as unused."""
    RESULTS.mkdir(exist_ok=True)
    page = login(viewer)
    page.goto(compare_url(live_server, compared[:3], "&keys=loss&x=relative"))
    wait_drawn(page, "compare-chart-0")
    x_note = page.locator("#x-axis-note")
    expect(x_note).to_be_hidden()
    assert "over steps" not in page.locator("#compare-chart-0-note").text_content()

    with page.expect_response(lambda response: "group_by=opt" in response.url):
        page.select_option("#group-by", "opt")
    page.wait_for_function(
        "() => document.getElementById('compare-chart-0').data.some(t => t.fill === 'tonexty')"
    )
    expect(x_note).to_be_visible()
    expect(x_note).to_have_text("Not used while grouped: groups are drawn over steps.")
    assert page.locator("#x-axis").get_attribute("aria-describedby") == "x-axis-note"
    assert page.locator("#x-axis").input_value() == "relative"
    expect(page.locator("#compare-chart-0-note")).to_contain_text(
        "Grouped lines are drawn over steps, whatever the x-axis choice."
    )
    assert page.evaluate("document.getElementById('compare-chart-0').layout.xaxis.title.text") == "step"
    page.locator("#compare-form").screenshot(path=str(RESULTS / "compare-grouped-x-axis.png"))
    page.locator("#compare-charts .chart-card").first.screenshot(
        path=str(RESULTS / "compare-grouped-note.png")
    )

    # Drawn grouped from the start (a link), the page says so before any change.
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    assert parse_qs(urlsplit(page.url).query)["group_by"] == ["opt"]
    wait_drawn(page, "compare-chart-0")
    expect(x_note).to_be_visible()
    page.select_option("#group-by", "")
    expect(x_note).to_be_hidden()
    assert recorded.console_errors == []


def test_no_form_on_the_compare_page_drops_the_settings_the_others_set(login, viewer, compared, live_server):
    """Each form carries the page's other settings, a change made live with the chart controls
    (kept in the URL without a reload) among them."""
    page = login(viewer)
    page.goto(compare_url(live_server, compared[:3], "&keys=loss&x=relative&log=1&im=accuracy&sy=accuracy"))
    wait_drawn(page, "compare-chart-0")
    with page.expect_response(lambda response: "group_by=opt" in response.url):
        page.select_option("#group-by", "opt")
    page.select_option("#x-axis", "wall")

    # "Weigh" keeps the charts' settings, the live ones included, and the scatter's.
    page.select_option("#importance select[name=im]", "loss")
    with page.expect_navigation():
        page.click("#importance button[type=submit]")
    query = parse_qs(urlsplit(page.url).query)
    kept = {name: query.get(name) for name in ("im", "x", "log", "group_by", "keys", "sy")}
    assert kept == {
        "im": ["loss"], "x": ["wall"], "log": ["1"], "group_by": ["opt"], "keys": ["loss"],
        "sy": ["accuracy"],
    }  # fmt: skip

    # "Apply" keeps the importance metric and the scatter's axis.
    wait_drawn(page, "compare-chart-0")
    page.uncheck("#log-scale")
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    query = parse_qs(urlsplit(page.url).query)
    assert (query["im"], query["sy"], query["x"], "log" in query) == (["loss"], ["accuracy"], ["wall"], False)
