"""The run table in Chromium: filter, sort, columns, selection across pages, compare, escaping."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RUN_TABLE_HOSTILE
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    log_batch,
    log_inputs,
    start_run,
)

pytestmark = pytest.mark.browser

ROWS = ".run-table tbody tr"
SHOTS = Path("test-results")
LISTS_NOTE = "Each list shows its first 50 keys and the chosen ones: type to find the others."


def run_names(page) -> list[str]:
    return page.locator(f"{ROWS} td.name a").all_text_contents()


def selected_in_url(page) -> list[str]:
    return parse_qs(urlsplit(page.url).query).get("selected", [])


def test_filter_sort_columns_select_across_pages_and_compare(
    login, viewer, run_table_sweep, live_server, recorded
):
    experiment, _, runs = run_table_sweep
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    # The first page holds 25 of 30 runs: the total arrives after the page (runs/count.json).
    expect(page.locator("#result-summary")).to_contain_text("30 matching runs · 25 on this page")

    # Filter.
    page.fill("input[name=filter]", "params.optimizer = 'adam' and tags.team = 'vision'")
    with page.expect_navigation():
        page.press("input[name=filter]", "Enter")
    assert "15 matching runs" in page.locator("#result-summary").text_content()
    page.fill("input[name=filter]", "params.optimizer = 'adam'")
    with page.expect_navigation():
        page.press("input[name=filter]", "Enter")
    expect(page.locator("#result-summary")).to_contain_text("30 matching runs")

    # Sort by a metric, best first.
    page.click("th a.sort-link:text-is('val_f1')")
    page.wait_for_url("**order_by=metrics.val_f1+DESC**")
    assert run_names(page)[:3] == ["run-29", "run-28", "run-27"]

    # Choose columns: drop a param, add a tag and a metric's minimum.
    page.click("details.column-picker summary")
    page.uncheck("input[name=columns][value='param:long_param_name_00']")
    page.check("input[name=columns][value='tag:team']")
    page.check("input[name=columns][value='metric_min:loss']")
    page.click("details.column-picker button[type=submit]")
    page.wait_for_url("**columns_set=1**")
    headers = page.locator(".run-table thead tr:last-child th").all_text_contents()
    assert "team" in headers and "loss (min)" in headers
    assert "long_param_name_00" not in headers
    assert run_names(page)[:3] == ["run-29", "run-28", "run-27"]  # the sort survived
    page.screenshot(path=str(SHOTS / "run-table-1440.png"), full_page=True)

    # Select two runs on the first page and one on the second: the selection lives in the URL.
    page.check(f"input.run-select[value='{runs[29].uuid}']")
    page.check(f"input.run-select[value='{runs[28].uuid}']")
    assert selected_in_url(page) == [runs[29].uuid, runs[28].uuid]
    assert page.locator("#compare-button").text_content() == "Compare 2 runs"
    expect(page.locator("#result-summary")).to_contain_text("30 matching runs")
    page.click("a[rel=next]")
    page.wait_for_url("**page_token=**")
    # The next page's link carried the total the first page fetched: no count, no "Counting…".
    summary = page.locator("#result-summary").text_content()
    assert "30 matching runs · 5 on this page (not the first)" in summary
    assert "run-04" in run_names(page)
    assert selected_in_url(page) == [runs[29].uuid, runs[28].uuid]
    page.check(f"input.run-select[value='{runs[4].uuid}']")
    assert page.locator("#compare-button").text_content() == "Compare 3 runs"
    page.screenshot(path=str(SHOTS / "run-table-page-2-selected.png"), full_page=True)

    page.click("#compare-button")
    page.wait_for_url("**/compare/**")
    assert parse_qs(urlsplit(page.url).query)["runs"] == [runs[29].uuid, runs[28].uuid, runs[4].uuid]


def test_the_name_column_stays_in_view_when_the_table_scrolls_sideways(
    login, viewer, run_table_sweep, live_server
):
    experiment, _, _ = run_table_sweep
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    columns = [f"param:long_param_name_{k:02d}" for k in range(12)]
    columns += ["metric:val_f1", "metric:loss", "tag:team", "dataset:digits"]
    columns += ["attr:status", "attr:start", "attr:commit", "attr:run_id"]
    query = "&".join(f"columns={column}" for column in columns)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/?columns_set=1&{query}")
    container = page.locator(".table-container").first
    assert container.evaluate("node => node.scrollWidth > node.clientWidth")
    name_cell = page.locator(f"{ROWS} td.name").first
    before = name_cell.bounding_box()
    container.evaluate("node => { node.scrollLeft = node.scrollWidth; }")
    after = name_cell.bounding_box()
    assert after["x"] == before["x"]  # pinned
    # The last param column is reachable inside the page's width.
    last = page.locator(".run-table thead tr:last-child th").last
    box = last.bounding_box()
    assert box["x"] + box["width"] <= 1440
    page.screenshot(path=str(SHOTS / "run-table-scrolled-1440.png"), full_page=False)


def test_a_hostile_run_name_is_text_in_the_table(login, viewer, run_table_sweep, live_server, recorded):
    experiment, _, runs = run_table_sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/?page_size=50")
    assert RUN_TABLE_HOSTILE in run_names(page)
    assert page.locator("main img").count() == 0
    page.check(f"input.run-select[value='{runs[7].uuid}']")  # its label carries the name too
    assert recorded.dialogs == []
    assert recorded.console_errors == []


def test_a_syntax_error_keeps_the_table_and_shows_a_caret(login, viewer, run_table_sweep, live_server):
    experiment, _, _ = run_table_sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.fill("input[name=filter]", "metrics.val_f1 >> 0.85")
    page.press("input[name=filter]", "Enter")
    page.wait_for_selector("#filter-error")
    assert (
        page.locator("#filter-error pre.caret").text_content() == "metrics.val_f1 >> 0.85\n" + " " * 16 + "^"
    )
    assert page.locator(ROWS).count() == 25
    assert page.locator("details.column-picker").count() == 1
    page.screenshot(path=str(SHOTS / "run-table-syntax-error.png"), full_page=False)


def test_runs_of_two_experiments_chosen_on_the_experiment_list(login, viewer, run_table_sweep, live_server):
    experiment, other, _ = run_table_sweep
    page = login(viewer)
    page.check(f"input[name=experiments][value='{experiment.pk}']")
    page.check(f"input[name=experiments][value='{other.pk}']")
    page.click("text=Show runs of the chosen experiments")
    page.wait_for_url("**/runs/?experiments=**")
    expect(page.locator("#result-summary")).to_contain_text("33 matching runs")
    headers = page.locator(".run-table thead tr:last-child th").all_text_contents()
    assert "Experiment" in headers
    page.keyboard.press("Tab")  # the page is usable by keyboard: checkboxes and links take focus
    page.screenshot(path=str(SHOTS / "run-table-two-experiments.png"), full_page=False)


def test_grouping_by_a_param_summarises_a_metric_and_expands_a_group(
    login, viewer, run_table_sweep, live_server
):
    experiment, _, _ = run_table_sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.click("details.group-picker summary")
    page.select_option("#group-by", ["lr"])
    page.select_option("#group-metric", "val_f1")
    with page.expect_navigation():
        page.click("details.group-picker button[type=submit]")
    rows = page.locator(".group-table tbody tr.group-row")
    assert rows.count() == 3
    assert rows.nth(0).locator("td").all_text_contents()[1:3] == ["0.001", "10"]
    with page.expect_navigation():
        rows.nth(0).locator("a.group-toggle").click()
    expanded = page.locator(".group-runs .run-table tbody tr")
    assert expanded.count() == 10
    assert page.locator(".group-row.open a.group-toggle").get_attribute("aria-expanded") == "true"
    page.screenshot(path=str(SHOTS / "run-table-grouped.png"), full_page=True)


def test_a_selection_past_the_compare_pages_limit_disables_compare_and_says_why(
    login, viewer, contributor, live_server, transactional_db, recorded
):
    """The selection spans pages, so it can outgrow the 100 runs the compare page draws."""
    experiment = create_experiment(actor=contributor, name="hundred-and-one")
    for index in range(101):
        start_run(actor=contributor, experiment=experiment, name=f"r{index:03d}")
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/?page_size=100")
    page.check("input.select-page")
    assert page.locator("#compare-button").text_content() == "Compare 100 runs"
    expect(page.locator("#compare-button")).not_to_have_attribute("aria-disabled", "true")
    page.click("a[rel=next]")
    page.wait_for_url("**page_token=**")
    page.check("input.run-select")
    button = page.locator("#compare-button")
    assert (button.text_content(), button.get_attribute("aria-disabled")) == ("Compare 101 runs", "true")
    button.click(force=True)  # a link marked disabled can still be clicked: it must not navigate
    expect(page.locator("#selection-count")).to_have_text("101 selected: compare at most 100 at once")
    assert "/compare/" not in page.url
    assert recorded.console_errors == []


def test_shift_enter_on_a_focused_header_adds_it_as_the_next_sort_key(
    login, viewer, run_table_sweep, live_server, recorded
):
    experiment, _, _ = run_table_sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/?order_by=metrics.val_f1+DESC")
    hint = page.locator("#sort-hint")
    expect(hint).to_be_visible()
    assert "Shift+Enter" in hint.text_content()
    header = page.locator("th a.sort-link:text-is('lr')")
    assert header.get_attribute("aria-describedby") == "sort-hint"
    header.focus()
    with page.expect_navigation():
        page.keyboard.press("Shift+Enter")
    assert parse_qs(urlsplit(page.url).query)["order_by"] == ["metrics.val_f1 DESC", "params.lr ASC"]
    assert len(page.context.pages) == 1  # no new window
    expect(page.locator(".sort-keys")).to_contain_text("then")
    page.screenshot(path=str(SHOTS / "run-table-two-sort-keys.png"))
    assert recorded.console_errors == []


def test_find_a_column_by_name_check_it_and_show_it(
    login, viewer, contributor, live_server, transactional_db, recorded
):
    """300 metrics: the picker lists 50 of them and finds the others as the user types. A dataset
    name is free text, so a hostile one is found too, as text."""
    experiment = create_experiment(actor=contributor, name="many-metrics")
    run = start_run(actor=contributor, experiment=experiment, name="deep-net")
    names = [f"layer{i:03d}/grad_norm" for i in range(300)]
    log_batch(actor=contributor, run=run, metrics=[MetricInput(n, float(i)) for i, n in enumerate(names)])
    log_inputs(actor=contributor, run=run, datasets=[DatasetSpec(RUN_TABLE_HOSTILE, "0" * 64, "1")])
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.click("details.column-picker summary")
    wanted = page.locator("input[name=columns][value='metric:layer273/grad_norm']")
    assert wanted.count() == 0  # past the first 50
    more = page.locator("fieldset.column-kind-metric .key-more")
    expect(more).to_have_text("and 250 more metrics — type to find them")
    expect(page.locator("#column-find-button")).to_be_hidden()  # the script searches as one types
    status = page.locator("#column-find-status")
    expect(status).to_have_text(LISTS_NOTE)
    page.screenshot(path=str(SHOTS / "run-table-columns-picker.png"), full_page=False)

    page.fill("#column-find", "LAYER27")
    expect(wanted).to_have_count(1)
    latest = page.locator("fieldset.column-kind-metric label.column-choice:not([hidden])")
    expect(latest).to_have_count(10)  # layer270 to layer279
    expect(more).to_be_hidden()
    expect(status).to_have_text("35 chosen columns not matching stay chosen.")
    wanted.check()
    # The hostile name is found as text; the box checked before stays checked, out of sight.
    page.fill("#column-find", "<img")
    found = page.locator(".column-groups-picker label.column-choice:not([hidden])")
    expect(found).to_have_count(1)
    expect(found).to_have_text(RUN_TABLE_HOSTILE)
    expect(wanted).to_be_hidden()
    expect(wanted).to_be_checked()
    # An empty search lists the first 50 again, and the box checked on the way.
    page.fill("#column-find", "")
    expect(status).to_have_text(LISTS_NOTE)
    expect(more).to_have_text("and 249 more metrics — type to find them")
    expect(wanted).to_be_visible()
    page.fill("#column-find", "layer27")
    expect(latest).to_have_count(10)
    page.screenshot(path=str(SHOTS / "run-table-find-a-column.png"), full_page=False)

    page.click("details.column-picker button:text('Show these columns')")
    page.wait_for_url("**columns_set=1**")
    headers = page.locator(".run-table thead tr:last-child th").all_text_contents()
    assert {"layer273/grad_norm", "layer000/grad_norm", RUN_TABLE_HOSTILE} <= set(headers)
    expect(page.locator("details.column-picker")).to_have_attribute("open", "")  # the search is still there
    expect(page.locator("input[name=columns][value='metric:layer273/grad_norm']")).to_be_checked()
    page.screenshot(path=str(SHOTS / "run-table-found-column-shown.png"), full_page=False)
    assert recorded.console_errors == []


def test_find_a_param_in_the_group_picker_pick_it_and_group(
    login, viewer, contributor, live_server, transactional_db, recorded
):
    """300 params and 300 metrics: each of the Group picker's selects lists 50 and finds the others
    as the user types; a param chosen before the search stays chosen, and grouping works as ever."""
    experiment = create_experiment(actor=contributor, name="many-params")
    for number in range(3):
        run = start_run(actor=contributor, experiment=experiment, name=f"r{number}")
        value = "a" if number < 2 else "b"
        for start in range(0, 300, 100):
            params = [ParamInput(f"hp{i:03d}/lr", value) for i in range(start, start + 100)]
            log_batch(actor=contributor, run=run, params=params)
        metrics = [MetricInput(f"layer{i:03d}/grad_norm", float(number)) for i in range(300)]
        log_batch(actor=contributor, run=run, metrics=metrics)
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec(RUN_TABLE_HOSTILE, "0" * 64, "1")])
    page = login(viewer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.click("details.group-picker summary")
    group_by = page.locator("#group-by option")
    metric = page.locator("#group-metric option")
    expect(group_by).to_have_count(50)
    expect(metric).to_have_count(51)  # and "(none)"
    expect(page.locator("#group-by-more")).to_have_text("and 250 more params — type to find them")
    expect(page.locator("#group-metric-more")).to_have_text("and 250 more metrics — type to find them")
    expect(page.locator("#group-find-button")).to_be_hidden()
    status = page.locator("#group-find-status")
    expect(status).to_have_text(LISTS_NOTE)
    page.screenshot(path=str(SHOTS / "run-table-group-picker.png"), full_page=False)
    page.select_option("#group-by", ["hp001/lr"])

    page.fill("#group-find", "273")
    expect(group_by).to_have_count(2)  # the chosen param first, then the one found
    assert group_by.all_text_contents() == ["hp001/lr", "hp273/lr"]
    expect(metric).to_have_count(2)
    assert metric.all_text_contents() == ["(none)", "layer273/grad_norm"]
    expect(page.locator("#group-by-more")).to_be_hidden()
    expect(status).to_have_text("")
    page.select_option("#group-by", ["hp001/lr", "hp273/lr"])
    page.select_option("#group-metric", "layer273/grad_norm")
    page.screenshot(path=str(SHOTS / "run-table-find-a-group-key.png"), full_page=False)

    # A search that finds nothing (the hostile dataset name is neither a param nor a metric)
    # keeps the chosen keys listed and chosen.
    page.fill("#group-find", "<img")
    expect(status).to_have_text("No param or metric matches “<img”.")
    expect(group_by).to_have_count(2)
    selected = "select => Array.from(select.selectedOptions, option => option.value)"
    assert page.locator("#group-by").evaluate(selected) == ["hp001/lr", "hp273/lr"]
    assert page.locator("#group-metric").evaluate(selected) == ["layer273/grad_norm"]

    page.fill("#group-find", "273")
    expect(group_by).to_have_count(2)
    with page.expect_navigation():
        page.click("details.group-picker button[type=submit]")
    query = parse_qs(urlsplit(page.url).query)
    assert query["group_by"] == ["hp001/lr", "hp273/lr"]
    assert (query["group_metric"], query["find_group"]) == (["layer273/grad_norm"], ["273"])
    headers = page.locator(".group-table thead th").all_text_contents()
    assert headers[1:] == ["hp001/lr", "hp273/lr", "Runs", "layer273/grad_norm mean", "min", "max"]
    rows = page.locator(".group-table tbody tr.group-row")
    expect(rows).to_have_count(2)
    assert rows.nth(0).locator("td").all_text_contents()[1:4] == ["a", "a", "2"]
    assert rows.nth(1).locator("td").all_text_contents()[1:4] == ["b", "b", "1"]
    # The picker is open on the search, the grouping chosen in it.
    expect(page.locator("details.group-picker")).to_have_attribute("open", "")
    expect(page.locator("#group-find")).to_have_value("273")
    assert page.locator("#group-by").evaluate(selected) == ["hp001/lr", "hp273/lr"]
    page.screenshot(path=str(SHOTS / "run-table-grouped-by-a-found-param.png"), full_page=False)
    assert recorded.dialogs == []
    assert recorded.console_errors == []
