"""The Content-Security-Policy: on every response, no inline code in our templates, and the Plotly
hashes in config/csp.py still match the installed plotly.min.js (tests/browser checks the pages)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from csp.constants import NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpResponse
from django.test import override_settings

from config.csp import (
    CSP_DIRECTIVES,
    PARALLEL_COORDINATES,
    PLOTLY_MAPLIBRE_STYLE_SHA256,
    PLOTLY_TEXT_STYLES,
    sha256_source,
)
from config.middleware import ContentSecurityPolicy

TEMPLATES = Path(settings.BASE_DIR) / "templates"
PLOTLY_JS = settings.PLOTLY_PACKAGE_DATA / "plotly.min.js"


def test_the_maplibre_style_hash_matches_the_installed_plotly():
    source = PLOTLY_JS.read_text(encoding="utf-8")
    inserted = re.search(r"\.textContent='(\.maplibregl-map\{[^'\\]*)'", source)

    assert inserted is not None, "plotly.min.js no longer inserts MapLibre's stylesheet: drop its hash"
    assert sha256_source(inserted.group(1)) == PLOTLY_MAPLIBRE_STYLE_SHA256


def test_the_text_styles_match_the_installed_plotly():
    source = PLOTLY_JS.read_text(encoding="utf-8")
    table = re.search(r"\{sup:\"[^\"]*\",sub:[^}]*\}", source)

    assert table is not None, "plotly.min.js's pseudo-HTML style table moved: recheck config/csp.py"
    assert set(re.findall(r'\w+:"([^"]*)"', table.group(0))) == set(PLOTLY_TEXT_STYLES)


def test_every_kind_of_response_carries_the_policy(client, viewer, api_client_for):
    client.force_login(viewer)

    responses = {
        "page": client.get("/"),
        "login": client.get("/accounts/login/"),
        "native api": api_client_for(viewer).get("/api/v1/me"),
        "mlflow api": client.get("/api/2.0/mlflow/experiments/search"),
        "not found": client.get("/no-such-page/"),
    }

    for name, response in responses.items():
        header = response["Content-Security-Policy"]
        assert "default-src 'self'" in header, name
        assert "frame-ancestors 'none'" in header, name
        assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header, name


def test_only_the_compare_page_allows_eval(client, viewer, run):
    client.force_login(viewer)

    header = client.get("/compare/", {"runs": [run.uuid]})["Content-Security-Policy"]

    assert "script-src 'self' 'unsafe-eval'" in header
    assert CSP_DIRECTIVES["script-src"] == ["'self'"]


def test_a_plain_response_gets_the_policy_django_csp_builds_and_a_tailored_one_its_own(client, viewer, run):
    client.force_login(viewer)

    plain = client.get("/")["Content-Security-Policy"]
    tailored = client.get("/compare/", {"runs": [run.uuid]})["Content-Security-Policy"]

    assert _directives(plain) == _directives(build_policy())
    assert _directives(tailored) == _directives(build_policy(update=PARALLEL_COORDINATES))


def test_the_policy_follows_settings_changed_after_start_up(rf):
    middleware = ContentSecurityPolicy(lambda request: HttpResponse())
    changed = {"DIRECTIVES": {**CSP_DIRECTIVES, "img-src": [SELF]}}

    with override_settings(CONTENT_SECURITY_POLICY=changed):
        header = middleware(rf.get("/"))["Content-Security-Policy"]

    assert "img-src 'self';" in header + ";"
    assert "blob:" not in header


def test_excluded_prefixes_still_go_without_the_header(rf):
    excluding = {"DIRECTIVES": CSP_DIRECTIVES, "EXCLUDE_URL_PREFIXES": ["/api/"]}

    with override_settings(CONTENT_SECURITY_POLICY=excluding):
        middleware = ContentSecurityPolicy(lambda request: HttpResponse())
        api, page = middleware(rf.get("/api/v1/me")), middleware(rf.get("/"))

    assert "Content-Security-Policy" not in api
    assert "default-src 'self'" in page["Content-Security-Policy"]


def test_a_nonce_a_view_takes_goes_into_its_responses_header_and_no_other(rf):
    with_nonce = {"DIRECTIVES": {**CSP_DIRECTIVES, "script-src": [SELF, NONCE]}}

    def view(request):
        return HttpResponse(str(request.csp_nonce))

    with override_settings(CONTENT_SECURITY_POLICY=with_nonce):
        taking = ContentSecurityPolicy(view)
        plain = ContentSecurityPolicy(lambda request: HttpResponse())
        answered, other = taking(rf.get("/")), plain(rf.get("/"))

    assert f"'nonce-{answered.content.decode()}'" in answered["Content-Security-Policy"]
    assert "'nonce-" not in other["Content-Security-Policy"]


def test_a_nonce_taken_while_answering_is_refused_afterwards_as_django_csp_refuses_it(rf):
    middleware = ContentSecurityPolicy(lambda request: HttpResponse())
    request = rf.get("/")

    middleware(request)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


def _directives(header: str) -> dict[str, list[str]]:
    """A policy's directives and their sources, whatever order django-csp wrote them in."""
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: sorted(sources) for name, *sources in parts}


# What a CSP without 'unsafe-inline' refuses: script elements with code, style elements, style
# attributes and event-handler attributes. A <script> that only carries data (json_script) is fine.
_INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"
    r"|<style\b|\sstyle=|\son[a-z]+=|javascript:",
    re.IGNORECASE,
)


def test_templates_hold_no_inline_script_style_or_handlers():
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in _INLINE.finditer(path.read_text())
    ]

    assert found == []
