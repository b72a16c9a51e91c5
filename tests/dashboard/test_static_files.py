"""Plotly.js (4.8 MB) as production serves it: collected with content hashes, gzipped, cached for
good. The settings are production's storage; the files are really collected and served by
whitenoise through the page's own <script> URL."""

from __future__ import annotations

import gzip
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse


@pytest.fixture
def collected(tmp_path):
    # Only our own files and the plotly bundle: the apps' static folders are not what is tested.
    with override_settings(
        STATIC_ROOT=tmp_path,
        STATICFILES_FINDERS=["django.contrib.staticfiles.finders.FileSystemFinder"],
        STORAGES={**settings.STORAGES, "staticfiles": settings.COMPRESSED_STATICFILES_STORAGE},
        WHITENOISE_AUTOREFRESH=False,
        WHITENOISE_USE_FINDERS=False,
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield tmp_path


def test_plotly_is_served_gzipped_and_immutable_from_the_run_page_url(
    collected, viewer, make_experiment, make_run
):
    run = make_run(make_experiment(), "r", metrics={"loss": [1.0, 0.5]})
    client = Client()  # a new client loads whitenoise with the settings above
    client.force_login(viewer)
    page = client.get(reverse("dashboard:run-detail", args=[run.uuid])).content.decode()
    src = re.search(r'<script src="(/static/plotly/plotly\.min\.[0-9a-f]{12}\.js)" defer>', page).group(1)

    response = client.get(src, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response["Vary"] == "Accept-Encoding"
    body = gzip.decompress(b"".join(response.streaming_content))
    plotly = (collected / "plotly" / "plotly.min.js").read_bytes()
    assert body == plotly
    assert int(response["Content-Length"]) < len(plotly) / 3


def test_a_client_without_gzip_gets_the_plain_file(collected):
    name = next((collected / "plotly").glob("plotly.min.*.js")).name
    response = Client().get(f"/static/plotly/{name}")
    assert "Content-Encoding" not in response
    assert int(response["Content-Length"]) == (collected / "plotly" / name).stat().st_size
