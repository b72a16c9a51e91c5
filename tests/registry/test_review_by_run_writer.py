"""Separation of duties reaches past the run's creator: a reviewer who wrote to the version's
source run (logged a metric, set a tag: any audit event on the run with them as its actor)
shaped the evidence, and may not review its promotion, on any path, in the queue or the badge."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.exceptions import PermissionDenied
from config.inputs import TagInput
from registry.models import Label, PromotionRequest
from registry.selectors import can_review, pending_review_count, review_queue_for
from registry.services import request_promotion, review_promotion
from tracker.services import MetricInput, log_batch

pytestmark = pytest.mark.django_db


def _refusal(reviewer, request) -> str:
    run = request.version.run
    return (
        f"request: {reviewer.username} wrote to run {run.uuid} (run.batch_logged), the source of "
        f"version {request.version.version}, and cannot review its promotion"
    )


def test_a_reviewer_who_logged_to_the_source_run_cannot_approve_it(open_request, reviewer, second_reviewer):
    log_batch(actor=reviewer, run=open_request.version.run, metrics=[MetricInput("val_f1", 0.99, 9, 0)])

    with pytest.raises(PermissionDenied) as refused:
        review_promotion(actor=reviewer, request=open_request, decision="approve")

    assert str(refused.value) == _refusal(reviewer, open_request)
    assert can_review(user=reviewer, request=open_request).reason == str(refused.value).removeprefix(
        "request: "
    )
    open_request.refresh_from_db()
    assert (open_request.status, open_request.reviews.count()) == (PromotionRequest.Status.PENDING, 0)
    review_promotion(actor=second_reviewer, request=open_request, decision="approve")  # who did not write
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.APPROVED


def test_a_tag_is_a_write_too_and_the_page_says_why_there_is_no_form(open_request, reviewer):
    log_batch(actor=reviewer, run=open_request.version.run, tags=[TagInput("looked_at", "yes")])
    client = Client()
    client.force_login(reviewer)

    page = client.get(reverse("dashboard:request-detail", args=[open_request.pk])).content.decode()
    posted = client.post(reverse("dashboard:request-review", args=[open_request.pk]), {"decision": "approve"})

    assert 'id="review-form"' not in page
    assert _refusal(reviewer, open_request).removeprefix("request: ") in page
    assert posted.status_code == 403
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.PENDING


def test_writing_to_another_run_changes_nothing(open_request, reviewer, trained_versions):
    log_batch(actor=reviewer, run=trained_versions[0].run, metrics=[MetricInput("loss", 0.1, 1, 0)])
    assert can_review(user=reviewer, request=open_request).allowed
    assert [r.pk for r in review_queue_for(user=reviewer)] == [open_request.pk]


def test_the_queue_and_the_badge_leave_out_requests_whose_run_the_reviewer_wrote_to(
    open_request, reviewer, second_reviewer, requester, trained_versions
):
    other = request_promotion(
        actor=requester, version=trained_versions[2], label=Label.alias("production"), justification="v3"
    )
    log_batch(actor=reviewer, run=open_request.version.run, metrics=[MetricInput("val_f1", 0.99, 9, 0)])

    assert [r.pk for r in review_queue_for(user=reviewer)] == [other.pk]
    assert pending_review_count(user=reviewer) == 1
    assert [r.pk for r in review_queue_for(user=second_reviewer)] == [open_request.pk, other.pk]
    assert pending_review_count(user=second_reviewer) == 2


def test_the_queue_asks_one_query_however_many_requests_wait(
    open_request, reviewer, requester, trained_versions
):
    def queue_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            list(review_queue_for(user=reviewer))
            pending_review_count(user=reviewer)
        return len(queries.captured_queries)

    queue_queries()  # the reviewer's role, read once and kept on the user
    before = queue_queries()
    request_promotion(
        actor=requester, version=trained_versions[2], label=Label.alias("production"), justification="v3"
    )
    log_batch(actor=reviewer, run=trained_versions[0].run, metrics=[MetricInput("loss", 0.1, 1, 0)])
    assert queue_queries() == before
