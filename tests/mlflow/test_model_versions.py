"""model-versions/* as the mlflow client calls them: a version always names its run, however the
client says which run that is; exact JSON; download URIs; stages; search; audit; refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from registry.models import AliasHistory, ModelVersion, ModelVersionTag, Stage
from tracker.models import LoggedModel
from tracker.services import start_run

pytestmark = pytest.mark.django_db


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.fixture
def run(contributor, experiment):
    return start_run(actor=contributor, experiment=experiment, name="trained")


@pytest.fixture
def logged_model(experiment, run):
    """What `mlflow.pyfunc.log_model` leaves behind: a model logged by the run, with its folder."""
    model = LoggedModel.objects.create(experiment=experiment, name="model", source_run=run)
    model.artifact_uri = f"mlflow-artifacts:/{experiment.pk}/models/{model.model_id}/artifacts"
    model.save()
    return model


@pytest.fixture
def registered(wire):
    wire.ok("POST", "registered-models/create", {"name": "digits"})


def create(wire, **fields) -> dict:
    return wire.ok("POST", "model-versions/create", {"name": "digits", **fields})["model_version"]


def add_version(wire, run, name: str = "digits") -> dict:
    return create(wire, name=name, source=f"runs:/{run.uuid}/model", run_id=run.uuid)


def test_create_from_a_run_returns_a_ready_version_with_string_number(wire, registered, run, contributor):
    shown = add_version(wire, run)
    version = ModelVersion.objects.get()
    assert shown == {
        "name": "digits",
        "version": "1",
        "creation_timestamp": ms(version.created_at),
        "last_updated_timestamp": ms(version.updated_at),
        "user_id": "carl-contributor",
        "current_stage": "None",
        "source": f"runs:/{run.uuid}/model",
        "run_id": run.uuid,
        "status": "READY",
    }
    assert version.run == run
    event = AuditEvent.objects.get(action="model_version.created")
    assert (event.actor, event.object_id, event.after["run"]) == (contributor, f"id:{version.pk}", run.uuid)


def test_create_from_a_logged_model_as_mlflow_3_registers_it(wire, registered, run, logged_model):
    shown = create(
        wire,
        source=f"models:/{logged_model.model_id}",
        run_id=run.uuid,
        model_id=logged_model.model_id,
        run_link="http://notebook/run/1",
        description="first cut",
        tags=[{"key": "validated", "value": "no"}],
    )
    assert shown["model_id"] == logged_model.model_id
    assert (shown["run_link"], shown["description"]) == ("http://notebook/run/1", "first cut")
    assert shown["tags"] == [{"key": "validated", "value": "no"}]
    version = ModelVersion.objects.get()
    assert (version.run, version.logged_model, version.run_link) == (
        run,
        logged_model,
        "http://notebook/run/1",
    )
    event = AuditEvent.objects.get(action="model_version.created")
    assert event.after["logged_model"] == logged_model.model_id


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(lambda run, model: {"model_id": model.model_id}, id="model_id"),
        pytest.param(lambda run, model: {"source": f"models:/{model.model_id}"}, id="models-source"),
        pytest.param(lambda run, model: {"source": f"runs:/{run.uuid}/model"}, id="runs-source"),
    ],
)
def test_without_run_id_the_run_is_found_from_the_model_or_the_source(
    wire, registered, run, logged_model, fields
):
    shown = create(wire, **fields(run, logged_model))
    assert shown["run_id"] == run.uuid
    assert ModelVersion.objects.get().run == run


def test_a_version_without_any_run_is_refused_with_the_reason(wire, registered, experiment):
    message = wire.error(
        "POST",
        "model-versions/create",
        {"name": "digits", "source": "s3://bucket/model"},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message.startswith("run_id: a model version needs the run that produced it, as its evidence")
    orphan = LoggedModel.objects.create(experiment=experiment, name="orphan")
    wire.error(
        "POST",
        "model-versions/create",
        {"name": "digits", "source": f"models:/{orphan.model_id}", "model_id": orphan.model_id},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("fields", "status", "code", "text"),
    [
        (
            {"run_id": "0" * 32},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "run_id: run '" + "0" * 32 + "' does not exist",
        ),
        ({"model_id": "m-" + "0" * 32}, 404, "RESOURCE_DOES_NOT_EXIST", "model_id: logged model 'm-"),
        ({"source": "runs:/other/model", "run_id": "RUN"}, 400, "INVALID_PARAMETER_VALUE", "source: source"),
        ({"source": "models:/m-0abc", "model_id": "MODEL"}, 400, "INVALID_PARAMETER_VALUE", "source: source"),
        ({"source": "runs:/RUN/../../secrets"}, 400, "INVALID_PARAMETER_VALUE", "source: 'runs:/"),
        ({"run_id": "RUN", "tags": [{"key": "a b!"}]}, 400, "INVALID_PARAMETER_VALUE", "tags[0].key:"),
        (
            {"run_id": "RUN", "tags": {"k": "v"}},
            400,
            "INVALID_PARAMETER_VALUE",
            "Invalid value {\"k\":\"v\"} for parameter 'tags' supplied:  Hint: Value was of type 'dict'.",
        ),
        ({"run_id": 7}, 400, "INVALID_PARAMETER_VALUE", "Invalid value 7 for parameter 'run_id' supplied:"),
        (
            {"run_id": "RUN", "description": 1},
            400,
            "INVALID_PARAMETER_VALUE",
            "Invalid value 1 for parameter 'description' supplied:",
        ),
        (
            {"run_id": "RUN", "name": "nope"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Registered Model with name=nope not found",
        ),
        (
            {"source": "runs:/a\x00b/model"},
            400,
            "INVALID_PARAMETER_VALUE",
            "source: 'source' must not contain NUL",
        ),
        ({"run_id": "RUN\x00"}, 400, "INVALID_PARAMETER_VALUE", "run_id: 'run_id' must not contain NUL"),
        (
            {"run_id": "RUN", "run_link": "x" * 1001},
            400,
            "INVALID_PARAMETER_VALUE",
            "run_link: is 1001 characters",
        ),
    ],
)
def test_bad_create_requests_name_the_field_and_store_nothing(
    wire, registered, run, logged_model, fields, status, code, text
):
    message = {
        key: value.replace("RUN", run.uuid) if isinstance(value, str) else value
        for key, value in fields.items()
    }
    message = {
        key: value.replace("MODEL", logged_model.model_id) if isinstance(value, str) else value
        for key, value in message.items()
    }
    got = wire.error("POST", "model-versions/create", {"name": "digits", **message}, status=status, code=code)
    assert got.startswith(text)
    assert not ModelVersion.objects.exists()


def test_a_logged_model_of_another_run_is_refused(wire, registered, contributor, experiment, logged_model):
    other = start_run(actor=contributor, experiment=experiment)
    message = wire.error(
        "POST",
        "model-versions/create",
        {"name": "digits", "model_id": logged_model.model_id, "run_id": other.uuid},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert (
        message
        == f"model_id: logged model {logged_model.model_id} was logged by another run than {other.uuid}"
    )


def test_version_numbers_count_up_and_get_reads_one(wire, registered, run):
    assert [add_version(wire, run)["version"] for _ in range(3)] == ["1", "2", "3"]
    shown = wire.ok("GET", "model-versions/get", {"name": "digits", "version": "2"})["model_version"]
    assert (shown["version"], shown["run_id"]) == ("2", run.uuid)
    message = wire.error(
        "GET",
        "model-versions/get",
        {"name": "digits", "version": "9"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert message == "Model Version (name=digits, version=9) not found"  # as docs/mlflow.md promises
    message = wire.error(
        "GET",
        "model-versions/get",
        {"name": "nope", "version": "1"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert message == "Registered Model with name=nope not found"


def test_update_replaces_the_description_and_is_audited(wire, registered, run, contributor):
    add_version(wire, run)
    shown = wire.ok(
        "PATCH", "model-versions/update", {"name": "digits", "version": "1", "description": "good"}
    )
    assert shown["model_version"]["description"] == "good"
    event = AuditEvent.objects.get(action="model_version.updated")
    assert (event.actor, event.before, event.after) == (
        contributor,
        {"description": ""},
        {"model": "digits", "version": 1, "description": "good"},
    )


def test_delete_reads_a_json_body_and_is_audited(wire, registered, run, contributor):
    add_version(wire, run)
    add_version(wire, run)
    assert wire.ok("DELETE", "model-versions/delete", {"name": "digits", "version": "1"}) == {}
    assert list(ModelVersion.objects.values_list("version", flat=True)) == [2]
    deleted = ModelVersion.all_objects.get(version=1)
    assert (deleted.deleted_by, deleted.is_deleted) == (contributor, True)
    event = AuditEvent.objects.get(action="model_version.deleted")
    assert (event.actor, event.object_id) == (contributor, f"id:{deleted.pk}")


def test_tags_are_set_and_deleted_with_a_json_body(wire, registered, run, contributor):
    add_version(wire, run)
    wire.ok(
        "POST", "model-versions/set-tag", {"name": "digits", "version": "1", "key": "checked", "value": "yes"}
    )
    shown = wire.ok("GET", "model-versions/get", {"name": "digits", "version": "1"})["model_version"]
    assert shown["tags"] == [{"key": "checked", "value": "yes"}]
    assert (
        wire.ok("DELETE", "model-versions/delete-tag", {"name": "digits", "version": "1", "key": "checked"})
        == {}
    )
    assert not ModelVersionTag.objects.exists()
    actions = AuditEvent.objects.filter(actor=contributor, action__startswith="model_version.tag")
    assert list(actions.order_by("sequence").values_list("action", flat=True)) == [
        "model_version.tag_set",
        "model_version.tag_deleted",
    ]
    # Deleting it again succeeds and records nothing, as in MLflow; a missing version is still 404.
    assert (
        wire.ok("DELETE", "model-versions/delete-tag", {"name": "digits", "version": "1", "key": "checked"})
        == {}
    )
    assert actions.count() == 2
    wire.error(
        "DELETE",
        "model-versions/delete-tag",
        {"name": "digits", "version": "9", "key": "checked"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_download_uri_points_into_the_artifact_store_for_each_source_form(
    wire, registered, run, logged_model
):
    create(wire, source=f"models:/{logged_model.model_id}", model_id=logged_model.model_id)
    add_version(wire, run)
    create(wire, source="s3://bucket/models/digits", run_id=run.uuid)
    create(wire, source=f"runs:/{run.uuid}", run_id=run.uuid)

    def uri(version: str) -> str:
        return wire.ok("GET", "model-versions/get-download-uri", {"name": "digits", "version": version})[
            "artifact_uri"
        ]

    assert uri("1") == logged_model.artifact_uri
    assert uri("2") == f"{run.artifact_uri}/model"
    assert uri("3") == "s3://bucket/models/digits"
    assert uri("4") == run.artifact_uri


def test_transition_stage_archives_the_previous_holder_and_records_who(wire, registered, run, contributor):
    add_version(wire, run)
    add_version(wire, run)
    wire.ok("POST", "model-versions/transition-stage", {"name": "digits", "version": "1", "stage": "Staging"})
    shown = wire.ok(
        "POST",
        "model-versions/transition-stage",
        {"name": "digits", "version": "2", "stage": "staging", "archive_existing_versions": True},
    )["model_version"]

    assert shown["current_stage"] == "Staging"
    stages = dict(ModelVersion.objects.values_list("version", "stage"))
    assert stages == {1: Stage.ARCHIVED, 2: Stage.STAGING}
    history = {
        (h.name, h.version.version, h.removed_at is None, h.assigned_by) for h in AliasHistory.objects.all()
    }
    assert history == {
        ("Staging", 1, False, contributor),
        ("Archived", 1, True, contributor),
        ("Staging", 2, True, contributor),
    }
    v1, v2 = (f"id:{pk}" for pk in ModelVersion.objects.order_by("version").values_list("pk", flat=True))
    moves = AuditEvent.objects.filter(action="model_version.stage_changed").order_by("sequence")
    assert [(e.actor, e.object_id, e.after["stage"]) for e in moves] == [
        (contributor, v1, "Staging"),
        (contributor, v1, "Archived"),
        (contributor, v2, "Staging"),
    ]


def test_an_unknown_stage_is_refused(wire, registered, run):
    add_version(wire, run)
    message = wire.error(
        "POST",
        "model-versions/transition-stage",
        {"name": "digits", "version": "1", "stage": "Live"},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message == "stage: 'Live' is not one of None, Staging, Production, Archived"
    assert ModelVersion.objects.get().stage == Stage.NONE


# Search ------------------------------------------------------------------------------------


def versions_found(wire, **message) -> list[tuple[str, str]]:
    found = wire.ok("GET", "model-versions/search", message).get("model_versions", [])
    return [(v["name"], v["version"]) for v in found]


@pytest.fixture
def two_models(wire, contributor, experiment, run):
    """digits v1 (run), v2 (other run, tagged), v3 (run); sentiment v1 (other run); a prompt."""
    other = start_run(actor=contributor, experiment=experiment)
    wire.ok("POST", "registered-models/create", {"name": "digits"})
    wire.ok("POST", "registered-models/create", {"name": "sentiment"})
    wire.ok("POST", "registered-models/create", {"name": "greeting"})
    add_version(wire, run)
    create(
        wire, source=f"runs:/{other.uuid}/best", run_id=other.uuid, tags=[{"key": "checked", "value": "yes"}]
    )
    add_version(wire, run)
    add_version(wire, other, name="sentiment")
    create(
        wire, name="greeting", source="s3://prompts/greeting", run_id=run.uuid,
        tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}],
    )  # fmt: skip
    return run, other


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'digits'", [("digits", "3"), ("digits", "2"), ("digits", "1")]),
        ("name = 'digits' AND version_number > 1", [("digits", "3"), ("digits", "2")]),
        ("version_number = '1'", [("digits", "1"), ("sentiment", "1")]),
        ("version_number IN (2, 3)", [("digits", "3"), ("digits", "2")]),
        ("run_id = 'OTHER'", [("digits", "2"), ("sentiment", "1")]),
        ("run_id IN ('OTHER', 'nothing')", [("digits", "2"), ("sentiment", "1")]),
        ("source_path LIKE '%/best'", [("digits", "2")]),
        ("tags.checked = 'yes'", [("digits", "2")]),
        ("tags.checked IS NULL AND name != 'digits'", [("sentiment", "1")]),
        ("tags.`mlflow.prompt.is_prompt` = 'true'", [("greeting", "1")]),
    ],
)
def test_filters_on_name_run_source_number_and_tags(wire, two_models, filter_string, expected):
    _, other = two_models
    filter_string = filter_string.replace("OTHER", other.uuid)
    assert versions_found(wire, filter=filter_string, order_by=["name", "version_number DESC"]) == expected


def test_default_order_is_the_latest_change_first_and_prompts_are_left_out(wire, two_models):
    wire.ok("PATCH", "model-versions/update", {"name": "digits", "version": "1", "description": "touched"})
    found = versions_found(wire)
    assert found[0] == ("digits", "1")
    assert sorted(found) == [("digits", "1"), ("digits", "2"), ("digits", "3"), ("sentiment", "1")]


def test_version_pages_follow_the_next_page_token(wire, two_models):
    first = wire.ok("GET", "model-versions/search", {"max_results": "3", "order_by": ["version_number ASC"]})
    assert [(v["name"], v["version"]) for v in first["model_versions"]] == [
        ("digits", "1"),
        ("sentiment", "1"),
        ("digits", "2"),
    ]
    second = wire.ok(
        "GET",
        "model-versions/search",
        {"max_results": "3", "order_by": ["version_number ASC"], "page_token": first["next_page_token"]},
    )
    assert [(v["name"], v["version"]) for v in second["model_versions"]] == [("digits", "3")]
    assert "next_page_token" not in second


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"filter": "stage = 'None'"}, "filter: Invalid attribute key 'stage' at position 0"),
        ({"filter": "version_number = 1.5"}, "filter: Expected an integer value for version_number"),
        ({"filter": "version_number LIKE '1%'"}, "filter: Invalid comparator 'LIKE' for version_number"),
        ({"filter": "version_number > 99999999999999999999"}, "filter: Expected an integer value"),
        ({"filter": "run_id = 'a' AND"}, "filter: Syntax error at position 16"),
        ({"order_by": ["run_id"]}, "order_by: order_by[0] 'run_id': expected '<key> [ASC|DESC]'"),
        ({"max_results": "200001"}, "max_results: max_results must be between 1 and 200000"),
        ({"page_token": "WzEuNV0"}, "page_token: Invalid page token"),
    ],
)
def test_bad_version_searches_are_400_naming_the_field(wire, message, text):
    got = wire.error("GET", "model-versions/search", message, status=400, code="INVALID_PARAMETER_VALUE")
    assert got.startswith(text)


def test_version_search_reads_in_the_same_number_of_queries_however_many_versions(wire, two_models):
    run, _ = two_models

    def queries_for_search() -> int:
        with CaptureQueriesContext(connection) as captured:
            wire.ok("GET", "model-versions/search", {"filter": "name != 'x'"})
        return len(captured)

    few = queries_for_search()
    for index in range(8):
        create(
            wire, source=f"runs:/{run.uuid}/model", run_id=run.uuid, tags=[{"key": "i", "value": str(index)}]
        )
        wire.ok(
            "POST",
            "registered-models/alias",
            {"name": "digits", "alias": f"a{index}", "version": str(index + 1)},
        )
    assert queries_for_search() == few <= 4


@pytest.mark.usefixtures("postgres_statements")
def test_creating_a_version_takes_a_fixed_handful_of_queries(wire, registered, run):
    add_version(wire, run)
    with CaptureQueriesContext(connection) as captured:
        add_version(wire, run)
    # authentication, model, run, the model permission, lock, next number, insert, three for the
    # audit chain, savepoints
    assert len(captured) <= 12


# Refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "endpoint", "message"),
    [
        ("POST", "model-versions/create", {"name": "digits", "run_id": "RUN"}),
        ("PATCH", "model-versions/update", {"name": "digits", "version": "1", "description": "x"}),
        ("DELETE", "model-versions/delete", {"name": "digits", "version": "1"}),
        ("POST", "model-versions/set-tag", {"name": "digits", "version": "1", "key": "k", "value": "v"}),
        ("DELETE", "model-versions/delete-tag", {"name": "digits", "version": "1", "key": "checked"}),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "digits", "version": "1", "stage": "Production"},
        ),
    ],
)
def test_a_viewer_reads_versions_but_every_write_is_permission_denied(
    wire, viewer_wire, registered, run, method, endpoint, message
):
    create(wire, source=f"runs:/{run.uuid}/model", run_id=run.uuid, tags=[{"key": "checked", "value": "yes"}])
    before = viewer_wire.ok("GET", "model-versions/get", {"name": "digits", "version": "1"})
    events = AuditEvent.objects.count()
    message = {key: value.replace("RUN", run.uuid) for key, value in message.items()}

    viewer_wire.error(method, endpoint, message, status=403, code="PERMISSION_DENIED")

    assert viewer_wire.ok("GET", "model-versions/get", {"name": "digits", "version": "1"}) == before
    assert ModelVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("method", "endpoint", "message", "text"),
    [
        (
            "GET",
            "model-versions/get",
            {"name": "digits"},
            "Missing value for required parameter 'version'. See the API docs",
        ),
        (
            "GET",
            "model-versions/get",
            {"name": "digits", "version": "one"},
            "Invalid value \"one\" for parameter 'version' supplied:",
        ),
        (
            "GET",
            "model-versions/get",
            {"name": "digits", "version": "1e99"},
            "Invalid value \"1e99\" for parameter 'version' supplied:  Hint: Value was of type 'str'.",
        ),
        (
            "GET",
            "model-versions/get-download-uri",
            {"version": "1"},
            "Missing value for required parameter 'name'. See the API docs",
        ),
        (
            "PATCH",
            "model-versions/update",
            {"name": "digits", "version": [1]},
            "Invalid value [1] for parameter 'version' supplied:",
        ),
        (
            "POST",
            "model-versions/set-tag",
            {"name": "digits", "version": "1"},
            "Missing value for required parameter 'key'. See the API docs",
        ),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "digits", "version": "1"},
            "Missing value for required parameter 'stage'. See the API docs",
        ),
        (
            "POST",
            "model-versions/transition-stage",
            {"name": "digits", "version": "1", "stage": "Staging", "archive_existing_versions": "yes"},
            "Invalid value \"yes\" for parameter 'archive_existing_versions' supplied:",
        ),
        (
            "DELETE",
            "model-versions/delete-tag",
            {"name": "digits", "version": "1"},
            "Missing value for required parameter 'key'. See the API docs",
        ),
    ],
)
def test_malformed_version_requests_are_400_naming_the_field(
    wire, registered, run, method, endpoint, message, text
):
    add_version(wire, run)
    got = wire.error(method, endpoint, message, status=400, code="INVALID_PARAMETER_VALUE")
    assert got.startswith(text)


def test_moving_a_version_into_production_is_permission_denied(wire, registered, run):
    add_version(wire, run)
    message = wire.error(
        "POST",
        "model-versions/transition-stage",
        {"name": "digits", "version": "1", "stage": "production"},
        status=403,
        code="PERMISSION_DENIED",
    )
    assert message == (
        "stage: 'Production' is a protected stage of registered model 'digits': it moves only through an "
        "approved promotion request; open one with POST /api/v1/promotion-requests or from the version's page"
    )
    assert ModelVersion.objects.get().stage == Stage.NONE


def test_a_deleted_version_is_hidden_from_get_and_search_and_keeps_its_number(wire, registered, run):
    add_version(wire, run)
    add_version(wire, run)
    wire.ok("DELETE", "model-versions/delete", {"name": "digits", "version": "2"})
    wire.error(
        "GET",
        "model-versions/get",
        {"name": "digits", "version": "2"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    found = wire.ok("GET", "model-versions/search", {"filter": "name = 'digits'"})["model_versions"]
    assert [v["version"] for v in found] == ["1"]
    assert add_version(wire, run)["version"] == "3"
