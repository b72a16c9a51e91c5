"""What a new user hit first (issue #11 §6): a GET of the logout URL, and the favicon's 404."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    return client


def test_a_get_of_the_logout_url_shows_a_logout_button_and_keeps_the_session(viewer_client, viewer):
    response = viewer_client.get(reverse("logout"))

    assert response.status_code == 200
    content = response.content.decode()
    form = re.search(r'<form method="post" action="(?P<action>[^"]+)">(?P<body>.*?)</form>', content, re.S)
    assert form is not None, content
    assert form["action"] == reverse("logout")
    assert 'name="csrfmiddlewaretoken"' in form["body"]
    assert '<button type="submit" class="button primary">Log out</button>' in form["body"]
    assert f"You are logged in as {viewer.username}." in content
    assert "<script" not in content.split("</header>")[1] and "<style" not in content  # CSP-ready
    assert viewer_client.get(reverse("dashboard:experiment-list")).status_code == 200  # still logged in


def test_the_logout_pages_button_logs_out(viewer_client):
    page = viewer_client.get(reverse("logout"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]

    response = viewer_client.post(reverse("logout"), {"csrfmiddlewaretoken": token})

    assert (response.status_code, response["Location"]) == (302, reverse("login"))
    assert viewer_client.get(reverse("dashboard:experiment-list")).status_code == 302


def test_a_get_of_the_logout_url_without_a_session_goes_to_the_login_page():
    response = Client().get(reverse("logout"))
    assert (response.status_code, response["Location"]) == (302, reverse("login"))


def test_every_page_links_the_svg_favicon(viewer_client):
    for url in (reverse("login"), reverse("dashboard:experiment-list")):
        response = viewer_client.get(url) if url != reverse("login") else Client().get(url)
        assert (
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in response.content.decode()
        )


def test_favicon_ico_redirects_to_the_svg_without_login():
    response = Client().get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, "/static/favicon.svg")
    icon = finders.find("favicon.svg")
    assert icon is not None
    assert Path(icon).read_text().startswith('<svg xmlns="http://www.w3.org/2000/svg"')
