"""Playwright driving Debian's Chromium against pytest-django's live server.

No browser is ever downloaded: the tests use /usr/bin/chromium or skip (fail under
REQUIRE_SERVICES=1). Each page records its requests and dialogs, so a test can prove that
nothing left the live server and that no script injected through user text ran.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from config.inputs import TagInput
from tests.conftest import skip_or_fail
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

# Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM calls
# from the test body unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password
HOSTILE_NAME = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@dataclass
class Recorded:
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


# Runs in every document before its own scripts (Playwright's init scripts are not subject to the
# page's CSP): each securitypolicyviolation event becomes a console message the fixture records.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline")
    + " at " + event.sourceFile + ":" + event.lineNumber + " sample " + JSON.stringify(event.sample));
});
"""


def _is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation: ") or "Content Security Policy" in text


@pytest.fixture
def page(chromium, live_server, recorded):
    """A fresh browser context whose requests, dialogs and CSP violations are recorded and checked
    afterwards: a page that breaks under the Content-Security-Policy fails its test."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("request", lambda request: recorded.requests.append(request.url))

    def on_dialog(dialog) -> None:
        recorded.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def on_console(message) -> None:
        if _is_csp_violation(message.text):
            recorded.csp_violations.append(message.text)
        elif message.type == "error":
            recorded.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: recorded.console_errors.append(str(error)))
    yield page
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    # Let the page's last requests finish: one still running on the live server while the test
    # database is flushed can deadlock with the flush's TRUNCATE (seen after a redirect that
    # reloads a page's charts at the very end of a test).
    # A page that polls may never go quiet for long; closing it below stops it.
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_load_state("networkidle", timeout=5_000)
    context.close()
    assert recorded.csp_violations == [], f"the Content-Security-Policy refused: {recorded.csp_violations}"
    assert recorded.dialogs == [], f"a dialog opened: {recorded.dialogs}"
    server = urlsplit(live_server.url).netloc
    network = [urlsplit(url) for url in recorded.requests if urlsplit(url).scheme not in ("data", "blob")]
    foreign = [url.geturl() for url in network if url.netloc != server]
    assert foreign == [], f"requests left the live server: {foreign}"


@pytest.fixture
def login(page, live_server):
    """`login(user)` signs in through the login form and returns the page."""

    def sign_in(user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in


@pytest.fixture
def sweep(transactional_db, contributor):
    """An experiment with a small learning-rate sweep and one hostile run name."""
    experiment = create_experiment(
        actor=contributor, name="lr-sweep", description="Learning rate sweep on the digits data"
    )
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    runs = {}
    for index, (lr, f1, version) in enumerate(
        [("0.1", 0.80, "2.0"), ("0.01", 0.91, "2.1"), ("0.001", 0.87, "2.1"), ("0.0001", 0.70, "2.1")]
    ):
        run = start_run(
            actor=contributor,
            experiment=experiment,
            name=f"lr-{lr}",
            start_time=start + timedelta(minutes=index),
            code_commit="0123456789abcdef0123456789abcdef01234567",
            environment={"python": "3.11"},
        )
        loss = [MetricInput("loss", 1.0 / (1 + step / 40) + (step % 7) / 200, step, 1) for step in range(900)]
        log_batch(
            actor=contributor,
            run=run,
            params=[ParamInput("lr", lr), ParamInput("optimizer", "adam")],
            metrics=[*loss, MetricInput("val_f1", f1, 899, 1)],
        )
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("digits", f"{index:064x}", version)])
        runs[lr] = finish_run(actor=contributor, run=run, end_time=run.start_time + timedelta(minutes=3))
    hostile = start_run(
        actor=contributor, experiment=experiment, name=HOSTILE_NAME, start_time=start + timedelta(minutes=9)
    )
    log_batch(
        actor=contributor,
        run=hostile,
        params=[ParamInput("lr", HOSTILE_NAME)],
        metrics=[MetricInput("val_f1", 0.5, 0, 1), MetricInput("val_f1", 0.6, 1, 1)],
    )
    runs["hostile"] = hostile
    return experiment, runs


RUN_TABLE_HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def run_table_sweep(transactional_db, contributor):
    """Thirty runs in one experiment (two pages of 25), one with a hostile name, and a second
    experiment of three runs: enough to page, select across pages, sort and group."""
    experiment = create_experiment(actor=contributor, name="wide-sweep")
    other = create_experiment(actor=contributor, name="other-sweep")
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    runs = []
    for index in range(33):
        target = experiment if index < 30 else other
        name = RUN_TABLE_HOSTILE if index == 7 else f"run-{index:02d}"
        run = start_run(
            actor=contributor, experiment=target, name=name, start_time=start + timedelta(minutes=index)
        )
        params = [ParamInput("lr", ("0.1", "0.01", "0.001")[index % 3]), ParamInput("optimizer", "adam")]
        params += [ParamInput(f"long_param_name_{k:02d}", f"value-{index % (k + 2)}") for k in range(12)]
        log_batch(
            actor=contributor,
            run=run,
            params=params,
            metrics=[
                MetricInput("val_f1", 0.5 + index / 100, 10, 1),
                MetricInput("loss", 1 / (index + 1), 10, 1),
            ],
            tags=[TagInput("team", ("vision", "nlp")[index % 2])],
        )
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("digits", f"{index % 2:064x}", "2.1")])
        runs.append(finish_run(actor=contributor, run=run, end_time=run.start_time + timedelta(minutes=3)))
    return experiment, other, runs
