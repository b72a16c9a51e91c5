"""experiments/* as the mlflow client calls them: exact JSON, search with filters and pages,
audit with the authenticated actor, refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEvent
from tracker.models import Experiment, ExperimentTag

pytestmark = pytest.mark.django_db

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def create(wire, name: str, **fields) -> str:
    return wire.ok("POST", "experiments/create", {"name": name, **fields})["experiment_id"]


def search(wire, method: str = "POST", **message) -> dict:
    return wire.ok(method, "experiments/search", message)


def names(response: dict) -> list[str]:
    return [e["name"] for e in response.get("experiments", [])]


def test_get_by_name_returns_the_experiment_message_exactly(wire):
    experiment_id = create(wire, "digits", tags=[{"key": "team", "value": "vision"}])
    stored = Experiment.objects.get(name="digits")
    assert wire.ok("GET", "experiments/get-by-name", {"experiment_name": "digits"}) == {
        "experiment": {
            "experiment_id": str(stored.pk),
            "name": "digits",
            "artifact_location": f"mlflow-artifacts:/{stored.pk}",
            "lifecycle_stage": "active",
            "creation_time": ms(stored.created_at),
            "last_update_time": ms(stored.updated_at),
            "tags": [{"key": "team", "value": "vision"}],
        }
    }
    assert experiment_id == str(stored.pk)


def test_get_by_name_of_a_missing_experiment_is_resource_does_not_exist(wire):
    message = wire.error(
        "GET",
        "experiments/get-by-name",
        {"experiment_name": "nope"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert "'nope'" in message


def test_get_by_name_with_a_nul_character_is_refused_not_crashed(wire):
    wire.error(
        "GET",
        "experiments/get-by-name",
        {"experiment_name": "a\x00b"},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )


def test_the_default_experiment_zero_exists(wire):
    shown = wire.ok("GET", "experiments/get", {"experiment_id": "0"})["experiment"]
    assert (shown["experiment_id"], shown["name"], shown["artifact_location"]) == (
        "0",
        "Default",
        "mlflow-artifacts:/0",
    )
    assert "tags" not in shown  # unset fields are left out


def test_create_keeps_an_own_artifact_location_and_records_the_actor(wire, contributor):
    experiment_id = create(wire, "s3-backed", artifact_location="s3://bucket/exp")
    shown = wire.ok("GET", "experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert shown["artifact_location"] == "s3://bucket/exp"
    event = AuditEvent.objects.get(action="experiment.created")
    assert (event.actor, event.object_id) == (contributor, experiment_id)


def test_a_duplicate_name_is_resource_already_exists(wire):
    create(wire, "digits")
    message = wire.error(
        "POST", "experiments/create", {"name": "digits"}, status=400, code="RESOURCE_ALREADY_EXISTS"
    )
    assert "digits" in message
    assert Experiment.objects.filter(name="digits").count() == 1


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"name": "ok", "tags": [{"value": "v"}]}, "tags[0].key"),
        ({"name": "ok", "tags": [{"key": "k", "value": 3}]}, "tags[0].value"),
        ({"name": "ok", "tags": "team=vision"}, "tags"),
        ({"name": "ok", "tags": [{"key": "k", "value": "v" * 20001}]}, "tags[0].value"),
    ],
)
def test_bad_create_messages_are_400_naming_the_field(wire, message, field):
    text = wire.error("POST", "experiments/create", message, status=400, code="INVALID_PARAMETER_VALUE")
    assert field in text
    assert not Experiment.objects.filter(name="ok").exists()


def test_malformed_json_is_400(wire):
    response = wire.client.post(
        "/api/2.0/mlflow/experiments/create",
        "{not json",
        content_type="application/json",
        headers=wire.headers,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_viewer_cannot_create_rename_tag_or_delete_and_nothing_changes(wire, viewer_wire, viewer):
    experiment_id = create(wire, "digits")
    events = AuditEvent.objects.count()
    for endpoint, message in [
        ("experiments/create", {"name": "mine"}),
        ("experiments/update", {"experiment_id": experiment_id, "new_name": "renamed"}),
        ("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": "v"}),
        ("experiments/delete", {"experiment_id": experiment_id}),
    ]:
        viewer_wire.error("POST", endpoint, message, status=403, code="PERMISSION_DENIED")
    experiment = Experiment.objects.get(pk=experiment_id)
    assert (experiment.name, experiment.lifecycle) == ("digits", "active")
    assert not ExperimentTag.objects.exists()
    assert not Experiment.objects.filter(name="mine").exists()
    assert AuditEvent.objects.count() == events
    # Reading is what a viewer may do.
    assert viewer_wire.ok("GET", "experiments/get", {"experiment_id": experiment_id})["experiment"][
        "name"
    ] == ("digits")


def test_update_renames_and_a_taken_name_is_refused(wire, contributor):
    first, second = create(wire, "first"), create(wire, "second")
    assert wire.ok("POST", "experiments/update", {"experiment_id": first, "new_name": "renamed"}) == {}
    assert Experiment.objects.get(pk=first).name == "renamed"
    event = AuditEvent.objects.get(action="experiment.renamed")
    assert (event.actor, event.before, event.after) == (contributor, {"name": "first"}, {"name": "renamed"})
    wire.error(
        "POST",
        "experiments/update",
        {"experiment_id": second, "new_name": "renamed"},
        status=400,
        code="RESOURCE_ALREADY_EXISTS",
    )
    assert Experiment.objects.get(pk=second).name == "second"


def test_delete_and_restore_change_the_lifecycle_stage(wire):
    experiment_id = create(wire, "digits")
    assert wire.ok("POST", "experiments/delete", {"experiment_id": experiment_id}) == {}
    shown = wire.ok("GET", "experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert shown["lifecycle_stage"] == "deleted"
    assert wire.ok("POST", "experiments/restore", {"experiment_id": experiment_id}) == {}
    assert Experiment.objects.get(pk=experiment_id).lifecycle == "active"
    assert [
        e.action
        for e in AuditEvent.objects.filter(
            object_type="tracker.experiment", object_id=experiment_id
        ).order_by("sequence")
    ] == [
        "experiment.created",
        "experiment.deleted",
        "experiment.restored",
    ]


def test_the_default_experiment_cannot_be_deleted(wire):
    wire.error(
        "POST", "experiments/delete", {"experiment_id": "0"}, status=400, code="INVALID_PARAMETER_VALUE"
    )


@pytest.mark.parametrize(
    ("message", "status", "code", "field"),
    [
        ({"experiment_id": 5}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ({"experiment_id": "abc"}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ({}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ({"experiment_id": "987654"}, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=987654 exists"),
        (
            {"experiment_id": "99999999999999999999999"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "No Experiment with id=99999999999999999999999 exists",
        ),
    ],
)
def test_bad_experiment_ids_name_the_field(wire, message, status, code, field):
    text = wire.error("POST", "experiments/delete", message, status=status, code=code)
    assert field in text


def test_set_and_delete_an_experiment_tag(wire, contributor):
    experiment_id = create(wire, "digits")
    tag = {"experiment_id": experiment_id, "key": "team", "value": "vision"}
    assert wire.ok("POST", "experiments/set-experiment-tag", tag) == {}
    wire.ok("POST", "experiments/set-experiment-tag", {**tag, "value": "nlp"})
    shown = wire.ok("GET", "experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert shown["tags"] == [{"key": "team", "value": "nlp"}]
    message = {"experiment_id": experiment_id, "key": "team"}
    assert wire.ok("POST", "experiments/delete-experiment-tag", message) == {}
    assert not ExperimentTag.objects.exists()
    event = AuditEvent.objects.get(action="experiment.tag_deleted")
    assert (event.actor, event.object_id, event.before) == (contributor, experiment_id, {"team": "nlp"})


def test_deleting_a_missing_experiment_tag_is_404_naming_the_key(wire):
    experiment_id = create(wire, "digits")
    message = wire.error(
        "POST",
        "experiments/delete-experiment-tag",
        {"experiment_id": experiment_id, "key": "ghost"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert "ghost" in message


def test_a_viewer_cannot_delete_an_experiment_tag(wire, viewer_wire):
    experiment_id = create(wire, "digits", tags=[{"key": "team", "value": "vision"}])
    viewer_wire.error(
        "POST",
        "experiments/delete-experiment-tag",
        {"experiment_id": experiment_id, "key": "team"},
        status=403,
        code="PERMISSION_DENIED",
    )
    assert ExperimentTag.objects.filter(key="team").exists()


def test_an_experiment_tag_value_over_mlflows_limit_is_refused(wire):
    experiment_id = create(wire, "digits")
    text = wire.error(
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": experiment_id, "key": "note", "value": "x" * 20001},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert "value" in text


# search -----------------------------------------------------------------------------------


@pytest.fixture
def three(wire):
    """Experiments created in order a, b, c (plus Default), b tagged team=vision, c deleted."""
    ids = {name: create(wire, name) for name in ("alpha", "beta", "gamma")}
    wire.ok(
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": ids["beta"], "key": "team", "value": "vision"},
    )
    wire.ok("POST", "experiments/delete", {"experiment_id": ids["gamma"]})
    return ids


def test_search_lists_active_experiments_newest_first_by_default(wire, three):
    assert names(search(wire)) == ["beta", "alpha", "Default"]


def test_search_by_get_takes_query_parameters_with_repeated_keys(wire, three):
    shown = search(wire, "GET", order_by=["name DESC"], view_type="ALL", filter="name != 'Default'")
    assert names(shown) == ["gamma", "beta", "alpha"]


def test_search_view_types(wire, three):
    assert names(search(wire, view_type="DELETED_ONLY")) == ["gamma"]
    assert sorted(names(search(wire, view_type="ALL"))) == ["Default", "alpha", "beta", "gamma"]
    wire.error(
        "POST", "experiments/search", {"view_type": "SOME"}, status=400, code="INVALID_PARAMETER_VALUE"
    )


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'alpha'", ["alpha"]),
        ("name LIKE '%a' AND name != 'beta'", ["alpha"]),
        ("name ILIKE 'BET%'", ["beta"]),
        ("tags.team = 'vision'", ["beta"]),
        ("tag.`team` LIKE 'vis%'", ["beta"]),
        ("tags.team IS NULL", ["alpha", "Default"]),
        ("tags.team IS NOT NULL", ["beta"]),
        ("attribute.name = 'beta' OR name = 'alpha'", ["alpha", "beta"]),
        ("experiment_id = 'abc'", []),
    ],
)
def test_search_filters_on_names_and_tags(wire, three, filter_string, expected):
    assert sorted(names(search(wire, filter=filter_string))) == sorted(expected)


def test_search_filters_on_ids_and_times(wire, three):
    alpha = Experiment.objects.get(name="alpha")
    beta = Experiment.objects.get(name="beta")
    ids = f"('{alpha.pk}', '{beta.pk}')"
    assert sorted(names(search(wire, filter=f"experiment_id IN {ids}"))) == ["alpha", "beta"]
    assert names(search(wire, filter=f"experiment_id = '{beta.pk}'")) == ["beta"]
    assert sorted(names(search(wire, filter=f"experiment_id NOT IN {ids}"))) == ["Default"]
    created = ms(alpha.created_at)
    assert names(search(wire, filter=f"creation_time = {created}")) == ["alpha"]
    assert "alpha" not in names(search(wire, filter=f"creation_time > {created}"))
    assert "beta" in names(search(wire, filter=f"last_update_time >= {ms(beta.updated_at)}"))


def test_search_pages_with_tokens_in_the_requested_order(wire, three):
    for index in range(5):
        create(wire, f"extra-{index}")
    seen, token = [], None
    while True:
        page = search(wire, max_results=2, order_by=["name ASC"], **({"page_token": token} if token else {}))
        assert len(page["experiments"]) <= 2
        seen.extend(names(page))
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == sorted(["Default", "alpha", "beta", *(f"extra-{i}" for i in range(5))])


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"max_results": 50001}, "max_results"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": "many"}, "max_results"),
        ({"filter": "name = 'a' AND"}, "position 14"),
        ({"filter": "metrics.x > 1"}, "Invalid entity type 'metrics'"),
        ({"filter": "owner = 'me'"}, "Invalid attribute key 'owner'"),
        ({"filter": "creation_time > 'yesterday'"}, "numeric"),
        ({"order_by": ["tags.team"]}, "Cannot order by"),
        ({"order_by": ["name", "name DESC"]}, "Duplicate"),
        ({"page_token": "garbage!"}, "page_token"),
    ],
)
def test_bad_searches_are_400_naming_the_problem(wire, three, message, words):
    text = wire.error("POST", "experiments/search", message, status=400, code="INVALID_PARAMETER_VALUE")
    assert words in text


def test_a_page_token_from_another_order_is_refused(wire, three):
    token = search(wire, max_results=1, order_by=["name"])["next_page_token"]
    wire.error(
        "POST",
        "experiments/search",
        {"max_results": 1, "order_by": ["creation_time", "last_update_time"], "page_token": token},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )


def test_search_reads_every_experiments_tags_in_a_fixed_number_of_queries(
    wire, three, django_assert_max_num_queries
):
    for index in range(20):
        create(wire, f"tagged-{index}", tags=[{"key": "n", "value": str(index)}])
    with django_assert_max_num_queries(4):  # token, page, tags (+ role lookup)
        shown = search(wire, filter="tags.n IS NOT NULL")
    assert len(shown["experiments"]) == 20
    assert all(e["tags"] == [{"key": "n", "value": e["name"].split("-")[1]}] for e in shown["experiments"])


def test_an_unknown_name_and_a_taken_name_get_mlflows_texts(wire):
    create(wire, "taken")
    text = wire.error(
        "GET",
        "experiments/get-by-name",
        {"experiment_name": "absent"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert text == "Could not find experiment with name 'absent'"
    text = wire.error(
        "POST", "experiments/create", {"name": "taken"}, status=400, code="RESOURCE_ALREADY_EXISTS"
    )
    assert text == "Experiment(name=taken) already exists."
    other = create(wire, "other")
    text = wire.error(
        "POST",
        "experiments/update",
        {"experiment_id": other, "new_name": "taken"},
        status=400,
        code="RESOURCE_ALREADY_EXISTS",
    )
    assert text == "Experiment(name=taken) already exists."


def test_a_name_is_kept_as_given_so_the_client_finds_it_again(wire):
    """mlflow.set_experiment("x ") creates "x " and looks it up by "x " on every later call."""
    experiment_id = create(wire, " spaced name ")
    found = wire.ok("GET", "experiments/get-by-name", {"experiment_name": " spaced name "})["experiment"]
    assert (found["experiment_id"], found["name"]) == (experiment_id, " spaced name ")
    wire.error("GET", "experiments/get-by-name", {"experiment_name": "spaced name"}, status=404,
               code="RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    wire.error("POST", "experiments/create", {"name": "   "}, status=400, code="INVALID_PARAMETER_VALUE")
