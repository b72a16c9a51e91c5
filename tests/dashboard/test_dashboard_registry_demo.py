"""The registry and review pages on the seeded demo (a reviewed production, a pending request),
each within a query budget."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.permissions import SYSTEM_READER
from accounts.roles import Role
from accounts.services import assign_role
from registry.models import PromotionRequest
from registry.selectors import get_registered_model, list_promotion_requests
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(db):
    call_command("seed_demo", "--quick", stdout=StringIO())
    return list_promotion_requests(
        user=SYSTEM_READER,
        model=get_registered_model(user=SYSTEM_READER, name="spiral-classifier"),
        status=PromotionRequest.Status.PENDING,
    ).get()


@pytest.fixture
def other_reviewer(db):
    user = UserFactory(username="olga-reviewer")
    assign_role(user=user, role=Role.REVIEWER)
    return user


@pytest.mark.parametrize(
    ("page", "max_queries"),
    [
        # +1: the reader's grant on the model (READ check); +1: their grants on the source runs'
        # experiments, one query for all (a run's evidence shows only to its experiment's readers)
        ("model-detail", 21),
        ("version-detail", 16),
        ("version-lineage", 21),
        ("model-timeline", 7),  # +1 likewise
        ("review-queue", 6),
        # +1: READ on the request's model; +1: on its runs' experiments; +1: whether the reviewer
        # wrote to the source run (one lookup on the audit events' object index)
        ("request-detail", 19),
    ],
)
def test_registry_pages_render_the_demo_within_a_query_budget(
    client, other_reviewer, pending, page, max_queries, django_assert_max_num_queries
):
    model, version = pending.model.name, pending.version.version
    args = {
        "model-detail": [model],
        "model-timeline": [model],
        "review-queue": [],
        "request-detail": [pending.pk],
    }
    client.force_login(other_reviewer)
    with django_assert_max_num_queries(max_queries):
        response = client.get(reverse(f"dashboard:{page}", args=args.get(page, [model, version])))
    assert response.status_code == 200


def test_the_demo_request_waits_in_a_reviewers_queue_beside_production(client, other_reviewer, pending):
    client.force_login(other_reviewer)
    queue = client.get(reverse("dashboard:review-queue"))
    assert [r.pk for r in queue.context["queue"]] == [pending.pk]
    page = client.get(reverse("dashboard:request-detail", args=[pending.pk]))
    assert page.context["current"].version == pending.previous_version
    assert page.context["comparison"].dataset_warning  # the baseline trained on the older data
    assert 'id="review-form"' in page.content.decode()
