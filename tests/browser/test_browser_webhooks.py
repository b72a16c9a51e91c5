"""An admin adds a webhook in Chromium, a promotion request reaches a real HTTP receiver, and a
delivery that failed is sent again from the delivery log. Screenshots go to test-results/."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.services import request_promotion, withdraw_promotion
from registry.services.webhook_delivery import dispatch_webhooks
from tests.browser.conftest import HOSTILE_NAME
from tests.registry.conftest import PRODUCTION, protected_model, trained_versions  # noqa: F401

pytestmark = pytest.mark.browser
SHOTS = Path("test-results")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"webhooks-{name}.png"), full_page=True)


def test_an_admin_adds_a_webhook_and_resends_a_failed_delivery(
    transactional_db, login, live_server, admin, requester, receiver, settings, request
):
    versions = request.getfixturevalue("trained_versions")  # model "digits", production protected
    page = login(admin)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.click("nav.site-nav >> text=Webhooks")
    page.wait_for_url(f"{live_server.url}/webhooks/")
    assert "No webhooks yet." in page.locator("#webhooks").inner_text()

    # A refused address is named beside its field, and the form keeps what was typed.
    page.fill("#id_name", "ci")
    page.fill("#id_url", "ftp://files.example.org/hook")
    page.check("input[value='promotion.requested']")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector(".field-error")
    assert "Payload URL: must be an http:// or https:// address" in page.locator(".field-error").inner_text()
    assert page.locator("#id_name").input_value() == "ci"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    _shot(page, "refused")

    page.fill("#id_name", HOSTILE_NAME)
    page.fill("#id_url", receiver.url)
    page.fill("#id_model", "digits")
    page.check("input[value='promotion.requested']")
    page.check("input[value='promotion.withdrawn']")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#webhook-secret")
    secret = page.locator("#webhook-secret-value").inner_text()
    assert len(secret) >= 40
    # The hostile name is text in the table and the secret's heading, never markup.
    assert HOSTILE_NAME in page.locator("#webhooks").inner_text()
    assert "every model" not in page.locator("#webhooks").inner_text()
    _shot(page, "added")

    receiver.answer(503)  # the first delivery fails, once: WEBHOOK_MAX_ATTEMPTS is 1 here
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    promotion = request_promotion(actor=requester, version=versions[1], label=PRODUCTION, justification="F1.")
    dispatch_webhooks()  # what beat does every few seconds
    withdraw_promotion(actor=requester, request=promotion)
    dispatch_webhooks()

    page.click(f"#webhooks >> text={HOSTILE_NAME}")
    page.wait_for_selector("#deliveries")
    rows = page.locator("#deliveries tbody tr")
    assert rows.count() == 2
    assert "promotion.withdrawn" in rows.nth(0).inner_text() and "delivered" in rows.nth(0).inner_text()
    failed = rows.nth(1).inner_text()
    assert "promotion.requested" in failed and "failed" in failed and "HTTP 503" in failed
    _shot(page, "deliveries")

    page.click("#deliveries >> text=Send again")
    page.wait_for_selector(".messages")
    assert "will be sent again" in page.locator(".messages").inner_text()
    dispatch_webhooks()
    page.reload()
    assert [r.json["event"] for r in receiver.received] == [
        "promotion.requested", "promotion.withdrawn", "promotion.requested"
    ]  # fmt: skip
    assert "failed" not in page.locator("#deliveries").inner_text()
    assert page.locator("#deliveries tbody tr").count() == 2
