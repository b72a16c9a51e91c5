"""The audit trail page in Chromium: filter the log, queue a check, download the export.
Screenshots go to test-results/."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from audit.models import AuditEvent
from audit.services import make_checkpoint
from tests.browser.conftest import HOSTILE_NAME

pytestmark = pytest.mark.browser
SHOTS = Path("test-results")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"audit-{name}.png"), full_page=True)


def test_an_auditor_filters_the_trail_checks_the_chain_and_exports_it(login, live_server, sweep, contributor):
    make_checkpoint()
    batches = AuditEvent.objects.filter(action="run.batch_logged").count()
    page = login(contributor)

    page.click("nav.site-nav >> text=Audit")
    page.wait_for_url(f"{live_server.url}/audit/")
    assert page.locator("nav.site-nav a[aria-current=page]").inner_text() == "Audit"
    assert page.locator("#checkpoints tbody tr").count() == 1
    assert page.locator("#verification").inner_text().count("No check has finished yet.") == 1
    # The hostile run name is data in a table cell, never markup.
    assert HOSTILE_NAME in page.locator("#audit-events").inner_text()

    page.click("text=Check now")  # eager in tests: the check runs when the request commits
    page.wait_for_selector("#verification-result")
    assert page.locator("#verification-result").inner_text() == "intact"
    assert "A check of the chain is queued." in page.locator(".messages").inner_text()
    _shot(page, "trail")

    page.fill("#id_action", "run.batch_logged")
    page.fill("#id_actor", contributor.username)
    page.click("#audit-filter button[type=submit]")
    page.wait_for_url("**/audit/?*action=run.batch_logged*")
    actions = page.locator("#audit-events tbody td:nth-child(4)").all_inner_texts()
    assert actions == ["run.batch_logged"] * batches
    _shot(page, "filtered")

    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert download.suggested_filename.startswith("audit-events-") and download.suggested_filename.endswith(
        ".csv"
    )
    assert [row["action"] for row in rows] == ["run.batch_logged"] * batches


def test_the_run_page_shows_its_audit_history_with_a_link_to_the_full_log(
    login, live_server, sweep, contributor
):
    _, runs = sweep
    page = login(contributor)

    page.goto(f"{live_server.url}/runs/{runs['0.01'].uuid}/")
    history = page.locator("section.object-history")
    assert "run.batch_logged" in history.inner_text()
    history.locator("text=Full history in the audit trail").click()
    page.wait_for_url(f"**/audit/?object_type=tracker.run&object_id={runs['0.01'].uuid}")
    objects = page.locator("#audit-events tbody td:nth-child(5)").all_inner_texts()
    assert objects and all(runs["0.01"].uuid in text for text in objects)
    _shot(page, "run-history")
