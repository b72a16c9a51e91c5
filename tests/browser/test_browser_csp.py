"""Every kind of page under the Content-Security-Policy in Chromium: the header is sent, and nothing
on the page (our scripts, Plotly's charts, hover labels, parallel coordinates) is refused.

The `page` fixture fails any test on a CSP violation; this test also names the page that caused it.
"""

from __future__ import annotations

import io

import pytest

from registry.models import Label
from registry.services import create_model_version, create_registered_model, request_promotion
from tracker.services import store_artifact
from tracker.services.uploads import create_upload

pytestmark = pytest.mark.browser


@pytest.fixture
def everything(sweep, contributor):
    """A sweep with an artifact, a registered model with a pending promotion, and a bulk upload."""
    experiment, runs = sweep
    best = runs["0.01"]
    store_artifact(
        actor=contributor, owner=best, path="notes.txt", content=io.BytesIO(b"trained on digits\n")
    )
    model = create_registered_model(actor=contributor, name="digit-classifier")
    version = create_model_version(actor=contributor, model=model, run=best)
    promotion = request_promotion(
        actor=contributor, version=version, label=Label.alias("production"), justification="best F1"
    )
    upload = create_upload(
        actor=contributor, content=io.BytesIO(b"key,step,value\nloss,0,1.0\n"), file_name="loss.csv", run=best
    ).upload
    return experiment, runs, model, promotion, upload


def _visit(page, url: str, *, ready: str | None = None) -> str:
    response = page.goto(url)
    assert response is not None and response.ok, url
    if ready:
        page.wait_for_selector(ready, state="attached")
    return response.headers.get("content-security-policy", "")


def test_every_page_kind_sends_the_policy_and_breaks_none_of_it(
    page, login, live_server, everything, admin, recorded
):
    experiment, runs, model, promotion, upload = everything
    base = live_server.url
    chart = "svg path.js-line"
    compared = "&".join(f"runs={run.uuid}" for key, run in runs.items() if key != "hostile")
    pages = {
        "experiments": (f"{base}/", None),
        "run table": (f"{base}/experiments/{experiment.pk}/runs/", "table"),
        "run detail": (f"{base}/runs/{runs['0.01'].uuid}/", f"#metric-chart-0 {chart}"),
        "compare": (f"{base}/compare/?{compared}", "#parallel-chart .parcoords"),
        "registry": (f"{base}/registry/", None),
        "model": (f"{base}/registry/{model.name}/", None),
        "model timeline": (f"{base}/registry/{model.name}/timeline/", None),
        "version": (f"{base}/registry/{model.name}/versions/1/", None),
        "why this model": (f"{base}/registry/{model.name}/versions/1/why/", None),
        "review queue": (f"{base}/reviews/", None),
        "review": (f"{base}/reviews/{promotion.pk}/", None),
        "audit": (f"{base}/audit/", None),
        "uploads": (f"{base}/uploads/", None),
        "upload": (f"{base}/uploads/{upload.pk}/", None),
        "new upload": (f"{base}/uploads/new/", None),
        "settings": (f"{base}/settings/", None),
        "api docs": (f"{base}/api/docs/", "#swagger-ui .opblock"),
    }

    login_header = _visit(page, f"{base}/accounts/login/")
    login(admin)
    headers = {"login": login_header}
    for name, (url, ready) in pages.items():
        headers[name] = _visit(page, url, ready=ready)
        # Plotly's hover label styles its text (style="font-weight:bold"): show one on a chart.
        if name in ("run detail", "compare"):
            element = "metric-chart-0" if name == "run detail" else "compare-chart-0"
            page.wait_for_selector(f"#{element} {chart}", state="attached")
            page.evaluate(f"Plotly.Fx.hover('{element}', [{{curveNumber: 0, pointNumber: 5}}])")
            page.wait_for_selector(f"#{element} .hoverlayer .hovertext", state="attached")
        page.wait_for_load_state("networkidle")
        assert recorded.csp_violations == [], f"{name}: {recorded.csp_violations}"

    for name, header in headers.items():
        assert "default-src 'self'" in header, name
        assert "script-src 'self'" in header, name
        assert "'unsafe-inline'" not in header, name
        # Only the page with parallel coordinates may evaluate code (config/csp.py says why).
        assert ("'unsafe-eval'" in header) == (name == "compare"), name
    assert recorded.console_errors == []
