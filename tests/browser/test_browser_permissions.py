"""The Permissions pages in Chromium: a creator gives, changes and removes a grant on an
experiment; a reader of a model sees its grants but no form to change them."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from accounts.permissions import Level, level_of
from audit.models import AuditEvent
from registry.services import create_model_version, create_registered_model
from tracker.permissions import set_experiment_permission
from tracker.services import ParamInput, create_experiment, log_batch, start_run

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"


def _fresh(user):
    """The user read again: level_of caches levels on the user object it is given."""
    return get_user_model().objects.get(pk=user.pk)


def test_a_creator_gives_changes_and_removes_a_grant(
    page, login, live_server, sweep, contributor, requester, settings
):
    settings.DEFAULT_PERMISSION = "READ"
    experiment, _ = sweep
    login(contributor)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    page.click("#permissions-link")
    assert page.inner_text("#your-level") == "MANAGE"

    page.fill("#grant-form input[name=username]", requester.username)
    page.select_option("#grant-form select[name=permission]", "EDIT")
    page.click("#grant-form button[type=submit]")
    row = page.locator("#grants tbody tr", has_text=requester.username)
    expect(row.locator("td").first).to_have_text("EDIT")
    assert level_of(_fresh(requester), experiment) == Level.EDIT
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "experiment-permissions.png"), full_page=True)

    row.locator("select[name=permission]").select_option("READ")
    row.locator("button", has_text="Change").click()
    row = page.locator("#grants tbody tr", has_text=requester.username)
    expect(row.locator("td").first).to_have_text("READ")
    assert level_of(_fresh(requester), experiment) == Level.READ

    row.locator("button", has_text="Remove").click()
    expect(page.locator("#grants tbody tr", has_text=requester.username)).to_have_count(0)
    assert page.locator("#grants tbody tr", has_text=contributor.username).count() == 1  # the creator
    assert level_of(_fresh(requester), experiment) == Level.READ  # the default again
    actions = list(
        AuditEvent.objects.filter(action__startswith="experiment.permission")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == [
        "experiment.permission_set",
        "experiment.permission_set",
        "experiment.permission_deleted",
    ]


def test_a_reader_sees_a_models_grants_without_forms(
    page, login, live_server, transactional_db, contributor, requester, settings
):
    settings.DEFAULT_PERMISSION = "READ"
    model = create_registered_model(actor=contributor, name="digit-classifier")
    login(requester)
    page.goto(f"{live_server.url}/registry/{model.name}/")
    page.click("#permissions-link")
    assert page.inner_text("#your-level") == "READ"
    assert contributor.username in page.inner_text("#grants")  # the creator's MANAGE
    assert page.locator("#grant-form").count() == 0
    assert page.locator("#grants form").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "model-permissions.png"), full_page=True)


def test_a_model_reader_sees_versions_whose_run_is_closed_to_them_without_the_runs_data(
    page, login, live_server, sweep, contributor, requester, settings
):
    """READ on a model opens its versions, not the experiment their runs were logged to: the
    model, version and "why this model?" pages name the closed experiment in place of the run's
    data, at full width and with a long experiment name."""
    settings.DEFAULT_PERMISSION = "READ"
    _, runs = sweep
    closed = create_experiment(
        actor=contributor, name="vision-team-private-hyperparameter-sweep-on-the-full-dataset-2026-q4"
    )
    closed_run = start_run(actor=contributor, experiment=closed, name="secret-run")
    log_batch(actor=contributor, run=closed_run, params=[ParamInput("secret_lr", "0.3")])
    set_experiment_permission(
        actor=contributor, experiment=closed, grantee=requester, level=Level.NO_PERMISSIONS
    )
    model = create_registered_model(actor=contributor, name="digit-classifier")
    create_model_version(actor=contributor, model=model, run=runs["0.01"])  # v1: its run is readable
    create_model_version(actor=contributor, model=model, run=closed_run)  # v2: its run is not

    login(requester)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/registry/{model.name}/")
    closed_row = page.locator("tr", has_text="v2")
    expect(closed_row.locator(".evidence-hidden")).to_contain_text(closed.name)
    assert closed_row.locator("a", has_text="secret-run").count() == 0  # no link to a page it refuses
    expect(page.locator("tr", has_text="v1").locator(".chip", has_text="digits")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "model-version-evidence-hidden.png"), full_page=True)

    page.goto(f"{live_server.url}/registry/{model.name}/versions/2/")
    expect(page.locator("#evidence-hidden")).to_contain_text(closed.name)
    assert page.locator(".facts a", has_text=closed.name).count() == 0
    page.screenshot(path=str(SCREENSHOTS / "version-evidence-hidden.png"), full_page=True)

    page.click("text=Why this model?")
    expect(page.locator("#evidence-hidden")).to_contain_text(closed.name)
    assert "secret_lr" not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "why-this-model-evidence-hidden.png"), full_page=True)
