"""Settings: API tokens are created (shown once) and revoked through accounts.services."""

from __future__ import annotations

import re

from django.urls import reverse

from accounts.models import ApiToken
from accounts.services import create_api_token, user_for_token

HOSTILE = "<script>alert(1)</script>"


def test_creating_a_token_shows_its_plain_text_once(viewer_client, viewer):
    response = viewer_client.post(reverse("dashboard:settings"), {"name": "laptop"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    content = response.content.decode()
    raw = re.search(r'<code class="token" id="new-token-value">(llt_[\w-]+)</code>', content).group(1)
    assert '<span class="missing">never</span>' in content  # the list's "last used"
    assert user_for_token(raw) == viewer
    token = ApiToken.objects.get(user=viewer)
    assert token.name == "laptop"
    assert raw.startswith(token.prefix)

    again = viewer_client.get(reverse("dashboard:settings")).content.decode()
    assert raw not in again
    assert "laptop" in again
    assert f"{token.prefix}…" in again


def test_a_token_needs_a_name(viewer_client, viewer):
    response = viewer_client.post(reverse("dashboard:settings"), {"name": ""})
    assert response.status_code == 400
    assert "Name: This field is required." in response.content.decode()
    assert not ApiToken.objects.filter(user=viewer).exists()


def test_token_names_are_escaped(viewer_client):
    content = viewer_client.post(reverse("dashboard:settings"), {"name": HOSTILE}).content.decode()
    assert HOSTILE not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_revoking_a_token_stops_it_working(viewer_client, viewer):
    token, raw = create_api_token(user=viewer, name="ci")
    response = viewer_client.post(reverse("dashboard:token-revoke", args=[token.pk]), follow=True)
    assert response.redirect_chain == [(reverse("dashboard:settings"), 302)]
    assert "Token “ci” was revoked." in response.content.decode()
    assert "revoked " in response.content.decode()
    assert user_for_token(raw) is None
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_revoking_needs_post(viewer_client, viewer):
    token, _ = create_api_token(user=viewer, name="ci")
    assert viewer_client.get(reverse("dashboard:token-revoke", args=[token.pk])).status_code == 405


def test_nobody_can_revoke_someone_elses_token(viewer_client, contributor):
    token, raw = create_api_token(user=contributor, name="theirs")
    response = viewer_client.post(reverse("dashboard:token-revoke", args=[token.pk]))
    assert response.status_code == 403
    assert "You can only revoke your own tokens." in response.content.decode()
    assert user_for_token(raw) == contributor


def test_revoking_an_unknown_token_is_a_404(viewer_client):
    assert viewer_client.post(reverse("dashboard:token-revoke", args=[424242])).status_code == 404


def test_the_settings_page_lists_only_my_tokens(viewer_client, contributor, viewer):
    create_api_token(user=contributor, name="not-mine")
    create_api_token(user=viewer, name="mine")
    content = viewer_client.get(reverse("dashboard:settings")).content.decode()
    assert "mine" in content
    assert "not-mine" not in content


def test_the_registry_lists_models_with_versions_and_aliases(viewer_client, contributor):
    from registry.models import ModelAlias
    from tests.factories import ModelVersionFactory, RegisteredModelFactory

    model = RegisteredModelFactory(name="digit-classifier", description=HOSTILE)
    versions = [ModelVersionFactory(model=model, version=n, run__experiment__name=f"e{n}") for n in (1, 2)]
    ModelAlias.objects.create(model=model, alias="production", version=versions[1])
    response = viewer_client.get(reverse("dashboard:registry"))
    content = response.content.decode()
    assert "digit-classifier" in content
    assert "production → v2" in content
    assert HOSTILE not in content
    assert response.context["models"][0].version_count == 2
