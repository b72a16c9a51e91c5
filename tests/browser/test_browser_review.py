"""A reviewed promotion in Chromium, end to end: a contributor asks, two reviewers approve, the
alias moves, and "why this model?" tells the whole story. Screenshots go to test-results/."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.permissions import SYSTEM_READER
from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditVerification
from audit.services import run_verification
from registry.models import Label
from registry.selectors import get_registered_model, get_version_by_alias
from registry.services import (
    create_model_version,
    create_registered_model,
    force_move,
    request_promotion,
    set_promotion_policy,
)
from tests.factories import UserFactory
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    finish_run,
    log_batch,
    log_inputs,
    start_run,
)

pytestmark = pytest.mark.browser

SHOTS = Path("test-results")
HOSTILE = "<img src=x onerror=alert(1)>"


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"review-{name}.png"), full_page=True)


def persona(username: str, role: Role):
    user = UserFactory(username=username)
    assign_role(user=user, role=role)
    return user


@pytest.fixture
def promotion_setup(transactional_db, contributor, admin):
    """Two versions of a model trained on different dataset versions; v1 is in production."""
    experiment = create_experiment(actor=contributor, name="digits-sweep")
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    versions = []
    model = create_registered_model(actor=contributor, name="digit-classifier", description=HOSTILE)
    for index, (name, lr, f1, data_version) in enumerate(
        [("baseline", "0.01", 0.84, "2.0"), (HOSTILE, "0.001", 0.91, "2.1")]
    ):
        run = start_run(
            actor=contributor,
            experiment=experiment,
            name=name,
            start_time=start + timedelta(minutes=index),
            code_commit=f"{index}" * 40,
            environment={"python": "3.11.9", "torch": f"2.{index + 2}.0"},
        )
        loss = [MetricInput("loss", (1.2 - index * 0.1) / (1 + step / 30), step, 1) for step in range(300)]
        log_batch(
            actor=contributor,
            run=run,
            params=[ParamInput("lr", lr), ParamInput("epochs", "30")],
            metrics=[*loss, MetricInput("val_f1", f1, 299, 1)],
        )
        log_inputs(
            actor=contributor, run=run, datasets=[DatasetSpec("digits", f"{index + 10:064x}", data_version)]
        )
        run = finish_run(actor=contributor, run=run, end_time=run.start_time + timedelta(minutes=3))
        versions.append(create_model_version(actor=contributor, model=model, run=run))
    set_promotion_policy(
        actor=admin,
        model=model,
        protected_aliases=["production"],
        required_approvals=2,
        key_metrics=[{"key": "val_f1", "goal": "max"}, {"key": "loss", "goal": "min"}],
    )
    force_move(
        actor=admin, model=model, label=Label.alias("production"), version=versions[0], reason="launch"
    )
    return model, versions


def test_a_contributor_requests_two_reviewers_approve_and_the_chain_is_visible(
    page, login, live_server, promotion_setup, requester, reviewer, admin, recorded
):
    model, (v1, v2) = promotion_setup
    second = persona("rhea-reviewer", Role.REVIEWER)
    base = live_server.url

    # The contributor asks for v2 to become production.
    login(requester)
    page.click("nav >> text=Registry")
    page.click("a:text-is('digit-classifier')")
    page.wait_for_selector("h1:text-is('digit-classifier')")
    assert page.locator(".lock").count() == 1
    shot(page, "1-model")
    page.click("td a:text-is('v2')")
    page.select_option("select[name=target]", "alias:production")
    page.fill("textarea[name=justification]", f"F1 0.91 against 0.84 {HOSTILE}")
    shot(page, "2-version-request-form")
    page.click("button:text-is('Request promotion')")
    page.wait_for_selector(".message")
    assert "is waiting for review" in page.locator(".message").text_content()
    assert (
        page.locator("#cannot-review").text_content().startswith("You cannot review this request: request #")
    )
    request_url = page.url

    # The first reviewer sees the badge, opens the request, compares and approves.
    page.context.clear_cookies()
    login(reviewer)
    assert page.locator("#review-badge").text_content().strip().endswith("1 waiting)")
    page.click("#nav-reviews")
    expect(page.locator("#review-queue tbody tr")).to_have_count(1)  # waits for the queue page to load
    shot(page, "3-review-queue")
    page.click("#review-queue td:first-child a")
    page.wait_for_url(request_url)
    warning = page.locator(".dataset-warning")
    assert warning.is_visible()
    assert "not comparable" in warning.text_content()
    assert page.locator("#key-metrics .delta-better").count() == 2
    assert page.locator("#param-diff tr.differs th").first.text_content().startswith("lr")
    page.wait_for_selector("#review-curve-1.js-plotly-plot svg path.js-line", state="attached")
    assert page.locator("#review-curve-1 .legendtext").count() == 2  # both runs' loss on one chart
    with page.expect_response(lambda response: "x_min=" in response.url) as zoomed:
        page.evaluate("() => Plotly.relayout('review-curve-1', {'xaxis.range': [100, 200]})")
    assert zoomed.value.json()["series"][0]["steps"][0] == 100
    page.wait_for_function("() => document.getElementById('review-curve-1-note').textContent.includes('100')")
    shot(page, "4-request-side-by-side")
    page.fill("textarea[name=comment]", "Checked on the 2.1 data too.")
    page.click("button:text-is('Approve')")
    page.wait_for_selector(".message")
    assert page.locator(".review-list .review").count() == 1
    assert get_version_by_alias(model=model, alias="production") == v1  # one of two approvals

    # The second reviewer approves with the keyboard: the form is reachable without a mouse.
    page.context.clear_cookies()
    login(second)
    page.goto(request_url)
    page.focus("textarea[name=comment]")
    page.keyboard.type("Agreed.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Approve"
    page.keyboard.press("Enter")
    page.wait_for_selector(".badge.request-approved")
    shot(page, "5-request-approved")
    assert (
        get_version_by_alias(
            model=get_registered_model(user=SYSTEM_READER, name=model.name), alias="production"
        )
        == v2
    )

    # The model page shows the move; "why this model?" tells the whole chain, checked.
    run_verification(verification=AuditVerification.objects.create(mode="full", requested_by=admin))
    page.goto(f"{base}/registry/{model.name}/")
    assert page.locator("#holders tr:has-text('production') td:nth-child(2)").text_content() == "v2"
    page.goto(f"{base}/registry/{model.name}/versions/2/why/")
    decision = page.locator(".decision").first
    assert "Opened by rita-requester" in decision.text_content()
    assert "replacing v1" in decision.text_content()
    reviews = decision.locator(".review").all_text_contents()
    assert "rob-reviewer" in reviews[0] and "Checked on the 2.1 data too." in reviews[0]
    assert "rhea-reviewer" in reviews[1] and "Agreed." in reviews[1]
    assert "holds it now" in page.locator("#held").text_content()
    assert page.locator("#audit .audit-events tbody tr").count() >= 3
    assert page.locator("#chain-status").text_content().strip().startswith("The audit chain verifies.")
    page.wait_for_selector("#metric-chart-0.js-plotly-plot svg path.js-line", state="attached")
    shot(page, "6-why-this-model")

    # The source run's page says what it was registered as.
    page.goto(f"{base}/runs/{v2.run.uuid}/")
    assert page.locator(".registered-as li").text_content().split() == [
        "digit-classifier",
        "v2",
        "production",
    ]
    shot(page, "7-run-registered-as")

    # v1's page shows the break-glass move that put it in production.
    page.goto(f"{base}/registry/{model.name}/versions/1/why/")
    assert page.locator(".break-glass").first.is_visible()
    assert "launch" in page.locator(".break-glass").first.text_content()

    # The timeline answers which version held production before the move.
    page.goto(f"{base}/registry/{model.name}/timeline/")
    page.wait_for_selector("#alias-timeline.js-plotly-plot svg .bars path", state="attached")
    page.fill("input[name=at]", "2001-01-01T00:00:00")
    page.click("button:text-is('Show holders')")
    assert "No alias or stage pointed at a version" in page.locator("#holders-at").text_content()
    shot(page, "8-timeline")

    # The audit page's filter finds the approvals, and exports them as CSV.
    page.click("nav >> text=Audit")
    page.fill("#audit-filter input[name=action]", "promotion.approved")
    page.click("#audit-filter button:text-is('Filter')")
    page.wait_for_url("**action=promotion.approved**")
    actors = page.locator("#audit-events tbody tr td:nth-child(3)").all_text_contents()
    assert actors == ["rhea-reviewer", "rob-reviewer"]  # newest first
    shot(page, "9-audit-filter")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert sorted(row["actor"] for row in rows) == ["rhea-reviewer", "rob-reviewer"]
    assert {row["action"] for row in rows} == {"promotion.approved"}

    assert page.locator("main img").count() == 0  # the hostile run name stayed text
    assert recorded.console_errors == []


def test_the_seeded_demo_request_reads_well_in_the_browser(
    page, login, live_server, transactional_db, recorded
):
    """The request seed_demo leaves for a reviewer: the comparison, curves and timeline render."""
    call_command("seed_demo", "--quick", stdout=io.StringIO())
    reviewer = persona("olga-reviewer", Role.REVIEWER)
    login(reviewer)
    page.click("#nav-reviews")
    page.click("#review-queue td:first-child a")
    expect(page.locator(".dataset-warning")).to_be_visible()  # waits for the request page
    page.wait_for_selector("#review-curve-0.js-plotly-plot svg .legendtext", state="attached")
    shot(page, "10-demo-request")
    page.click("#comparison a:text-is('v1')")  # the production holder's version page
    page.click("text=Why this model?")
    page.wait_for_selector(".decision")
    shot(page, "11-demo-why-production")
    page.goto(f"{live_server.url}/registry/spiral-classifier/timeline/")
    page.wait_for_selector("#alias-timeline.js-plotly-plot svg .bars path", state="attached")
    shot(page, "12-demo-timeline")
    assert recorded.console_errors == []


def test_a_rejection_needs_a_comment_and_then_closes_the_request(
    page, login, live_server, promotion_setup, requester, reviewer, recorded
):
    model, (_, v2) = promotion_setup
    opened = request_promotion(
        actor=requester, version=v2, label=Label.alias("production"), justification="try"
    )
    login(reviewer)
    page.goto(f"{live_server.url}/reviews/{opened.pk}/")
    page.click("button:text-is('Reject')")
    error = page.locator("#review-form .field-error")
    assert error.text_content() == "a rejection needs a comment saying why"
    in_view = "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    assert error.evaluate(in_view)  # the page opens at the form, not at its top
    shot(page, "13-reject-without-comment")
    # The refused form comes back with status 400, which Chromium logs as a failed load.
    assert recorded.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    recorded.console_errors.clear()
    page.fill("textarea[name=comment]", "Trained on other data; compare on 2.1 first.")
    page.click("button:text-is('Reject')")
    page.wait_for_selector(".badge.request-rejected")
    assert "Trained on other data" in page.locator(".review-list").text_content()
    assert page.locator("#review-form").count() == 0
    assert get_version_by_alias(model=model, alias="production").version == 1
    assert recorded.console_errors == []
