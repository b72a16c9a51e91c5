"""Registry pages: model list → model → version → request → review, "why this model?", the
alias timeline, and the run page's "Registered as" block."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.services import assign_role
from config.inputs import TagInput
from registry.models import Label, PromotionRequest
from registry.selectors import get_version_by_alias
from registry.services import (
    create_model_version,
    create_registered_model,
    delete_model_version,
    delete_registered_model,
    force_move,
    request_promotion,
    review_promotion,
    set_alias,
    set_promotion_policy,
)
from tests.factories import UserFactory
from tracker.services import DatasetSpec, delete_run

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
PRODUCTION = Label.alias("production")


@pytest.fixture
def second_reviewer(db):
    user = UserFactory(username="rhea-reviewer")
    assign_role(user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def registered(make_experiment, make_run, contributor, admin):
    """A model with two versions trained on different data; v1 holds production (break-glass)."""
    experiment = make_experiment("digits-sweep")
    old = make_run(
        experiment,
        "baseline",
        params={"lr": "0.01", "epochs": "20"},
        metrics={"val_f1": [0.5, 0.8], "loss": [0.9, 0.4]},
        datasets=[DatasetSpec(name="digits", digest="aa" * 32, version="2.0", context="training")],
        code_commit="1111111111111111111111111111111111111111",
        environment={"python": "3.11.9", "packages": {"torch": "2.2.0"}},
    )
    new = make_run(
        experiment,
        HOSTILE,
        params={"lr": "0.001", "epochs": "20"},
        metrics={"val_f1": [0.6, 0.9], "loss": [0.8, 0.3]},
        datasets=[DatasetSpec(name="digits", digest="bb" * 32, version="2.1", context="training")],
        code_commit="2222222222222222222222222222222222222222",
        environment={"python": "3.11.9", "packages": {"torch": "2.3.0"}},
        minutes=5,
    )
    model = create_registered_model(actor=contributor, name="digit-classifier", description=HOSTILE)
    v1 = create_model_version(actor=contributor, model=model, run=old)
    v2 = create_model_version(actor=contributor, model=model, run=new)
    set_promotion_policy(
        actor=admin,
        model=model,
        protected_aliases=["production"],
        required_approvals=2,
        key_metrics=[{"key": "val_f1", "goal": "max"}, {"key": "loss", "goal": "min"}],
    )
    force_move(actor=admin, model=model, label=PRODUCTION, version=v1, reason="first release")
    set_alias(actor=contributor, model=model, alias="staging", version=v2)
    return model, v1, v2


@pytest.fixture
def pending(registered, requester):
    _model, _, v2 = registered
    return request_promotion(
        actor=requester, version=v2, label=PRODUCTION, justification=f"better F1 {HOSTILE}"
    )


def login(client, user):
    client.force_login(user)
    return client


def version_url(name: str, version, page: str = "version-detail") -> str:
    return reverse(f"dashboard:{page}", args=[name, version.version])


# Model list and model page -------------------------------------------------------------------


def test_the_model_list_links_each_model_to_its_page_and_escapes_descriptions(client, viewer, registered):
    model, _, _ = registered
    content = login(client, viewer).get(reverse("dashboard:registry")).content.decode()
    assert f'<a href="{reverse("dashboard:model-detail", args=[model.name])}">digit-classifier</a>' in content
    assert "production → v1" in content
    assert HOSTILE not in content
    assert ESCAPED in content


def test_the_model_list_searches_tags_and_descriptions_and_orders_by_versions(
    client, viewer, contributor, registered, make_experiment, make_run
):
    model, _, _ = registered
    run = make_run(make_experiment("speech"), "s")
    tags = [TagInput("task", "audio")]
    speech = create_registered_model(actor=contributor, name="Speech-tagger", description="phones", tags=tags)
    create_model_version(actor=contributor, model=speech, run=run)
    create_registered_model(actor=contributor, name="aardvark")
    client = login(client, viewer)
    url = reverse("dashboard:registry")

    def names(query):
        response = client.get(url, query)
        assert response.status_code == 200
        return [m.name for m in response.context["models"]]

    assert names({}) == ["aardvark", "digit-classifier", "Speech-tagger"]  # case aside
    assert names({"q": "AUDIO"}) == ["Speech-tagger"]  # a tag's value
    assert names({"q": "onerror"}) == ["digit-classifier"]  # the (escaped) description
    assert names({"sort": "versions"}) == ["digit-classifier", "Speech-tagger", "aardvark"]
    counts = {m.name: m.version_count for m in client.get(url, {"q": "a"}).context["models"]}
    assert counts == {"aardvark": 0, "digit-classifier": 2, "Speech-tagger": 1}
    refused = client.get(url, {"sort": "stars"})
    assert refused.status_code == 400 and "Order: Select a valid choice." in refused.content.decode()
    assert model.name not in [m.name for m in refused.context["models"]]
    assert names({"page": "99999999999999999999999"}) == ["aardvark", "digit-classifier", "Speech-tagger"]


def test_the_model_page_shows_versions_protected_aliases_and_pending_requests(
    client, viewer, registered, pending
):
    model, _v1, v2 = registered
    response = login(client, viewer).get(reverse("dashboard:model-detail", args=[model.name]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<title>digit-classifier · Lab Ledger</title>" in content
    assert content.count('class="lock"') == 1  # production is protected, staging is not
    assert 'title="Break-glass: first release">break-glass</span>' in content  # how v1 got there
    assert reverse("dashboard:run-detail", args=[v2.run.uuid]) in content
    assert '<span class="chip">digits 2.1</span>' in content
    assert reverse("dashboard:request-detail", args=[pending.pk]) in content
    assert [row.version.version for row in response.context["versions"]] == [2, 1]
    assert response.context["versions"][0].key_metrics[0][1].value == 0.9
    assert "registry_model.policy" not in content
    assert 'id="policy-form"' not in content  # a viewer cannot change the policy
    assert HOSTILE not in content


def test_the_model_page_lists_only_the_newest_versions(client, viewer, contributor, registered, monkeypatch):
    model, v1, _ = registered
    create_model_version(actor=contributor, model=model, run=v1.run)
    monkeypatch.setattr("dashboard.views.registry.VERSIONS_SHOWN", 2)
    response = login(client, viewer).get(reverse("dashboard:model-detail", args=[model.name]))
    table = response.content.decode().split('id="versions-heading"')[1].split("</section>")[0]
    assert table.count('<td><a href="/registry/digit-classifier/versions/') == 2
    assert ">v3</a>" in table and ">v2</a>" in table
    assert "Showing the newest 2 versions" in table


def test_an_admin_changes_the_policy_from_the_model_page(client, admin, registered):
    model, _, _ = registered
    url = reverse("dashboard:model-policy", args=[model.name])
    response = login(client, admin).post(
        url,
        {"protected_aliases": "production, canary", "required_approvals": "1", "review_role": "admin",
         "key_metrics": "val_f1 max"},
    )  # fmt: skip
    assert response.status_code == 302
    page = client.get(reverse("dashboard:model-detail", args=[model.name]))
    assert page.context["policy"].protected_aliases == ["production", "canary"]
    assert page.context["policy"].review_role == "admin"
    assert 'id="policy-form"' in page.content.decode()


def test_a_malformed_key_metric_line_is_refused_naming_the_line(client, admin, registered):
    model, _, _ = registered
    response = login(client, admin).post(
        reverse("dashboard:model-policy", args=[model.name]),
        {"protected_aliases": "production", "required_approvals": "2", "review_role": "reviewer",
         "key_metrics": "val_f1 max\nloss sideways"},
    )  # fmt: skip
    assert response.status_code == 400
    assert 'line 2: write the metric key, a space, then "max" or "min"' in response.content.decode().replace(
        "&quot;", '"'
    )


def test_only_an_admin_may_change_a_policy(client, reviewer, registered):
    model, _, _ = registered
    response = login(client, reviewer).post(
        reverse("dashboard:model-policy", args=[model.name]),
        {"protected_aliases": "", "required_approvals": "1", "review_role": "reviewer", "key_metrics": ""},
    )
    assert response.status_code == 403
    assert "Changing a promotion policy needs the admin role." in response.content.decode()


# Version page and the request form -----------------------------------------------------------


def test_a_contributor_requests_a_promotion_from_the_version_page(client, requester, registered):
    model, _, v2 = registered
    page = login(client, requester).get(version_url(model.name, v2))
    assert "<title>digit-classifier v2 · Lab Ledger</title>" in page.content.decode()
    assert 'id="request-form"' in page.content.decode()
    assert page.context["form"].fields["target"].choices == [
        ("alias:production", "alias production"),
        ("stage:Production", "stage Production (legacy)"),
    ]
    response = client.post(
        version_url(model.name, v2, "version-request"),
        {"target": "alias:production", "justification": "F1 up by 0.1"},
    )
    opened = PromotionRequest.objects.get(status="pending")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:request-detail", args=[opened.pk])
    assert (opened.version, opened.label_name, opened.requester) == (v2, "production", requester)


def test_a_request_without_a_justification_is_refused_inline(client, requester, registered):
    model, _, v2 = registered
    response = login(client, requester).post(
        version_url(model.name, v2, "version-request"), {"target": "alias:production", "justification": "  "}
    )
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not PromotionRequest.objects.filter(status="pending").exists()


def test_a_request_of_a_deleted_model_names_it_without_a_dead_link(
    client, viewer, contributor, requester, admin, make_experiment, make_run
):
    run = make_run(make_experiment("gone"), "r")
    model = create_registered_model(actor=contributor, name="del-me")
    version = create_model_version(actor=contributor, model=model, run=run)
    request = request_promotion(actor=requester, version=version, label=PRODUCTION, justification="x")
    delete_registered_model(actor=admin, model=model)
    page = login(client, viewer).get(reverse("dashboard:request-detail", args=[request.pk])).content.decode()
    assert 'href="/registry/del-me/"' not in page
    assert 'del-me <span class="chip"' in page and "1 approval" not in page and "0 approvals." in page
    assert 'id="why-link"' not in page  # no page to lead to


def test_a_viewer_gets_no_request_form_and_cannot_post_one(client, viewer, registered):
    model, _, v2 = registered
    assert 'id="request-form"' not in login(client, viewer).get(version_url(model.name, v2)).content.decode()
    response = client.post(
        version_url(model.name, v2, "version-request"), {"target": "alias:production", "justification": "x"}
    )
    assert response.status_code == 403
    assert "Requesting a promotion needs the contributor role." in response.content.decode()
    assert not PromotionRequest.objects.filter(status="pending").exists()


# Review queue and request page ---------------------------------------------------------------


def test_the_queue_lists_pending_requests_oldest_first_with_a_badge(
    client, reviewer, requester, registered, pending
):
    _model, v1, _ = registered
    newer = request_promotion(actor=requester, version=v1, label=Label.stage("Production"), justification="x")
    response = login(client, reviewer).get(reverse("dashboard:review-queue"))
    assert [r.pk for r in response.context["queue"]] == [pending.pk, newer.pk]
    assert '<span class="badge count-badge" id="review-badge"' in response.content.decode()
    assert 'title="2 requests waiting for your review"' in response.content.decode()
    stage_page = client.get(reverse("dashboard:request-detail", args=[newer.pk]))
    assert stage_page.context["current"] is None
    assert "nothing holds Production yet" in stage_page.content.decode()


def approval_cells(page, table_id: str) -> list[str]:
    table = page.content.decode().split(f'id="{table_id}"')[1].split("</table>")[0]
    return re.findall(r'<td class="num">([^<]*)</td>', table)


def test_the_request_tables_count_a_pending_requests_approvals_against_its_policy(
    client, reviewer, second_reviewer, requester, registered, pending, settings
):
    """The model's policy asks for two approvals; a model without a policy, the default. A
    decided request shows its count alone: the policy may have changed since."""
    review_promotion(actor=reviewer, request=pending, decision="approve")
    unpoliced = create_registered_model(actor=requester, name="unpoliced")
    version = create_model_version(actor=requester, model=unpoliced, run=pending.version.run)
    request_promotion(actor=requester, version=version, label=PRODUCTION, justification="x")
    queue = login(client, second_reviewer).get(reverse("dashboard:review-queue"))
    default = settings.REGISTRY_REQUIRED_APPROVALS
    assert approval_cells(queue, "review-queue") == ["1 of 2", f"0 of {default}"]  # oldest first
    assert approval_cells(queue, "open-requests") == ["1 of 2", f"0 of {default}"]  # in the same order
    review_promotion(actor=second_reviewer, request=pending, decision="approve")
    version_page = client.get(version_url(pending.model.name, pending.version))
    assert approval_cells(version_page, "version-requests") == ["2"]


def test_a_requester_sees_no_badge_and_no_own_request_in_the_queue(client, requester, registered, pending):
    response = login(client, requester).get(reverse("dashboard:review-queue"))
    assert response.context["queue"] == []
    assert [r.pk for r in response.context["open"]] == [pending.pk]
    assert 'id="review-badge"' not in response.content.decode()


def test_the_request_page_sets_the_candidate_beside_the_current_holder(client, reviewer, registered, pending):
    _, v1, _v2 = registered
    response = login(client, reviewer).get(reverse("dashboard:request-detail", args=[pending.pk]))
    content = response.content.decode()
    assert (
        f'id="why-link" href="{version_url(pending.model.name, pending.version, "version-lineage")}"'
        in content
    )
    comparison = response.context["comparison"]
    assert response.context["current"].version == v1
    assert [(m.key, round(m.delta, 6), m.verdict) for m in comparison.metrics] == [
        ("val_f1", 0.1, "better"),
        ("loss", -0.1, "better"),
    ]
    assert comparison.dataset_warning
    assert 'class="dataset-warning" role="alert"' in content
    assert [(row.key, row.differs) for row in comparison.params] == [("epochs", False), ("lr", True)]
    assert "1 of 2 params differ (highlighted)." in content
    assert [row.key for row in comparison.environment_changes] == ["packages.torch"]
    assert "1111111111111111111111111111111111111111" in content
    assert [c["key"] for c in response.context["curves"]] == ["val_f1", "loss"]
    assert [t["role"] for t in response.context["curves"][0]["traces"]] == ["candidate", "current"]
    assert 'id="review-form"' in content
    assert HOSTILE not in content
    assert f"better F1 {ESCAPED}" in content


def test_the_requester_is_told_why_they_cannot_approve(client, requester, registered, pending):
    response = login(client, requester).get(reverse("dashboard:request-detail", args=[pending.pk]))
    content = response.content.decode()
    assert 'id="review-form"' not in content
    assert (
        f"You cannot review this request: request #{pending.pk} was opened by rita-requester, "
        "who cannot review their own request." in content
    )
    assert "Withdraw this request" in content


def test_the_run_creator_is_told_why_they_cannot_approve(client, contributor, registered, pending):
    assign_role(user=contributor, role=Role.REVIEWER)
    _, _, v2 = registered
    content = (
        login(client, contributor)
        .get(reverse("dashboard:request-detail", args=[pending.pk]))
        .content.decode()
    )
    assert 'id="review-form"' not in content
    assert (
        f"carl-contributor created run {v2.run.uuid}, the source of version 2, and cannot review" in content
    )


def test_two_approvals_move_the_alias(client, reviewer, second_reviewer, registered, pending):
    model, _, v2 = registered
    url = reverse("dashboard:request-review", args=[pending.pk])
    response = login(client, reviewer).post(url, {"decision": "approve", "comment": "looks right"})
    assert response.status_code == 302
    assert get_version_by_alias(model=model, alias="production").version == 1
    login(client, second_reviewer).post(url, {"decision": "approve", "comment": ""})
    assert get_version_by_alias(model=model, alias="production") == v2
    page = client.get(reverse("dashboard:request-detail", args=[pending.pk]))
    assert page.context["req"].status == "approved"
    assert page.context["current"].version.version == 1  # what it replaced
    assert "Approved" in page.content.decode()


def test_a_decision_that_is_neither_approve_nor_reject_is_refused_saying_so(
    client, reviewer, registered, pending
):
    """A crafted POST once got a 400 page with no error on it."""
    response = login(client, reviewer).post(
        reverse("dashboard:request-review", args=[pending.pk]), {"decision": "maybe", "comment": ""}
    )
    assert response.status_code == 400
    assert (
        "Decision: Select a valid choice. maybe is not one of the available choices."
        in response.content.decode()
    )
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_a_rejection_without_a_comment_is_refused_next_to_the_comment(client, reviewer, registered, pending):
    response = login(client, reviewer).post(
        reverse("dashboard:request-review", args=[pending.pk]), {"decision": "reject", "comment": ""}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "a rejection needs a comment saying why" in content
    assert '<textarea name="comment" cols="40" rows="3" maxlength="5000" autofocus' in content
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_a_requester_posting_an_approval_is_refused(client, requester, registered, pending):
    response = login(client, requester).post(
        reverse("dashboard:request-review", args=[pending.pk]), {"decision": "approve", "comment": ""}
    )
    assert response.status_code == 403
    pending.refresh_from_db()
    assert (pending.status, pending.reviews.count()) == ("pending", 0)


def test_the_requester_withdraws_and_others_cannot(client, requester, reviewer, registered, pending):
    url = reverse("dashboard:request-withdraw", args=[pending.pk])
    response = login(client, reviewer).post(url, follow=True)
    assert (
        f"only rita-requester, who opened request #{pending.pk}, can withdraw it" in response.content.decode()
    )
    login(client, requester).post(url)
    pending.refresh_from_db()
    assert pending.status == "withdrawn"


# Why this model? and the timeline -----------------------------------------------------------


def test_why_this_model_says_when_the_source_run_is_deleted(client, viewer, admin, registered):
    model, v1, _ = registered
    url = version_url(model.name, v1, "version-lineage")
    assert 'id="run-deleted"' not in login(client, viewer).get(url).content.decode()
    delete_run(actor=admin, run=v1.run)
    assert 'id="run-deleted"' in client.get(url).content.decode()


def test_why_this_model_shows_the_run_the_decisions_the_holdings_and_the_audit_events(
    client, viewer, reviewer, second_reviewer, registered, pending
):
    model, v1, v2 = registered
    review_promotion(actor=reviewer, request=pending, decision="approve", comment=f"ok {HOSTILE}")
    review_promotion(actor=second_reviewer, request=pending, decision="approve", comment="agreed")
    response = login(client, viewer).get(version_url(model.name, v2, "version-lineage"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "carl-contributor" in content  # registered it
    assert f"Request #{pending.pk}" in content
    assert f"ok {ESCAPED}" in content and "agreed" in content
    assert "rob-reviewer" in content and "rhea-reviewer" in content
    assert "bb" * 32 in content  # the dataset digest
    assert "holds it now" in content
    assert f'href="/audit/?object_type=registry.modelversion&amp;object_id=id%3A{v2.pk}"' in content
    assert "The audit chain has not been verified yet." in content
    actions = [event.action for event in response.context["history"].events]
    newest = ["promotion.applied", "promotion.approved", "promotion.approved", "promotion.requested"]
    assert actions[:4] == newest
    assert actions[-1] == "model_version.created"
    assert HOSTILE not in content
    v1_page = client.get(version_url(model.name, v1, "version-lineage")).content.decode()
    assert "break-glass" in v1_page and "first release" in v1_page


def test_the_timeline_answers_which_version_held_each_alias_at_a_moment(client, viewer, registered, pending):
    model, v1, v2 = registered
    content = (
        login(client, viewer).get(reverse("dashboard:model-timeline", args=[model.name])).content.decode()
    )
    assert 'id="alias-timeline-data"' in content
    later = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    response = client.get(reverse("dashboard:model-timeline", args=[model.name]), {"at": later})
    assert [(row.name, row.version) for row in response.context["holders"]] == [
        ("production", v1),
        ("staging", v2),
    ]
    early = client.get(reverse("dashboard:model-timeline", args=[model.name]), {"at": "2001-01-01T00:00"})
    assert early.context["holders"] == []
    assert "No alias or stage pointed at a version of digit-classifier then." in early.content.decode()


def test_a_malformed_moment_is_refused_next_to_the_picker(client, viewer, registered):
    model, _, _ = registered
    response = login(client, viewer).get(
        reverse("dashboard:model-timeline", args=[model.name]), {"at": "soon"}
    )
    assert response.status_code == 400
    assert "Enter a valid date/time." in response.content.decode()


def test_the_run_page_lists_the_versions_registered_from_it(client, viewer, registered):
    model, _, v2 = registered
    content = login(client, viewer).get(reverse("dashboard:run-detail", args=[v2.run.uuid])).content.decode()
    assert "Registered as" in content
    assert f'<a href="{version_url(model.name, v2)}">digit-classifier v2</a>' in content


# Access and query budgets --------------------------------------------------------------------


def test_registry_pages_need_a_role(client, outsider, registered, pending):
    model, _, v2 = registered
    login(client, outsider)
    for url in (
        reverse("dashboard:model-detail", args=[model.name]),
        version_url(model.name, v2),
        version_url(model.name, v2, "version-lineage"),
        reverse("dashboard:model-timeline", args=[model.name]),
        reverse("dashboard:review-queue"),
        reverse("dashboard:request-detail", args=[pending.pk]),
    ):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize(
    ("page", "max_queries"),
    [
        ("registry", 8),
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
def test_registry_pages_stay_within_a_query_budget(
    client,
    reviewer,
    contributor,
    requester,
    registered,
    pending,
    page,
    max_queries,
    django_assert_max_num_queries,
):
    """The budgets are the counts measured with these rows; more versions, requests and moves
    (added here) cost no more queries."""
    model, _, v2 = registered
    for _ in range(3):
        extra = create_model_version(actor=contributor, model=model, run=v2.run)
        set_alias(actor=contributor, model=model, alias="staging", version=extra)
        request_promotion(actor=requester, version=extra, label=PRODUCTION, justification="another one")
    args = {
        "registry": [],
        "review-queue": [],
        "model-detail": [model.name],
        "model-timeline": [model.name],
        "request-detail": [pending.pk],
    }.get(page, [model.name, v2.version])
    login(client, reviewer)
    with django_assert_max_num_queries(max_queries):
        response = client.get(reverse(f"dashboard:{page}", args=args))
    assert response.status_code == 200


# Break-glass --------------------------------------------------------------------------------


def test_an_admin_forces_a_move_with_a_reason_and_it_is_marked_everywhere(client, admin, registered):
    model, _, v2 = registered
    response = login(client, admin).post(
        version_url(model.name, v2, "version-force"),
        {"force-target": "alias:production", "force-reason": f"hotfix {HOSTILE}"},
        follow=True,
    )
    assert "Break-glass: alias &#x27;production&#x27; now points at v2; the reason is recorded." in (
        response.content.decode()
    )
    assert get_version_by_alias(model=model, alias="production") == v2
    page = client.get(reverse("dashboard:model-detail", args=[model.name])).content.decode()
    assert f'title="Break-glass: hotfix {ESCAPED}">break-glass</span>' in page


def test_a_forced_move_needs_a_reason_and_an_admin(client, admin, reviewer, registered):
    model, v1, v2 = registered
    url = version_url(model.name, v2, "version-force")
    assert 'id="force-form"' not in login(client, reviewer).get(version_url(model.name, v2)).content.decode()
    refused = client.post(url, {"force-target": "alias:production", "force-reason": "now"})
    assert refused.status_code == 403
    assert "Forcing a promotion needs the admin role." in refused.content.decode()
    blank = login(client, admin).post(url, {"force-target": "alias:production", "force-reason": " "})
    assert blank.status_code == 400
    assert "This field is required." in blank.content.decode()
    assert get_version_by_alias(model=model, alias="production") == v1


def test_a_missing_model_version_or_request_is_a_404_that_names_it(client, viewer, registered):
    login(client, viewer)
    missing_model = client.get(reverse("dashboard:model-detail", args=["no-such-model"]))
    assert missing_model.status_code == 404
    assert "registered model &#x27;no-such-model&#x27; does not exist" in missing_model.content.decode()
    missing_version = client.get(reverse("dashboard:version-lineage", args=["digit-classifier", 9]))
    assert missing_version.status_code == 404
    assert (
        "registered model &#x27;digit-classifier&#x27; has no version 9" in missing_version.content.decode()
    )
    missing_request = client.get(reverse("dashboard:request-detail", args=[999]))
    assert missing_request.status_code == 404
    assert "promotion request #999 does not exist" in missing_request.content.decode()


def test_a_hostile_model_name_is_text_on_every_page_and_works_in_urls(
    client, reviewer, requester, contributor, admin, registered
):
    _, v1, _ = registered
    model = create_registered_model(actor=contributor, name=HOSTILE)
    version = create_model_version(actor=contributor, model=model, run=v1.run)
    opened = request_promotion(actor=requester, version=version, label=PRODUCTION, justification="x")
    login(client, reviewer)
    for url in (
        reverse("dashboard:registry"),
        reverse("dashboard:model-detail", args=[HOSTILE]),
        reverse("dashboard:model-timeline", args=[HOSTILE]),
        version_url(HOSTILE, version),
        version_url(HOSTILE, version, "version-lineage"),
        reverse("dashboard:review-queue"),
        reverse("dashboard:request-detail", args=[opened.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert HOSTILE not in response.content.decode(), url
        assert ESCAPED in response.content.decode(), url


def test_a_deleted_version_stays_in_the_timeline_marked_deleted_and_unlinked(
    client, viewer, contributor, registered
):
    model, _, v2 = registered
    delete_model_version(actor=contributor, version=v2)
    content = (
        login(client, viewer).get(reverse("dashboard:model-timeline", args=[model.name])).content.decode()
    )
    history = content.split('id="alias-history"')[1]
    assert 'v2 <span class="chip" title="Deleted ' in history
    assert version_url(model.name, v2) not in history


def test_every_registry_form_needs_its_csrf_token(reviewer, admin, requester, registered, pending):
    model, _, v2 = registered
    posts = [
        (requester, version_url(model.name, v2, "version-request"), {"target": "alias:production"}),
        (reviewer, reverse("dashboard:request-review", args=[pending.pk]), {"decision": "approve"}),
        (requester, reverse("dashboard:request-withdraw", args=[pending.pk]), {}),
        (admin, reverse("dashboard:model-policy", args=[model.name]), {"required_approvals": "1"}),
        (admin, version_url(model.name, v2, "version-force"), {"force-target": "alias:production"}),
    ]
    for user, url, data in posts:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        assert client.post(url, data).status_code == 403, url
    pending.refresh_from_db()
    assert (pending.status, pending.reviews.count()) == ("pending", 0)
