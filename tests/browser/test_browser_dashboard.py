"""The dashboard in a real browser: login, run table filter and sort, run detail charts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from config.inputs import TagInput
from config.listing import LIST_PAGE_SIZE
from registry.models import Label
from registry.services import create_model_version, create_registered_model, request_promotion, set_alias
from tracker.models import Experiment
from tracker.services import (
    MetricInput,
    ParamInput,
    create_experiment,
    finish_run,
    log_batch,
    set_experiment_tag,
    start_run,
)

pytestmark = pytest.mark.browser

ROWS = ".run-table tbody tr"


def run_names(page) -> list[str]:
    return page.locator(f"{ROWS} td.name a").all_text_contents()


def test_login_form_leads_to_the_experiment_list_and_the_run_table(page, live_server, viewer, sweep):
    experiment, _ = sweep
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", viewer.username)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    assert page.locator("h1").text_content() == "Experiments"
    assert page.locator(".session .who").text_content() == viewer.username
    assert page.locator(".session .badge.role").text_content() == "viewer"
    page.click("text=lr-sweep")
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    assert page.locator(ROWS).count() == 5
    page.screenshot(path="/tmp/labledger-run-table.png", full_page=True)


def test_a_filter_narrows_the_rows_and_a_bad_one_shows_an_inline_error(login, viewer, sweep, live_server):
    experiment, _ = sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")

    page.fill("input[name=filter]", "datasets.version = '2.1' and metrics.val_f1 > 0.85")
    page.press("input[name=filter]", "Enter")
    page.wait_for_load_state()
    assert sorted(run_names(page)) == ["lr-0.001", "lr-0.01"]
    assert page.locator("#filter-error").count() == 0

    page.fill("input[name=filter]", "metrics.val_f1 >> 0.85")
    page.press("input[name=filter]", "Enter")
    page.wait_for_selector("#filter-error")
    error = page.locator("#filter-error").text_content()
    assert "Syntax error at position 16" in error
    assert page.locator(ROWS).count() == 5  # the table stays, unfiltered (issue 9)
    assert page.input_value("input[name=filter]") == "metrics.val_f1 >> 0.85"


def test_clicking_a_metric_header_sorts_the_runs(login, viewer, sweep, live_server):
    experiment, _ = sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/?filter=params.optimizer+%3D+%27adam%27")
    page.click("th a.sort-link:text-is('val_f1')")
    page.wait_for_url("**order_by=metrics.val_f1+DESC**")
    assert run_names(page) == ["lr-0.01", "lr-0.001", "lr-0.1", "lr-0.0001"]
    assert page.input_value("input[name=filter]") == "params.optimizer = 'adam'"  # the filter survives

    page.click("th a.sort-link:text-is('val_f1')")
    page.wait_for_url("**order_by=metrics.val_f1+ASC**")
    assert run_names(page) == ["lr-0.0001", "lr-0.1", "lr-0.001", "lr-0.01"]


def test_the_run_detail_draws_a_plotly_chart_and_fetches_finer_data_on_zoom(
    login, viewer, sweep, live_server, recorded
):
    experiment, _ = sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.click("a:text-is('lr-0.01')")
    page.wait_for_selector("h1.run-name")
    page.wait_for_selector("#metric-chart-0.js-plotly-plot svg path.js-line", state="attached")
    # Each chart fetches its own data, so the second may still be drawing: wait for it.
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # loss and val_f1
    assert "Showing" in page.locator("#metric-chart-0-note").text_content()

    with page.expect_response(lambda response: "x_min=" in response.url) as zoomed:
        page.evaluate(
            "() => Plotly.relayout(document.getElementById('metric-chart-0'), {'xaxis.range': [100, 200]})"
        )
    (body,) = zoomed.value.json()["series"]  # the shared endpoint answers with a list of series
    assert body["steps"][0] == 100
    assert body["steps"][-1] == 200
    assert body["downsampled"] is False
    page.wait_for_function(
        "() => document.getElementById('metric-chart-0-note').textContent.includes('in steps 100')"
    )
    page.screenshot(path="/tmp/labledger-run-detail.png", full_page=True)
    assert recorded.console_errors == []


def test_a_hostile_run_name_is_shown_as_text(login, viewer, sweep, live_server, recorded):
    experiment, runs = sweep
    hostile_name = runs["hostile"].name
    assert hostile_name == "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    assert hostile_name in run_names(page)
    assert page.locator(".run-table img").count() == 0

    page.goto(f"{live_server.url}/runs/{runs['hostile'].uuid}/")
    assert page.locator("h1.run-name").text_content().strip().startswith(hostile_name)
    page.wait_for_selector("#metric-chart-0.js-plotly-plot svg path.js-line", state="attached")
    assert page.locator("main img").count() == 0
    assert recorded.dialogs == []


def test_settings_creates_and_revokes_a_token(login, viewer, live_server):
    page = login(viewer)
    page.click("nav >> text=Settings")
    page.fill("input[name=name]", "laptop")
    page.click("button:text-is('Create token')")
    token = page.locator("#new-token-value").text_content()
    assert token.startswith("llt_")
    page.click("button:text-is('Revoke')")
    page.wait_for_selector(".message")
    assert page.locator(".message").text_content() == "Token “laptop” was revoked."
    assert token not in page.content()


def test_the_column_picker_hides_columns_and_a_plain_filter_keeps_a_short_link(
    login, viewer, sweep, live_server
):
    experiment, _ = sweep
    page = login(viewer)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")

    page.fill("input[name=filter]", "params.optimizer = 'adam'")
    page.press("input[name=filter]", "Enter")
    page.wait_for_load_state()
    assert "columns" not in page.url  # the picker was never opened

    page.click("details.column-picker summary")
    page.uncheck("input[name=columns][value='metric:loss']")
    page.click("details.column-picker button[type=submit]")
    page.wait_for_url("**columns_set=1**")
    headers = page.locator(".run-table thead tr:last-child th").all_text_contents()
    assert any(h.startswith("val_f1") for h in headers)
    assert not any(h.startswith("loss") for h in headers)
    assert page.input_value("input[name=filter]") == "params.optimizer = 'adam'"


def test_links_the_mlflow_client_prints_lead_to_the_run_and_the_experiment(login, viewer, sweep, live_server):
    experiment, runs = sweep
    run = runs["0.01"]
    page = login(viewer)
    page.goto(f"{live_server.url}/#/experiments/{experiment.pk}/runs/{run.uuid}")
    page.wait_for_url(f"{live_server.url}/runs/{run.uuid}/")
    assert run.name in page.locator("h1").text_content()
    page.goto(f"{live_server.url}/#/experiments/{experiment.pk}")
    page.wait_for_url(f"{live_server.url}/experiments/{experiment.pk}/runs/")


def test_on_a_phone_wide_screen_no_page_scrolls_sideways(login, viewer, sweep, live_server):
    """Wide tables scroll inside themselves and the navigation wraps: the page itself is never
    wider than the screen (a visually hidden label once widened it from inside a table)."""
    experiment, runs = sweep
    page = login(viewer)
    page.set_viewport_size({"width": 400, "height": 800})
    run = next(iter(runs.values()))
    pages = {
        "experiments": "/",
        "run-table": f"/experiments/{experiment.pk}/runs/",
        "run": f"/runs/{run.uuid}/",
        "audit": "/audit/",
        "settings": "/settings/",
    }
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide on a {widths[1]} px screen"
        assert page.locator(".site-nav a", has_text="Settings").is_visible()
        page.screenshot(path=f"test-results/narrow-{name}.png", full_page=True)


def test_the_experiment_list_searches_orders_and_pages(login, viewer, contributor, live_server):
    for index in range(LIST_PAGE_SIZE + 2):
        create_experiment(actor=contributor, name=f"sweep-{index:03d}")
    vision = create_experiment(actor=contributor, name="resnet", description="image models")
    set_experiment_tag(actor=contributor, experiment=vision, tag=TagInput("team", "Vision"))
    total = Experiment.objects.count()  # with Default where the database keeps it
    page = login(viewer)
    names = page.locator("#experiment-picker tbody tr td:nth-child(2) > a")

    expect(names).to_have_count(LIST_PAGE_SIZE)
    summary = page.locator(".result-summary").text_content().strip()
    assert summary == f"{total} experiments · showing 1\u2013{LIST_PAGE_SIZE}"
    page.click("a[rel=next]")
    expect(names).to_have_count(total - LIST_PAGE_SIZE)
    assert "Page 2 of 2" in page.locator(".pager").text_content()

    page.fill("input[name=q]", "VISION")  # a tag's value, whatever its case
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/?q=VISION&sort=name*")
    expect(names).to_have_text(["resnet"])
    page.select_option("select[name=sort]", "runs")
    page.click(".list-controls button[type=submit]")
    expect(names).to_have_text(["resnet"])
    assert "sort=runs" in page.url and "q=VISION" in page.url
    page.screenshot(path="test-results/experiment-search.png", full_page=True)
    page.click(".list-controls a:has-text('Clear')")
    expect(names).to_have_count(LIST_PAGE_SIZE)


def test_a_parent_run_leads_to_its_children_and_a_run_to_the_models_it_logged(
    login, viewer, contributor, sweep, live_server
):
    import io
    from pathlib import Path

    from tracker.services import create_logged_model, start_run, store_artifact

    experiment, runs = sweep
    parent = runs["0.01"]
    for fold in range(3):
        start_run(actor=contributor, experiment=experiment, name=f"fold-{fold}", parent=parent)
    model = create_logged_model(actor=contributor, experiment=experiment, name="model", source_run=parent)
    store_artifact(
        actor=contributor, owner=model, path="MLmodel", content=io.BytesIO(b"flavors:\n  sklearn: {}\n")
    )

    page = login(viewer)
    page.goto(f"{live_server.url}/runs/{parent.uuid}/")
    assert page.locator("#child-runs tbody tr").count() == 3
    assert "MLmodel" in page.locator("#logged-models").inner_text()
    Path("test-results").mkdir(exist_ok=True)
    page.screenshot(path="test-results/run-children-and-models.png", full_page=True)
    with page.expect_download() as download:
        page.click("#logged-models >> text=MLmodel")
    assert Path(download.value.path()).read_bytes() == b"flavors:\n  sklearn: {}\n"
    page.click("#child-runs >> text=Compare them side by side")
    page.wait_for_url("**/compare/?runs=*")
    compared = page.locator("main").inner_text()
    assert all(f"fold-{fold}" in compared for fold in range(3)) and "lr-0.01" not in compared
    page.goto(f"{live_server.url}/runs/{parent.uuid}/")
    page.click("#child-runs >> text=Every child in the run table")
    page.wait_for_url("**/runs/?filter=*")
    assert sorted(run_names(page)) == ["fold-0", "fold-1", "fold-2"]


def test_names_and_descriptions_without_spaces_wrap_instead_of_widening_registry_pages(
    login, viewer, contributor, requester, live_server, transactional_db
):
    """A 250-character model name pushed the registry list's other columns off the screen, and a
    1,200-character description made a model's page 9,754 px wide."""
    name = "L" * 250
    model = create_registered_model(actor=contributor, name=name, description="D" * 1200)
    run = start_run(actor=contributor, experiment=create_experiment(actor=contributor, name="e"), name="r")
    version = create_model_version(actor=contributor, model=model, run=run)
    set_alias(actor=contributor, model=model, alias="a" * 200, version=version)
    request_promotion(actor=requester, version=version, label=Label.alias("production"), justification="x")
    page = login(viewer)
    for width in (1440, 420):
        page.set_viewport_size({"width": width, "height": 900})
        for path in ("/registry/", f"/registry/{name}/", f"/registry/{name}/versions/1/", "/reviews/"):
            page.goto(f"{live_server.url}{path}")
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide on a {widths[1]} px screen"
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/registry/")
    page.screenshot(path="test-results/registry-long-name.png", full_page=True)


FIRST_FOCUSABLE = """document.querySelector(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1'])"
).className"""


def test_every_page_starts_with_a_skip_link_that_shows_on_focus_and_moves_to_the_content(
    page, live_server, viewer, sweep
):
    experiment, runs = sweep
    paths = {
        "login": "/accounts/login/",
        "experiments": "/",
        "run-table": f"/experiments/{experiment.pk}/runs/",
        "run": f"/runs/{runs['0.1'].uuid}/",
        "compare": f"/compare/?runs={runs['0.1'].uuid}&runs={runs['0.01'].uuid}",
    }
    for name, path in paths.items():
        if name == "experiments":  # the rest need a session
            page.fill("input[name=username]", viewer.username)
            page.fill("input[name=password]", "correct horse battery staple")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}{path}")
        skip = page.locator("a.skip-link")
        assert skip.text_content() == "Skip to content"
        target = skip.get_attribute("href")
        assert target == "#main-content"
        assert page.locator(f"main{target}").count() == 1, f"{path}: the skip link leads nowhere"
        assert skip.bounding_box()["y"] + skip.bounding_box()["height"] <= 0, f"{path}: shown before focus"
        first = page.evaluate(FIRST_FOCUSABLE)
        assert first == "skip-link", f"{path}: {first} comes before the skip link"
        if name == "login":
            skip.focus()  # Django's login form puts focus in the username box
        else:
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link", f"{path}: not the first stop"
        assert skip.bounding_box()["y"] >= 0, f"{path}: still out of sight with focus"
        if name == "run":
            page.screenshot(path="test-results/skip-link-focused.png")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main-content"
        if name == "login":
            page.goto(f"{live_server.url}/accounts/login/")


def test_a_failed_runs_page_with_long_texts_fits_a_420_px_screen(
    login, contributor, live_server, transactional_db
):
    """Long words wrap and wide tables scroll inside their own box: the page never scrolls sideways."""
    experiment = create_experiment(actor=contributor, name="narrow")
    run = start_run(actor=contributor, experiment=experiment, name="narrow-run")
    reason = (
        "Traceback (most recent call last): File "
        "/home/trainer/.venv/lib/python3.11/site-packages/torch/nn/modules/module.py, line 1532, in "
        "_wrapped_call_impl: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB "
        "(GPU 0; 79.15 GiB total capacity; 58.36 GiB already allocated; " + "x" * 160 + ")"
    )
    long_key = "dataloader.prefetch_factor_for_the_validation_split_of_the_digits_dataset"
    log_batch(
        actor=contributor,
        run=run,
        tags=[
            TagInput("failure_reason", reason),
            TagInput(long_key, "sha256:" + "0123456789abcdef" * 8),
            TagInput("team", "vision"),
        ],
        params=[ParamInput(f"{long_key}_{k}", "0.0001") for k in range(2)],
        metrics=[
            MetricInput(f"validation/accuracy_top_{k}_of_the_held_out_split", 0.5 + k / 100, 9, 1)
            for k in range(6)
        ],
    )
    finish_run(actor=contributor, run=run, status="FAILED")
    page = login(contributor)
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{live_server.url}/runs/{run.uuid}/")
    page.wait_for_selector("#metric-chart-5.js-plotly-plot svg", state="attached")
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    page.screenshot(path="test-results/run-detail-420.png", full_page=True)
    assert widths[0] <= 420, f"the page is {widths[0]} px wide on a {widths[1]} px screen"
    assert page.locator("#failure-reason pre").text_content() == reason
    # A tag key breaks between words or at its dots, not a letter a line.
    key_cell = page.get_by_role("rowheader", name=long_key, exact=True)
    assert key_cell.bounding_box()["width"] > 80
    # The metric table scrolls inside its card; its first number is in view beside the key.
    metrics = page.locator("table:has(td.metric-key)")
    assert metrics.evaluate(
        "box => box.scrollWidth > box.clientWidth && box.getBoundingClientRect().right <= 420"
    )
    latest = page.locator("td.metric-key + td").first.bounding_box()
    assert latest["x"] + latest["width"] <= 420


def test_deleting_an_experiment_takes_its_runs_along_and_their_pages_say_so(
    login, contributor, live_server, transactional_db
):
    """From the experiment list: the deleted list counts the run restoring brings back, the run's
    page says why it offers no Restore of its own, and a bad address value is a 400 page."""
    experiment = create_experiment(actor=contributor, name="vision-team-sweep-to-retire")
    run = start_run(actor=contributor, experiment=experiment, name="resnet-lr-0.1")
    page = login(contributor)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.click(f"button[form=experiment-delete-{experiment.pk}]")
    deleted = page.locator(".deleted-experiments li")
    expect(deleted).to_have_count(1)
    expect(deleted).to_contain_text("vision-team-sweep-to-retire (1 run)")
    page.screenshot(path="test-results/experiment-list-deleted.png", full_page=True)

    page.goto(f"{live_server.url}/runs/{run.uuid}/")
    expect(page.locator(".form-error").first).to_have_text(
        "This run is deleted; it no longer appears in searches. It was deleted with its "
        "experiment, and restoring the experiment restores it."
    )
    page.click("details summary:has-text('Edit run')")
    expect(page.locator("button:has-text('Restore run')")).to_have_count(0)
    expect(page.locator("a:has-text('Upload metrics to this run')")).to_have_count(0)  # it would be refused
    page.screenshot(path="test-results/run-deleted-with-experiment.png", full_page=True)

    response = page.goto(f"{live_server.url}/uploads/?experiment=abc")
    assert response.status == 400
    expect(page.locator("main")).to_contain_text("experiment_id: 'abc' is not an experiment id")
    page.screenshot(path="test-results/bad-address-400.png", full_page=True)
