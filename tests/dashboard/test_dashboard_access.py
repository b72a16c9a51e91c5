"""Every dashboard page needs a login and at least the viewer role; login and /healthz do not."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.access import NO_ROLE_MESSAGE


@pytest.fixture
def urls(run):
    return [
        reverse("dashboard:experiment-list"),
        reverse("dashboard:run-table", args=[run.experiment.pk]),
        reverse("dashboard:run-detail", args=[run.uuid]),
        reverse("dashboard:artifact-download", args=[run.uuid, "model/weights.bin"]),
        reverse("dashboard:chart-series"),
        reverse("dashboard:run-columns"),
        reverse("dashboard:compare"),
        reverse("dashboard:registry"),
        reverse("dashboard:settings"),
    ]


def test_every_page_redirects_an_anonymous_user_to_the_login_page(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('login')}?next={url}"


def test_a_user_without_a_role_gets_403_on_every_page(client, outsider, urls):
    client.force_login(outsider)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
    assert NO_ROLE_MESSAGE in response.content.decode()


def test_token_revocation_needs_a_role_too(client, outsider):
    client.force_login(outsider)
    assert client.post(reverse("dashboard:token-revoke", args=[1])).status_code == 403


def test_healthz_stays_public(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"OK"


def test_login_page_renders_a_form(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_logging_in_lands_on_the_experiment_list(client, viewer):
    response = client.post(
        reverse("login"),
        {"username": viewer.username, "password": "correct horse battery staple"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard:experiment-list")
    assert b"Experiments" in response.content


def test_a_wrong_password_shows_an_error_on_the_login_page(client, viewer):
    response = client.post(reverse("login"), {"username": viewer.username, "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logout_is_a_post_and_ends_the_session(viewer_client):
    page = viewer_client.get(reverse("dashboard:experiment-list"))
    assert f'action="{reverse("logout")}"'.encode() in page.content
    response = viewer_client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert viewer_client.get(reverse("dashboard:experiment-list")).status_code == 302


def test_the_header_shows_the_user_and_role(viewer_client, viewer):
    content = viewer_client.get(reverse("dashboard:experiment-list")).content.decode()
    assert viewer.username in content
    assert 'class="badge role role-viewer">viewer<' in content


def test_an_unknown_run_is_a_404(viewer_client):
    assert viewer_client.get(reverse("dashboard:run-detail", args=["0" * 32])).status_code == 404


def test_an_unknown_experiment_is_a_404(viewer_client):
    assert viewer_client.get(reverse("dashboard:run-table", args=[987654])).status_code == 404
