"""The admin site cannot re-assign, un-revoke, add or delete API tokens; it revokes them only
through the service, which audits it."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import create_api_token, revoke_api_token, user_for_token
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_admin_cannot_unrevoke_or_reassign_a_token(admin_client, admin_user, contributor):
    token, raw = create_api_token(user=contributor, name="ci")
    revoke_api_token(user=contributor, token_id=token.pk)
    change = reverse("admin:accounts_apitoken_change", args=[token.pk])

    page = admin_client.get(change)
    response = admin_client.post(
        change,
        {"user": admin_user.pk, "name": "ci", "prefix": token.prefix, "revoked_at_0": "", "revoked_at_1": ""},
    )

    assert page.status_code == 200  # browsing still works
    assert response.status_code == 403
    token.refresh_from_db()
    assert (token.user_id, token.revoked_at is not None) == (contributor.pk, True)
    assert user_for_token(raw) is None


def test_the_admin_cannot_delete_a_token(admin_client, contributor):
    token, _ = create_api_token(user=contributor, name="ci")

    response = admin_client.post(reverse("admin:accounts_apitoken_delete", args=[token.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_admin_revokes_tokens_through_the_audited_service(admin_client, admin_user, contributor):
    token, raw = create_api_token(user=contributor, name="ci")

    response = admin_client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"{token}: revoked"]
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_at <= timezone.now()
    assert user_for_token(raw) is None
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.actor_name, event.object_id) == (admin_user.username, str(token.pk))
