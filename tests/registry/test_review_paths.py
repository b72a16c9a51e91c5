"""Separation of duties on the paths beside the APIs: the admin site's approve action and the
review_promotion command refuse the requester and the source run's author exactly as the
service does; the admin site restores deleted models through the service."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.roles import Role
from accounts.services import assign_role
from registry.models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel
from registry.services import delete_registered_model

pytestmark = pytest.mark.django_db


def _site_admin(client, user):
    """Log `user` into the admin site as a superuser (which is the admin role, too)."""
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(user)


def _admin_approve(client, request):
    changelist = reverse("admin:registry_promotionrequest_changelist")
    response = client.post(changelist, {"action": "approve", "_selected_action": [request.pk]}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_admin_site_refuses_the_requester_approving_their_own_request(client, requester, open_request):
    _site_admin(client, requester)
    messages = _admin_approve(client, open_request)
    assert messages == [
        f"{open_request}: request: request #{open_request.pk} was opened by rita-requester, "
        "who cannot review their own request"
    ]
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.PENDING


def test_the_admin_site_refuses_the_run_author(client, contributor, open_request):
    _site_admin(client, contributor)
    (message,) = _admin_approve(client, open_request)
    assert message.endswith("and cannot review its promotion")
    assert not ModelAlias.objects.exists()


def test_an_eligible_admin_approves_in_the_admin_site(client, admin, open_request):
    _site_admin(client, admin)
    assert _admin_approve(client, open_request) == [f"{open_request}: approved"]
    assert ModelAlias.objects.get(alias="production").version == open_request.version


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("rita-requester", "request: request #{id} was opened by rita-requester, "
                           "who cannot review their own request"),
        ("carl-contributor", "request: carl-contributor created run {run}, the source of version 2, "
                             "and cannot review its promotion"),
        ("nobody", "No user named 'nobody'."),
    ],
)  # fmt: skip
def test_the_command_refuses_the_requester_and_the_run_author(
    requester, contributor, open_request, username, message
):
    for user in (requester, contributor):
        assign_role(user=user, role=Role.REVIEWER)
    with pytest.raises(CommandError) as error:
        call_command("review_promotion", str(open_request.pk), "--as", username, "--approve")
    assert str(error.value) == message.format(id=open_request.pk, run=open_request.version.run.uuid)
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.PENDING


def test_the_command_approves_and_rejects_as_a_reviewer(reviewer, open_request, capsys):
    with pytest.raises(CommandError) as error:
        call_command("review_promotion", str(open_request.pk), "--as", "rob-reviewer", "--reject")
    assert str(error.value) == "comment: a rejection needs a comment saying why"
    call_command(
        "review_promotion", str(open_request.pk), "--as", "rob-reviewer", "--approve", "--comment", "ok"
    )
    assert capsys.readouterr().out == f"Request #{open_request.pk} is approved (approve by rob-reviewer).\n"


def test_the_admin_site_lists_deleted_models_and_restores_them(client, admin, protected_model):
    delete_registered_model(actor=admin, model=protected_model)
    _site_admin(client, admin)
    changelist = reverse("admin:registry_registeredmodel_changelist")
    assert b"digits" in client.get(changelist).content
    response = client.post(
        changelist, {"action": "restore", "_selected_action": [protected_model.pk]}, follow=True
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["digits: restored"]
    assert RegisteredModel.objects.get() == protected_model
    assert ModelVersion.objects.count() == 0  # the fixture's model had no versions
