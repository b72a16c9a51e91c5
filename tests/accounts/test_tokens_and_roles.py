from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiToken
from accounts.roles import Role, role_of
from accounts.services import create_api_token, hash_token, revoke_api_token, user_for_token
from config.exceptions import PermissionDenied

pytestmark = pytest.mark.django_db


def test_token_is_stored_only_as_a_hash(contributor):
    token, raw = create_api_token(user=contributor, name="laptop")
    assert raw.startswith("llt_") and raw not in {token.token_hash, token.prefix}
    assert token.token_hash == hash_token(raw)
    assert user_for_token(raw) == contributor


def test_revoked_token_no_longer_authenticates(contributor):
    token, raw = create_api_token(user=contributor)
    revoke_api_token(user=contributor, token_id=token.pk)
    assert user_for_token(raw) is None


def test_a_user_cannot_revoke_someone_elses_token(contributor, viewer):
    token, _ = create_api_token(user=contributor)
    with pytest.raises(PermissionDenied):
        revoke_api_token(user=viewer, token_id=token.pk)


def test_token_of_a_deactivated_user_is_refused(contributor):
    _, raw = create_api_token(user=contributor)
    contributor.is_active = False
    contributor.save()
    assert user_for_token(raw) is None


def test_create_api_token_command_prints_a_working_token(contributor):
    out = StringIO()
    call_command("create_api_token", contributor.username, stdout=out)
    raw = out.getvalue().strip()
    assert user_for_token(raw) == contributor
    assert ApiToken.objects.get(user=contributor).name == "cli"


def test_create_api_token_command_names_a_missing_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_assign_role_command_gives_the_role(outsider):
    call_command("assign_role", outsider.username, "reviewer", stdout=StringIO())
    outsider.refresh_from_db()
    assert role_of(outsider) == Role.REVIEWER


def test_highest_group_wins_and_superusers_are_admins(viewer, admin_user):
    call_command("assign_role", viewer.username, "contributor", stdout=StringIO())
    viewer.refresh_from_db()
    assert role_of(viewer) == Role.CONTRIBUTOR
    assert role_of(admin_user) == Role.ADMIN


def test_assigning_a_role_is_audited(outsider, admin):
    from accounts.services import assign_role
    from audit.models import AuditEvent

    assign_role(user=outsider, role=Role.VIEWER, actor=admin)
    events = AuditEvent.objects.filter(action="user.role_assigned", object_id=outsider.username)
    event = events.latest("sequence")
    assert (event.actor_name, event.after) == (admin.username, {"role": "viewer"})
