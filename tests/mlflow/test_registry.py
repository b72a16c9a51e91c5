"""registered-models/* as the mlflow client calls them: exact JSON, aliases, stages, search,
audit with the authenticated actor, refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from registry.models import AliasHistory, Label, ModelAlias, ModelVersion, RegisteredModel, RegisteredModelTag
from registry.services import force_move, rename_registered_model, set_promotion_policy
from registry.services.catalog import ProtectedLabelHeld
from tracker.services import start_run

pytestmark = pytest.mark.django_db

PROMPT_CLAUSE = "tag.`mlflow.prompt.is_prompt` != 'true'"  # what search_registered_models appends


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.fixture
def run(contributor, experiment):
    return start_run(actor=contributor, experiment=experiment, name="trained")


def register(wire, name: str = "digits", **fields) -> dict:
    return wire.ok("POST", "registered-models/create", {"name": name, **fields})["registered_model"]


def add_version(wire, run, name: str = "digits") -> dict:
    message = {"name": name, "source": f"runs:/{run.uuid}/model", "run_id": run.uuid}
    return wire.ok("POST", "model-versions/create", message)["model_version"]


def actions_by(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor=user).order_by("sequence").values_list("action", flat=True))


def test_create_returns_the_model_with_its_tags_and_records_the_actor(wire, contributor):
    shown = register(wire, description="reads digits", tags=[{"key": "team", "value": "vision"}])
    model = RegisteredModel.objects.get()
    assert shown == {
        "name": "digits",
        "creation_timestamp": ms(model.created_at),
        "last_updated_timestamp": ms(model.updated_at),
        "description": "reads digits",
        "tags": [{"key": "team", "value": "vision"}],
    }
    event = AuditEvent.objects.get(action="registered_model.created")
    assert (event.actor, event.object_id) == (contributor, f"id:{model.pk}")
    assert event.after == {
        "model": "digits",
        "name": "digits",
        "description": "reads digits",
        "tags": {"team": "vision"},
    }


def test_a_bare_model_has_only_its_name_and_timestamps(wire):
    assert set(register(wire)) == {"name", "creation_timestamp", "last_updated_timestamp"}


def test_a_taken_name_is_resource_already_exists(wire):
    register(wire)
    message = wire.error(
        "POST", "registered-models/create", {"name": "digits"}, status=400, code="RESOURCE_ALREADY_EXISTS"
    )
    assert message == "Registered Model (name=digits) already exists."


def test_get_shows_the_latest_version_per_stage_and_the_aliases(wire, run):
    register(wire)
    for _ in range(3):
        add_version(wire, run)
    wire.ok(
        "POST", "model-versions/transition-stage", {"name": "digits", "version": "1", "stage": "Archived"}
    )
    wire.ok("POST", "model-versions/transition-stage", {"name": "digits", "version": "2", "stage": "staging"})
    wire.ok("POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "2"})

    shown = wire.ok("GET", "registered-models/get", {"name": "digits"})["registered_model"]

    assert shown["aliases"] == [{"alias": "champion", "version": "2"}]
    latest = [(v["version"], v["current_stage"], v.get("aliases")) for v in shown["latest_versions"]]
    assert latest == [("1", "Archived", None), ("2", "Staging", ["champion"]), ("3", "None", None)]


def test_get_of_an_unknown_model_is_resource_does_not_exist(wire):
    message = wire.error(
        "GET", "registered-models/get", {"name": "nope"}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    assert message == "Registered Model with name=nope not found"


def test_update_replaces_the_description_as_mlflow_does(wire, contributor):
    register(wire, description="old")
    shown = wire.ok("PATCH", "registered-models/update", {"name": "digits", "description": "new"})
    assert shown["registered_model"]["description"] == "new"
    cleared = wire.ok("PATCH", "registered-models/update", {"name": "digits"})["registered_model"]
    assert "description" not in cleared
    assert RegisteredModel.objects.get().description == ""
    assert actions_by(contributor)[-2:] == ["registered_model.updated", "registered_model.updated"]


def test_rename_keeps_the_versions_and_aliases(wire, run, contributor):
    register(wire)
    add_version(wire, run)
    wire.ok("POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "1"})

    shown = wire.ok("POST", "registered-models/rename", {"name": "digits", "new_name": "digits-v2"})

    assert shown["registered_model"]["name"] == "digits-v2"
    assert shown["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    version = wire.ok("GET", "model-versions/get", {"name": "digits-v2", "version": "1"})["model_version"]
    assert (version["name"], version["run_id"]) == ("digits-v2", run.uuid)
    wire.error("GET", "registered-models/get", {"name": "digits"}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    event = AuditEvent.objects.get(action="registered_model.renamed")
    assert (event.actor, event.before, event.after) == (
        contributor,
        {"name": "digits"},
        {"model": "digits-v2", "name": "digits-v2"},
    )


def test_rename_onto_a_taken_name_is_refused(wire):
    register(wire)
    register(wire, "other")
    wire.error(
        "POST",
        "registered-models/rename",
        {"name": "digits", "new_name": "other"},
        status=400,
        code="RESOURCE_ALREADY_EXISTS",
    )


def test_delete_reads_the_name_from_a_json_body(wire, run, contributor):
    register(wire)
    add_version(wire, run)
    assert wire.ok("DELETE", "registered-models/delete", {"name": "digits"}) == {}
    assert not RegisteredModel.objects.exists()
    assert not ModelVersion.objects.exists()
    event = AuditEvent.objects.get(action="registered_model.deleted")
    assert event.actor == contributor
    assert [v["version"] for v in event.before["versions"]] == [1]


def test_tags_are_set_replaced_and_deleted_with_a_json_body(wire, contributor):
    register(wire)
    wire.ok("POST", "registered-models/set-tag", {"name": "digits", "key": "team", "value": "vision"})
    wire.ok("POST", "registered-models/set-tag", {"name": "digits", "key": "team", "value": "nlp"})
    tags = wire.ok("GET", "registered-models/get", {"name": "digits"})["registered_model"]["tags"]
    assert tags == [{"key": "team", "value": "nlp"}]

    assert wire.ok("DELETE", "registered-models/delete-tag", {"name": "digits", "key": "team"}) == {}
    assert not RegisteredModelTag.objects.exists()
    assert actions_by(contributor)[-3:] == [
        "registered_model.tag_set",
        "registered_model.tag_set",
        "registered_model.tag_deleted",
    ]
    # As in MLflow, deleting a tag that is not there succeeds and changes nothing.
    events = AuditEvent.objects.count()
    assert wire.ok("DELETE", "registered-models/delete-tag", {"name": "digits", "key": "team"}) == {}
    assert AuditEvent.objects.count() == events
    wire.error(
        "DELETE",
        "registered-models/delete-tag",
        {"name": "nope", "key": "team"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_an_alias_moves_with_history_and_audit_naming_the_caller(
    wire, run, contributor, mlflow_wire_for, reviewer
):
    register(wire)
    add_version(wire, run)
    add_version(wire, run)
    assert (
        wire.ok("POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "1"})
        == {}
    )
    mlflow_wire_for(reviewer).ok(
        "POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "2"}
    )

    held = wire.ok("GET", "registered-models/alias", {"name": "digits", "alias": "champion"})["model_version"]
    assert (held["version"], held["aliases"]) == ("2", ["champion"])
    first, second = AliasHistory.objects.order_by("assigned_at", "pk")
    assert (first.version.version, first.assigned_by, first.removed_by) == (1, contributor, reviewer)
    assert (second.version.version, second.assigned_by, second.removed_at) == (2, reviewer, None)
    moves = AuditEvent.objects.filter(action="model_alias.set").order_by("sequence")
    assert [(e.actor, e.after["version"]) for e in moves] == [(contributor, 1), (reviewer, 2)]


def test_deleting_an_alias_reads_a_json_body_and_ends_its_history(wire, run, contributor):
    register(wire)
    add_version(wire, run)
    wire.ok("POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "1"})
    assert wire.ok("DELETE", "registered-models/alias", {"name": "digits", "alias": "champion"}) == {}
    assert not ModelAlias.objects.exists()
    history = AliasHistory.objects.get()
    assert history.removed_by == contributor and history.removed_at is not None
    assert actions_by(contributor)[-1] == "model_alias.deleted"
    message = wire.error(
        "GET",
        "registered-models/alias",
        {"name": "digits", "alias": "champion"},
        status=400,  # MLflow 3.17.2's sqlalchemy_store says so too
        code="INVALID_PARAMETER_VALUE",
    )
    assert message == "Registered model alias champion not found."


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "alias: 'latest' is reserved ('latest' and 'v<number>' name versions)"),
        ("v1", "alias: 'v1' is reserved ('latest' and 'v<number>' name versions)"),
        ("prod env!", "alias: 'prod env!' may only contain letters, digits, '_' and '-'"),
        ("production\n", "alias: 'production\\n' may only contain letters, digits, '_' and '-'"),
        ("latest\n", "alias: 'latest\\n' may only contain letters, digits, '_' and '-'"),
    ],
)
def test_invalid_aliases_are_refused_and_change_nothing(wire, run, alias, message):
    register(wire)
    add_version(wire, run)
    events = AuditEvent.objects.count()
    got = wire.error(
        "POST",
        "registered-models/alias",
        {"name": "digits", "alias": alias, "version": "1"},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert got == message
    assert not ModelAlias.objects.exists()
    assert AuditEvent.objects.count() == events


def test_an_alias_on_a_missing_version_is_resource_does_not_exist(wire):
    register(wire)
    message = wire.error(
        "POST",
        "registered-models/alias",
        {"name": "digits", "alias": "champion", "version": "7"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert message == "Model Version (name=digits, version=7) not found"


def test_misses_and_clashes_are_in_mlflows_words(wire, run):
    """Scripts match on MLflow's texts: an unknown version or alias, a rename onto a taken name."""
    register(wire)
    register(wire, "other")
    add_version(wire, run)
    missing, taken = (404, "RESOURCE_DOES_NOT_EXIST"), (400, "RESOURCE_ALREADY_EXISTS")
    unset = (400, "INVALID_PARAMETER_VALUE")
    cases = [
        ("GET", "model-versions/get", {"name": "digits", "version": "9"}, missing,
         "Model Version (name=digits, version=9) not found"),
        ("GET", "model-versions/get", {"name": "nope", "version": "1"}, missing,
         "Registered Model with name=nope not found"),
        # MLflow answers an unset alias with 400 INVALID_PARAMETER_VALUE; `models:/m@alias` loaders match it.
        ("GET", "registered-models/alias", {"name": "digits", "alias": "best"}, unset,
         "Registered model alias best not found."),
        ("GET", "registered-models/alias", {"name": "nope", "alias": "best"}, missing,
         "Registered Model with name=nope not found"),
        ("POST", "registered-models/rename", {"name": "digits", "new_name": "other"}, taken,
         "Registered Model (name=other) already exists."),
    ]  # fmt: skip
    for method, endpoint, body, (status, code), expected in cases:
        assert wire.error(method, endpoint, body, status=status, code=code) == expected, endpoint


def test_a_name_with_spaces_is_kept_as_given_so_versions_register_under_it(wire, run):
    """mlflow.register_model(uri, "churn ") creates "churn " and then registers a version under
    exactly that name."""
    assert register(wire, " churn ")["name"] == " churn "
    assert add_version(wire, run, name=" churn ")["name"] == " churn "
    assert (
        wire.ok("GET", "registered-models/get", {"name": " churn "})["registered_model"]["name"] == " churn "
    )
    wire.error("GET", "registered-models/get", {"name": "churn"}, status=404, code="RESOURCE_DOES_NOT_EXIST")


def test_get_latest_versions_by_post_and_get_filters_stages_case_insensitively(wire, run):
    register(wire)
    for _ in range(3):
        add_version(wire, run)
    wire.ok("POST", "model-versions/transition-stage", {"name": "digits", "version": "2", "stage": "Staging"})

    staging = wire.ok(
        "POST", "registered-models/get-latest-versions", {"name": "digits", "stages": ["staging"]}
    )
    assert [(v["version"], v["current_stage"]) for v in staging["model_versions"]] == [("2", "Staging")]
    every = wire.ok("GET", "registered-models/get-latest-versions", {"name": "digits"})
    assert [(v["version"], v["current_stage"]) for v in every["model_versions"]] == [
        ("2", "Staging"),
        ("3", "None"),
    ]
    assert (
        wire.ok("GET", "registered-models/get-latest-versions", {"name": "digits", "stages": "Archived"})
        == {}
    )
    message = wire.error(
        "POST",
        "registered-models/get-latest-versions",
        {"name": "digits", "stages": ["Live"]},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message == "stages[0]: 'Live' is not one of None, Staging, Production, Archived"


# Search ------------------------------------------------------------------------------------


def search(wire, **message) -> dict:
    return wire.ok("GET", "registered-models/search", message)


def names(result: dict) -> list[str]:
    return [model["name"] for model in result.get("registered_models", [])]


@pytest.fixture
def catalogue(wire):
    register(wire, "digits", tags=[{"key": "team", "value": "vision"}])
    register(wire, "Digits-large", tags=[{"key": "team", "value": "vision"}])
    register(wire, "sentiment", tags=[{"key": "team", "value": "nlp"}])
    register(wire, "greeting", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    register(wire, "not-a-prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "false"}])


def test_the_clients_prompt_clause_keeps_models_without_the_prompt_tag(wire, catalogue):
    assert names(search(wire, filter=PROMPT_CLAUSE)) == [
        "Digits-large",
        "digits",
        "not-a-prompt",
        "sentiment",
    ]
    assert names(search(wire)) == ["Digits-large", "digits", "not-a-prompt", "sentiment"]
    assert names(search(wire, filter="tags.`mlflow.prompt.is_prompt` = 'true'")) == ["greeting"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'digits'", ["digits"]),
        ("name != 'digits'", ["Digits-large", "not-a-prompt", "sentiment"]),
        ("name LIKE 'digits%'", ["digits"]),
        ("name ILIKE 'digits%'", ["Digits-large", "digits"]),
        ("name IN ('digits', 'sentiment', 'greeting')", ["digits", "sentiment"]),
        ("name NOT IN ('digits', 'sentiment')", ["Digits-large", "not-a-prompt"]),
        ("tags.team = 'vision'", ["Digits-large", "digits"]),
        ("tags.team != 'vision'", ["sentiment"]),
        ("tag.`team` LIKE 'n%'", ["sentiment"]),
        ("name ILIKE '%digits%' AND tags.team = 'vision'", ["Digits-large", "digits"]),
    ],
)
def test_filters_on_name_and_tags_with_the_prompt_clause(wire, catalogue, filter_string, expected):
    assert names(search(wire, filter=f"{filter_string} AND {PROMPT_CLAUSE}")) == expected


def test_order_by_timestamps_and_name(wire, catalogue):
    wire.ok("PATCH", "registered-models/update", {"name": "digits", "description": "touched last"})
    newest_first = names(search(wire, order_by=["last_updated_timestamp DESC"]))
    assert newest_first[0] == "digits"
    assert names(search(wire, order_by=["creation_timestamp ASC"])) == [
        "digits",
        "Digits-large",
        "sentiment",
        "not-a-prompt",
    ]
    assert names(search(wire, order_by=["name DESC"])) == [
        "sentiment",
        "not-a-prompt",
        "digits",
        "Digits-large",
    ]


def test_pages_follow_the_next_page_token(wire, catalogue):
    first = search(wire, max_results="3")
    assert names(first) == ["Digits-large", "digits", "not-a-prompt"]
    second = search(wire, max_results="3", page_token=first["next_page_token"])
    assert names(second) == ["sentiment"]
    assert "next_page_token" not in second


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        ({"filter": "name = "}, "filter", "filter: Syntax error at position 7 (line 1, column 8)"),
        ({"filter": "owner = 'x'"}, "filter", "filter: Invalid attribute key 'owner' at position 0"),
        ({"filter": "metrics.acc > 1"}, "filter", "filter: Invalid entity type 'metrics' at position 0"),
        ({"filter": "name = 3"}, "filter", "filter: Expected a quoted string value for name at position 0"),
        ({"filter": "tags.x > 'a'"}, "filter", "filter: Invalid comparator '>' for tags.x at position 0"),
        ({"order_by": ["owner"]}, "order_by", "order_by: order_by[0] 'owner': expected '<key> [ASC|DESC]'"),
        (
            {"order_by": ["name", "name DESC"]},
            "order_by",
            "order_by: order_by[1] 'name DESC': name is ordered",
        ),
        ({"max_results": "1001"}, "max_results", "max_results: max_results must be between 1 and 1000"),
        ({"max_results": "0"}, "max_results", "max_results: max_results must be between 1 and 1000"),
        (
            {"max_results": "many"},
            "max_results",
            "Invalid value \"many\" for parameter 'max_results' supplied:",
        ),
        ({"page_token": "not-a-token"}, "page_token", "page_token: Invalid page token"),
    ],
)
def test_bad_search_requests_are_400_naming_the_field(wire, message, field, text):
    got = wire.error("GET", "registered-models/search", message, status=400, code="INVALID_PARAMETER_VALUE")
    assert got.startswith(text)


def test_search_reads_a_page_in_the_same_number_of_queries_however_many_models(wire, run, catalogue):
    def queries_for_search() -> int:
        with CaptureQueriesContext(connection) as captured:
            search(wire, filter=PROMPT_CLAUSE)
        return len(captured)

    def add_models(count: int) -> None:
        for index in range(RegisteredModel.objects.count(), RegisteredModel.objects.count() + count):
            register(wire, f"extra-{index}", tags=[{"key": "k", "value": "v"}])
            add_version(wire, run, f"extra-{index}")
            add_version(wire, run, f"extra-{index}")
            wire.ok(
                "POST", "registered-models/alias", {"name": f"extra-{index}", "alias": "a", "version": "1"}
            )

    add_models(1)
    few = queries_for_search()
    add_models(6)
    assert queries_for_search() == few <= 7


# Refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "endpoint", "message"),
    [
        ("POST", "registered-models/create", {"name": "new"}),
        ("PATCH", "registered-models/update", {"name": "digits", "description": "x"}),
        ("POST", "registered-models/rename", {"name": "digits", "new_name": "x"}),
        ("DELETE", "registered-models/delete", {"name": "digits"}),
        ("POST", "registered-models/set-tag", {"name": "digits", "key": "k", "value": "v"}),
        ("DELETE", "registered-models/delete-tag", {"name": "digits", "key": "team"}),
        ("POST", "registered-models/alias", {"name": "digits", "alias": "next", "version": "1"}),
        ("DELETE", "registered-models/alias", {"name": "digits", "alias": "champion"}),
    ],
)
def test_a_viewer_may_read_but_every_write_is_permission_denied(
    wire, viewer_wire, run, method, endpoint, message
):
    register(wire, description="kept", tags=[{"key": "team", "value": "vision"}])
    add_version(wire, run)
    wire.ok("POST", "registered-models/alias", {"name": "digits", "alias": "champion", "version": "1"})
    before = wire.ok("GET", "registered-models/get", {"name": "digits"})
    events = AuditEvent.objects.count()

    viewer_wire.error(method, endpoint, message, status=403, code="PERMISSION_DENIED")

    assert viewer_wire.ok("GET", "registered-models/get", {"name": "digits"}) == before
    assert AuditEvent.objects.count() == events
    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "endpoint", "message", "text"),
    [
        (
            "POST",
            "registered-models/create",
            {},
            "Missing value for required parameter 'name'. See the API docs",
        ),
        ("POST", "registered-models/create", {"name": 5}, "Invalid value 5 for parameter 'name' supplied:"),
        ("POST", "registered-models/create", {"name": "a/b"}, "name: 'a/b' must not contain"),
        (
            "POST",
            "registered-models/create",
            {"name": "x", "tags": "t"},
            "Invalid value \"t\" for parameter 'tags' supplied:",
        ),
        (
            "POST",
            "registered-models/create",
            {"name": "x", "tags": [{"value": "v"}]},
            "Missing value for required parameter 'tags[0].key'. See the API docs",
        ),
        (
            "POST",
            "registered-models/create",
            {"name": "x", "tags": [{"key": "k", "value": 1}]},
            "Invalid value 1 for parameter 'tags[0].value' supplied:",
        ),
        (
            "POST",
            "registered-models/create",
            {"name": "x", "description": ["d"]},
            "Invalid value [\"d\"] for parameter 'description' supplied:",
        ),
        (
            "POST",
            "registered-models/create",
            {"name": "x", "tags": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]},
            "tags[1].key: 'k' is given more than once",
        ),
        ("GET", "registered-models/get", {}, "Missing value for required parameter 'name'. See the API docs"),
        ("GET", "registered-models/get", {"name": "a\x00b"}, "name: 'name' must not contain NUL characters"),
        (
            "POST",
            "registered-models/rename",
            {"name": "digits"},
            "Missing value for required parameter 'new_name'. See the API docs",
        ),
        (
            "POST",
            "registered-models/alias",
            {"name": "digits", "alias": "a", "version": "one"},
            "Invalid value \"one\" for parameter 'version' supplied:",
        ),
        (
            "POST",
            "registered-models/alias",
            {"name": "digits", "version": "1"},
            "Missing value for required parameter 'alias'. See the API docs",
        ),
        (
            "POST",
            "registered-models/set-tag",
            {"name": "digits", "key": "bad key!"},
            "key: 'bad key!' may only",
        ),
        ("DELETE", "registered-models/delete-tag", {"name": "digits", "key": "\x00"}, "key: 'key' must not"),
        (
            "POST",
            "registered-models/get-latest-versions",
            {"name": "digits", "stages": [1]},
            "Invalid value [1] for parameter 'stages' supplied:",
        ),
    ],
)
def test_malformed_requests_are_400_naming_the_field(wire, method, endpoint, message, text):
    register(wire)
    got = wire.error(method, endpoint, message, status=400, code="INVALID_PARAMETER_VALUE")
    assert got.startswith(text)


def test_deleting_a_missing_alias_succeeds_as_in_mlflow_but_a_missing_model_is_404(wire, viewer_wire):
    register(wire)
    events = AuditEvent.objects.count()
    assert wire.ok("DELETE", "registered-models/alias", {"name": "digits", "alias": "champion"}) == {}
    assert AuditEvent.objects.count() == events
    wire.error(
        "DELETE",
        "registered-models/alias",
        {"name": "nope", "alias": "champion"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    viewer_wire.error(
        "DELETE",
        "registered-models/alias",
        {"name": "digits", "alias": "champion"},
        status=403,
        code="PERMISSION_DENIED",
    )


# Protected aliases and soft deletion ---------------------------------------------------------

PROTECTED = (
    "{field}: '{name}' is a protected {kind} of registered model 'digits': it moves only through an "
    "approved promotion request; open one with POST /api/v1/promotion-requests or from the version's page"
)


def test_setting_or_deleting_a_protected_alias_is_permission_denied(wire, run, admin):
    register(wire)
    add_version(wire, run)
    message = {"name": "digits", "alias": "production", "version": "1"}
    refused = wire.error("POST", "registered-models/alias", message, status=403, code="PERMISSION_DENIED")
    assert refused == PROTECTED.format(field="alias", name="production", kind="alias")
    model = RegisteredModel.objects.get()
    force_move(
        actor=admin, model=model, label=Label.alias("production"), version=model.versions.get(), reason="r"
    )
    removal = {"name": "digits", "alias": "production"}
    assert (
        wire.error("DELETE", "registered-models/alias", removal, status=403, code="PERMISSION_DENIED")
        == refused
    )
    assert ModelAlias.objects.get().alias == "production"


def test_deleting_a_model_that_holds_a_protected_alias_is_permission_denied(wire, run, admin):
    register(wire)
    add_version(wire, run)
    model = RegisteredModel.objects.get()
    force_move(
        actor=admin, model=model, label=Label.alias("production"), version=model.versions.get(), reason="r"
    )
    message = wire.error(
        "DELETE", "registered-models/delete", {"name": "digits"}, status=403, code="PERMISSION_DENIED"
    )
    assert message == (
        "name: registered model 'digits' cannot be deleted: "
        "the protected alias 'production' points at version 1"
    )
    assert wire.ok("GET", "registered-models/get", {"name": "digits"})["registered_model"]["name"] == "digits"


def test_a_model_holding_a_protected_label_keeps_its_name(wire, run, admin):
    """Renamed away, `models:/digits@production` would stop resolving, and the name registered
    again would take the default policy: a way around the review. Admins are refused too."""
    register(wire)
    add_version(wire, run)
    model = RegisteredModel.objects.get()
    force_move(
        actor=admin, model=model, label=Label.alias("production"), version=model.versions.get(), reason="r"
    )
    rename = {"name": "digits", "new_name": "digits-archived"}
    message = wire.error("POST", "registered-models/rename", rename, status=403, code="PERMISSION_DENIED")
    assert message == (
        "new_name: registered model 'digits' cannot be renamed: "
        "the protected alias 'production' points at version 1"
    )
    assert RegisteredModel.objects.get().name == "digits"
    with pytest.raises(ProtectedLabelHeld):
        rename_registered_model(actor=admin, model=model, name="digits-archived")


def test_only_an_admin_renames_or_deletes_a_model_with_a_policy_of_its_own(wire, run, admin):
    """The policy stays with the model; the name it leaves could be registered again under the
    default policy, so a model's own policy is set aside by an admin only."""
    register(wire)
    add_version(wire, run)
    model = RegisteredModel.objects.get()
    set_promotion_policy(actor=admin, model=model, required_approvals=3)
    refused = (
        "registered model 'digits' has a promotion policy of its own: only an admin may rename or delete it"
    )
    rename = {"name": "digits", "new_name": "digits-archived"}
    assert (
        wire.error("POST", "registered-models/rename", rename, status=403, code="PERMISSION_DENIED")
        == f"new_name: {refused}"
    )
    assert wire.error(
        "DELETE", "registered-models/delete", {"name": "digits"}, status=403, code="PERMISSION_DENIED"
    ) == (f"name: {refused}")
    assert wire.ok("PATCH", "registered-models/update", {"name": "digits", "description": "still editable"})
    assert RegisteredModel.objects.get().name == "digits"

    rename_registered_model(actor=admin, model=model, name="digits-archived")
    assert RegisteredModel.objects.get().name == "digits-archived"


def test_a_deleted_model_is_hidden_as_mlflow_hides_it_and_its_name_is_free_again(wire, run):
    register(wire)
    add_version(wire, run)
    wire.ok("DELETE", "registered-models/delete", {"name": "digits"})
    wire.error("GET", "registered-models/get", {"name": "digits"}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    assert wire.ok("GET", "registered-models/search", {}) == {}
    assert wire.ok("GET", "model-versions/search", {"filter": "name = 'digits'"}) == {}
    register(wire)
    assert add_version(wire, run)["version"] == "1"
    assert RegisteredModel.all_objects.filter(name="digits").count() == 2
