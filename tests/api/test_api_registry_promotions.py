"""Reviewed promotions over the native API: requests, reviews, policies, break-glass, lineage and
holders at a time; protected labels refused on the alias, stage and delete endpoints."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from accounts.services import assign_role
from registry.models import Label, ModelAlias, PromotionRequest
from registry.services import create_model_version, create_registered_model, force_move, request_promotion
from tests.api.api_helpers import error, url
from tests.factories import UserFactory
from tracker.search import encode_cursor
from tracker.services import start_run

pytestmark = pytest.mark.django_db

PROTECTED = (
    "'production' is a protected alias of registered model 'digits': it moves only through an approved "
    "promotion request; open one with POST /api/v1/promotion-requests or from the version's page"
)


@pytest.fixture
def model(contributor, experiment):
    model = create_registered_model(actor=contributor, name="digits")
    for index in range(3):
        run = start_run(actor=contributor, experiment=experiment, name=f"r{index}")
        create_model_version(actor=contributor, model=model, run=run)
    return model


@pytest.fixture
def pending(requester, model):
    return request_promotion(
        actor=requester,
        version=model.versions.get(version=2),
        label=Label.alias("production"),
        justification="F1",
    )


@pytest.fixture
def second_reviewer(db):
    user = UserFactory(username="rhea-reviewer")
    assign_role(user=user, role=Role.REVIEWER)
    return user


def test_a_contributor_opens_a_request_and_reads_it_back(api_client_for, requester, model):
    api = api_client_for(requester)
    response = api.post(
        "/api/v1/promotion-requests",
        {"model": "digits", "version": 2, "alias": "production", "justification": "Better F1"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    request = PromotionRequest.objects.get()
    assert body == {
        **body,
        "id": request.pk,
        "model": "digits",
        "version": 2,
        "label_kind": "alias",
        "label": "production",
        "status": "pending",
        "requester": "rita-requester",
        "previous_version": None,
        "approvals": 0,
        "forced": False,
        "reviews": [],
    }
    assert api.get(f"/api/v1/promotion-requests/{request.pk}").json() == body


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "digits", "version": 2, "justification": "x"},
         400, "alias: give either an alias or a stage"),
        ({"model": "digits", "version": 2, "alias": "production", "stage": "Production",
          "justification": "x"}, 400, "alias: give either an alias or a stage"),
        ({"model": "digits", "version": "two", "alias": "production", "justification": "x"},
         400, "version: A valid integer is required."),
        ({"model": "digits", "version": 9, "alias": "production", "justification": "x"},
         404, "version: registered model 'digits' has no version 9"),
        ({"model": "nope", "version": 1, "alias": "production", "justification": "x"},
         404, "model: registered model 'nope' does not exist"),
        ({"model": "digits", "version": 2, "alias": "staging", "justification": "x"},
         400, "alias: alias 'staging' of registered model 'digits' is not protected: move it directly"),
        ({"model": "digits", "version": 2, "alias": "production", "justification": " "},
         400, "justification: say why this version should be promoted"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_naming_the_field(api_client_for, requester, model, body, status, message):
    response = api_client_for(requester).post("/api/v1/promotion-requests", body, format="json")
    assert (response.status_code, error(response)["message"]) == (status, message)
    assert not PromotionRequest.objects.exists()


def test_the_requester_cannot_approve_their_own_request_over_the_api(api_client_for, requester, pending):
    assign_role(user=requester, role=Role.REVIEWER)  # even with the role to review others'
    response = api_client_for(requester).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert error(response) == {
        "error_code": "PERMISSION_DENIED",
        "message": f"request: request #{pending.pk} was opened by rita-requester, "
        "who cannot review their own request",
        "field": "request",
    }
    assert not ModelAlias.objects.exists()


def test_the_source_runs_author_cannot_approve_over_the_api(api_client_for, contributor, pending):
    assign_role(user=contributor, role=Role.REVIEWER)
    response = api_client_for(contributor).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert error(response)["message"] == (
        f"request: carl-contributor created run {pending.version.run.uuid}, the source of version 2, "
        "and cannot review its promotion"
    )


def test_two_reviewers_approve_and_the_alias_moves(api_client_for, admin, reviewer, second_reviewer, pending):
    put = api_client_for(admin).put(
        url("models/{name}/policy", name="digits"), {"required_approvals": 2}, format="json"
    )
    assert put.status_code == 200

    first = api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews",
        {"decision": "approve", "comment": "ok"},
        format="json",
    )
    assert first.status_code == 201
    assert (first.json()["request"]["status"], first.json()["request"]["approvals"]) == ("pending", 1)
    second = api_client_for(second_reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", {"decision": "approve"}, format="json"
    )
    assert second.status_code == 201
    assert second.json()["review"]["reviewer"] == "rhea-reviewer"
    assert (second.json()["request"]["status"], second.json()["request"]["approvals"]) == ("approved", 2)
    alias = api_client_for(reviewer).get(
        url("models/{name}/aliases/{alias}", name="digits", alias="production")
    )
    assert alias.json()["version"] == 2


def test_a_rejection_without_a_comment_is_a_400(api_client_for, reviewer, pending):
    response = api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", {"decision": "reject"}, format="json"
    )
    assert (response.status_code, error(response)["message"]) == (
        400,
        "comment: a rejection needs a comment saying why",
    )
    bad = api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", {"decision": "maybe"}, format="json"
    )
    assert error(bad)["message"] == 'decision: "maybe" is not a valid choice.'


def test_the_requester_withdraws_and_a_second_withdraw_is_a_409(api_client_for, requester, reviewer, pending):
    assert (
        api_client_for(reviewer).post(f"/api/v1/promotion-requests/{pending.pk}/withdraw").status_code == 403
    )
    api = api_client_for(requester)
    assert api.post(f"/api/v1/promotion-requests/{pending.pk}/withdraw").json()["status"] == "withdrawn"
    again = api.post(f"/api/v1/promotion-requests/{pending.pk}/withdraw")
    assert (again.status_code, error(again)["message"]) == (
        409,
        f"request: request #{pending.pk} is already withdrawn",
    )
    assert api.get("/api/v1/promotion-requests/999").status_code == 404


def _ask_for_production_stage(requester, model, *, versions):
    for number in versions:
        request_promotion(
            actor=requester, version=model.versions.get(version=number), label=Label.stage("Production"),
            justification="stage",
        )  # fmt: skip


def test_requests_are_listed_and_filtered_in_a_fixed_number_of_queries(
    api_client_for, viewer, requester, model, pending, django_assert_max_num_queries
):
    _ask_for_production_stage(requester, model, versions=(1, 3))
    api = api_client_for(viewer)
    with django_assert_max_num_queries(6):
        every = api.get("/api/v1/promotion-requests").json()["requests"]
    assert [(r["version"], r["label"]) for r in every] == [
        (3, "Production"),
        (1, "Production"),
        (2, "production"),
    ]
    filtered = api.get("/api/v1/promotion-requests", {"model": "digits", "version": 2, "status": "pending"})
    assert [r["id"] for r in filtered.json()["requests"]] == [pending.pk]
    bad = api.get("/api/v1/promotion-requests", {"version": 2})
    assert error(bad)["message"] == "version: filtering by version needs a model"
    assert error(api.get("/api/v1/promotion-requests", {"status": "open"}))["field"] == "status"


def test_requests_page_newest_first_with_a_token_and_filter_by_requester(
    api_client_for, viewer, requester, admin, model, pending
):
    _ask_for_production_stage(requester, model, versions=(1, 3))
    forced = force_move(
        actor=admin, model=model, label=Label.alias("production"), version=model.versions.get(version=1),
        reason="incident",
    )  # fmt: skip
    api = api_client_for(viewer)
    seen, token = [], None
    while True:
        body = api.get("/api/v1/promotion-requests", {"limit": 2, **({"page_token": token} if token else {})})
        seen += [r["id"] for r in body.json()["requests"]]
        token = body.json()["next_page_token"]
        if token is None:
            break
    every = api.get("/api/v1/promotion-requests").json()
    assert seen == [r["id"] for r in every["requests"]] and len(seen) == 4
    assert every["next_page_token"] is None
    mine = api.get("/api/v1/promotion-requests", {"requester": admin.username}).json()["requests"]
    assert [r["id"] for r in mine] == [forced.pk]
    for made_up in ("bm9wZQ", encode_cursor(["0001-01-01T00:00:00+01:00", 1]), encode_cursor(["x", 1])):
        assert error(api.get("/api/v1/promotion-requests", {"page_token": made_up}))["field"] == "page_token"


# Policies -------------------------------------------------------------------------------------


def test_the_policy_is_read_by_anyone_and_set_by_admins_only(
    api_client_for, viewer, contributor, admin, model
):
    policy_url = url("models/{name}/policy", name="digits")
    assert api_client_for(viewer).get(policy_url).json() == {
        "protected_aliases": ["production"],
        "required_approvals": 1,
        "review_role": "reviewer",
        "key_metrics": [],
        "is_default": True,
    }
    refused = api_client_for(contributor).put(policy_url, {"required_approvals": 2}, format="json")
    assert (refused.status_code, error(refused)["message"]) == (
        403,
        "Changing a promotion policy needs the admin role.",
    )
    body = {"protected_aliases": ["production", "canary"], "key_metrics": [{"key": "val_f1", "goal": "max"}]}
    changed = api_client_for(admin).put(policy_url, body, format="json")
    assert changed.json() == {**body, "required_approvals": 1, "review_role": "reviewer", "is_default": False}
    bad = api_client_for(admin).put(policy_url, {"key_metrics": [{"key": "f1", "goal": "up"}]}, format="json")
    assert (bad.status_code, error(bad)["field"]) == (400, "key_metrics[0].goal")


# Protected labels on the direct endpoints ------------------------------------------------------


def test_a_protected_alias_cannot_be_set_directly(api_client_for, contributor, model):
    response = api_client_for(contributor).put(
        url("models/{name}/aliases/{alias}", name="digits", alias="production"), {"version": 1}, format="json"
    )
    assert response.status_code == 403
    assert error(response) == {
        "error_code": "PERMISSION_DENIED",
        "message": f"alias: {PROTECTED}",
        "field": "alias",
    }


def test_the_production_stage_cannot_be_set_directly(api_client_for, contributor, model):
    response = api_client_for(contributor).post(
        url("models/{name}/versions/{v}/stage", name="digits", v=1), {"stage": "Production"}, format="json"
    )
    assert response.status_code == 403
    message = PROTECTED.replace("'production' is a protected alias", "'Production' is a protected stage")
    assert error(response)["message"] == f"stage: {message}"


def test_deleting_what_holds_a_protected_alias_is_a_409_naming_it(api_client_for, admin, contributor, model):
    holder = model.versions.get(version=1)
    force_move(actor=admin, model=model, label=Label.alias("production"), version=holder, reason="bootstrap")
    api = api_client_for(contributor)
    version = api.delete(url("models/{name}/versions/{v}", name="digits", v=1))
    assert (version.status_code, error(version)["message"]) == (
        409,
        "version: version 1 of registered model 'digits' cannot be deleted: "
        "the protected alias 'production' points at version 1",
    )
    whole = api.delete(url("models/{name}", name="digits"))
    assert (whole.status_code, error(whole)["error_code"]) == (409, "RESOURCE_CONFLICT")
    assert "the protected alias 'production' points at version 1" in error(whole)["message"]


# Break-glass, lineage and holders --------------------------------------------------------------


def test_an_admin_forces_a_move_with_a_reason(api_client_for, admin, reviewer, model):
    forced_url = url("models/{name}/forced-moves", name="digits")
    refused = api_client_for(reviewer).post(
        forced_url, {"alias": "production", "version": 3, "reason": "x"}, format="json"
    )
    assert refused.status_code == 403
    missing = api_client_for(admin).post(forced_url, {"alias": "production", "version": 3}, format="json")
    assert error(missing)["message"] == "reason: This field is required."
    forced = api_client_for(admin).post(
        forced_url, {"alias": "production", "version": 3, "reason": "incident 7"}, format="json"
    )
    assert forced.status_code == 201
    assert (forced.json()["forced"], forced.json()["forced_reason"]) == (True, "incident 7")
    holders = api_client_for(reviewer).get(
        url("models/{name}/holders", name="digits"), {"at": "2999-01-01T00:00:00Z"}
    )
    assert [(h["name"], h["version"], h["forced"]) for h in holders.json()["holders"]] == [
        ("production", 3, True)
    ]


def test_holders_at_needs_a_valid_moment(api_client_for, viewer, model):
    response = api_client_for(viewer).get(url("models/{name}/holders", name="digits"), {"at": "yesterday"})
    assert response.status_code == 400
    assert error(response)["field"] == "at"
    before = api_client_for(viewer).get(
        url("models/{name}/holders", name="digits"), {"at": "2000-01-01T00:00:00Z"}
    )
    assert before.json()["holders"] == []


def test_lineage_of_a_version(api_client_for, viewer, reviewer, pending, django_assert_max_num_queries):
    api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews",
        {"decision": "approve", "comment": "good"},
        format="json",
    )
    api = api_client_for(viewer)
    with django_assert_max_num_queries(12):
        body = api.get(url("models/{name}/versions/{v}/lineage", name="digits", v=2)).json()
    assert (body["run_id"], body["registered_by"], body["run_user"]) == (
        pending.version.run.uuid,
        "carl-contributor",
        "carl-contributor",
    )
    assert [(r["id"], r["status"], [v["comment"] for v in r["reviews"]]) for r in body["requests"]] == [
        (pending.pk, "approved", ["good"])
    ]
    assert [(h["name"], h["request"]) for h in body["holdings"]] == [("production", pending.pk)]


def test_the_schema_lists_the_promotion_endpoints_with_their_errors(api_client_for, viewer):
    schema = api_client_for(viewer).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    reviews = schema["paths"]["/api/v1/promotion-requests/{request_id}/reviews"]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(reviews["responses"])
    for path in (
        "/api/v1/promotion-requests",
        "/api/v1/models/{name}/policy",
        "/api/v1/models/{name}/holders",
        "/api/v1/models/{name}/versions/{version}/lineage",
        "/api/v1/models/{name}/forced-moves",
    ):
        assert path in schema["paths"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"decision": "approve", "comment": "x" * 5001},
            "comment: Ensure this field has no more than 5000 characters.",
        ),
        ({"decision": "approve", "comment": "nul\x00"}, "comment: Null characters are not allowed."),
        ({"decision": ["approve"]}, "decision: \"['approve']\" is not a valid choice."),
        ({}, "decision: This field is required."),
    ],
)
def test_bad_reviews_are_refused_and_nothing_is_stored(api_client_for, reviewer, pending, body, message):
    response = api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews", body, format="json"
    )
    assert (response.status_code, error(response)["message"]) == (400, message)
    assert not pending.reviews.exists()


def test_a_malformed_body_is_a_400_naming_the_body(api_client_for, reviewer, pending):
    response = api_client_for(reviewer).post(
        f"/api/v1/promotion-requests/{pending.pk}/reviews",
        b'{"decision": "appr',
        content_type="application/json",
    )
    assert (response.status_code, error(response)["field"]) == (400, "body")


def test_a_deleted_version_cannot_be_requested(api_client_for, contributor, requester, model):
    api_client_for(contributor).delete(url("models/{name}/versions/{v}", name="digits", v=3))
    response = api_client_for(requester).post(
        "/api/v1/promotion-requests",
        {"model": "digits", "version": 3, "alias": "production", "justification": "x"},
        format="json",
    )
    assert (response.status_code, error(response)["message"]) == (
        404,
        "version: registered model 'digits' has no version 3",
    )


def test_an_admin_restores_a_deleted_model_and_version_over_the_api(
    api_client_for, contributor, admin, model
):
    api = api_client_for(contributor)
    assert api.delete(url("models/{name}/versions/{v}", name="digits", v=3)).status_code == 204
    assert api.delete(url("models/{name}", name="digits")).status_code == 204
    assert api.get(url("models/{name}", name="digits")).status_code == 404

    refused = api.post(url("models/{name}/restore", name="digits"))
    assert (refused.status_code, error(refused)["message"]) == (
        403,
        "Restoring a registered model needs the admin role.",
    )
    restored = api_client_for(admin).post(url("models/{name}/restore", name="digits"))
    assert restored.status_code == 200
    assert [
        v["version"] for v in api.get(url("models/{name}/versions", name="digits")).json()["versions"]
    ] == [2, 1]

    version = api_client_for(admin).post(url("models/{name}/versions/{v}/restore", name="digits", v=3))
    assert (version.status_code, version.json()["version"]) == (200, 3)
    again = api_client_for(admin).post(url("models/{name}/versions/{v}/restore", name="digits", v=3))
    assert (again.status_code, error(again)["message"]) == (
        404,
        "version: registered model 'digits' has no deleted version 3",
    )
    missing = api_client_for(admin).post(url("models/{name}/restore", name="digits"))
    assert error(missing)["message"] == "name: there is no deleted registered model 'digits'"
