"""MLflow 3's logged-model endpoints, called as the mlflow client calls them."""

from __future__ import annotations

import io
import math

import pytest

from audit.models import AuditEvent
from tests.factories import ExperimentFactory
from tracker.models import LoggedModel, LoggedModelParam, LoggedModelStatus, LoggedModelTag
from tracker.services import ModelMetricInput, log_model_metrics, store_artifact

pytestmark = pytest.mark.django_db


def _create(wire, experiment, **fields) -> dict:
    return wire.ok("POST", "logged-models", {"experiment_id": str(experiment.pk), **fields})["model"]


@pytest.fixture
def model(wire, experiment, run) -> dict:
    return _create(
        wire,
        experiment,
        name="model",
        model_type="sklearn",
        source_run_id=run.uuid,
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "mlflow.source.name", "value": "train.py"}, {"key": "empty"}],
    )


# Create and read ---------------------------------------------------------------------------


def test_create_returns_the_model_message_the_client_parses(model, experiment, run, contributor):
    stored = LoggedModel.objects.get()
    info = model["info"]
    assert set(info) == {
        "model_id", "experiment_id", "name", "creation_timestamp_ms", "last_updated_timestamp_ms",
        "artifact_uri", "status", "creator_id", "model_type", "source_run_id", "tags",
    }  # fmt: skip
    assert info["model_id"] == stored.model_id
    assert info["experiment_id"] == str(experiment.pk)
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/models/{stored.model_id}/artifacts"
    assert (info["name"], info["model_type"], info["status"]) == ("model", "sklearn", "LOGGED_MODEL_PENDING")
    assert (info["source_run_id"], info["creator_id"]) == (run.uuid, contributor.pk)
    assert isinstance(info["creation_timestamp_ms"], int)
    assert info["tags"] == [{"key": "empty", "value": ""}, {"key": "mlflow.source.name", "value": "train.py"}]
    assert model["data"] == {"params": [{"key": "alpha", "value": "0.5"}]}


def test_create_is_audited_as_the_authenticated_user(model, contributor):
    event = AuditEvent.objects.get(action="logged_model.created")
    assert (event.actor, event.object_id) == (contributor, model["info"]["model_id"])


def test_create_without_a_name_generates_one(wire, experiment):
    assert _create(wire, experiment)["info"]["name"]


def test_get_returns_the_same_model(wire, model):
    model_id = model["info"]["model_id"]
    assert wire.ok("GET", f"logged-models/{model_id}")["model"] == model


def test_get_shows_metrics_logged_with_the_model_id(wire, model, contributor, run):
    model_id = model["info"]["model_id"]
    log_model_metrics(
        actor=contributor,
        run=run,
        metrics=[
            ModelMetricInput(model_id, "acc", 0.75, 2, 1000, "val", "d1"),
            ModelMetricInput(model_id, "loss", math.nan, 2, 1000),
        ],
    )
    metrics = wire.ok("GET", f"logged-models/{model_id}")["model"]["data"]["metrics"]
    point = {"timestamp": 1000, "step": 2, "model_id": model_id, "run_id": run.uuid}
    assert sorted(metrics, key=lambda m: m["key"]) == [
        {"key": "acc", "value": 0.75, "dataset_name": "val", "dataset_digest": "d1", **point},
        {"key": "loss", "value": "NaN", **point},
    ]


def test_a_viewer_may_read_but_not_create(viewer_wire, model, experiment):
    viewer_wire.ok("GET", f"logged-models/{model['info']['model_id']}")
    viewer_wire.error(
        "POST", "logged-models", {"experiment_id": str(experiment.pk)}, status=403, code="PERMISSION_DENIED"
    )
    assert LoggedModel.objects.count() == 1


def test_an_unknown_model_is_404_naming_it(wire):
    message = wire.error("GET", "logged-models/m-nope", status=404, code="RESOURCE_DOES_NOT_EXIST")
    assert message == "model_id: Logged model with ID 'm-nope' not found."


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"experiment_id": None}, "experiment_id"),
        ({"experiment_id": "x1"}, "experiment_id"),
        ({"experiment_id": 1}, "experiment_id"),
        ({"name": "a/b"}, "name"),
        ({"name": "n" * 251}, "name"),
        ({"model_type": 7}, "model_type"),
        ({"params": {"key": "a"}}, "params"),
        ({"params": ["a"]}, "params[0]"),
        ({"params": [{"key": "a", "value": "1"}, {"key": 5, "value": "1"}]}, "params[1].key"),
        ({"tags": [{"key": "k", "value": ["v"]}]}, "tags[0].value"),
        ({"tags": [{"key": "bad\x00key", "value": "v"}]}, "tags[0].key"),
    ],
)
def test_bad_create_input_is_a_400_naming_the_field(wire, experiment, message, field):
    body = {"experiment_id": str(experiment.pk), **message}
    text = wire.error("POST", "logged-models", body, status=400, code="INVALID_PARAMETER_VALUE")
    assert f"'{field}'" in text or text.startswith(f"{field}: ")
    assert not LoggedModel.objects.exists()


def test_an_unknown_experiment_or_source_run_is_404(wire, experiment):
    wire.error("POST", "logged-models", {"experiment_id": "999"}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    message = wire.error(
        "POST",
        "logged-models",
        {"experiment_id": str(experiment.pk), "source_run_id": "f" * 32},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert message == f"source_run_id: run '{'f' * 32}' does not exist"


def test_a_model_id_with_a_nul_character_is_refused_not_a_server_error(wire):
    message = wire.error("GET", "logged-models/m-%00", status=400, code="INVALID_PARAMETER_VALUE")
    assert message == "path: 'path' must not contain NUL characters"


# Finalize and delete -----------------------------------------------------------------------


def test_finalize_marks_the_model_ready(wire, model):
    model_id = model["info"]["model_id"]
    body = {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    finalized = wire.ok("PATCH", f"logged-models/{model_id}", body)["model"]
    assert finalized["info"]["status"] == "LOGGED_MODEL_READY"
    assert LoggedModel.objects.get().status == LoggedModelStatus.READY


@pytest.mark.parametrize("status", ["LOGGED_MODEL_PENDING", "READY", 2, None])
def test_finalize_with_another_status_is_a_400(wire, model, status):
    model_id = model["info"]["model_id"]
    body = {"model_id": model_id} if status is None else {"model_id": model_id, "status": status}
    message = wire.error(
        "PATCH", f"logged-models/{model_id}", body, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert "'status'" in message or message.startswith("status: ")


def test_a_viewer_cannot_finalize(viewer_wire, model):
    model_id = model["info"]["model_id"]
    body = {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    viewer_wire.error("PATCH", f"logged-models/{model_id}", body, status=403, code="PERMISSION_DENIED")


def test_a_deleted_model_is_hidden_unless_deleted_models_are_asked_for(wire, model):
    model_id = model["info"]["model_id"]
    assert wire.ok("DELETE", f"logged-models/{model_id}", {"model_id": model_id}) == {}

    wire.error("GET", f"logged-models/{model_id}", status=404, code="RESOURCE_DOES_NOT_EXIST")
    shown = wire.ok("GET", f"logged-models/{model_id}", {"allow_deleted": "true"})["model"]
    assert shown["info"]["model_id"] == model_id
    # Deleting again is accepted, as MLflow accepts it.
    assert wire.ok("DELETE", f"logged-models/{model_id}") == {}


# Tags and params ---------------------------------------------------------------------------


def test_set_tags_then_delete_one_by_key_in_the_path(wire, model):
    model_id = model["info"]["model_id"]
    tags = [
        {"key": "mlflow.modelVersions", "value": '[{"name": "M", "version": "1"}]'},
        {"key": "a/b", "value": "1"},
    ]

    assert wire.ok("PATCH", f"logged-models/{model_id}/tags", {"tags": tags}) == {}
    assert wire.ok("DELETE", f"logged-models/{model_id}/tags/a/b") == {}

    stored = dict(LoggedModelTag.objects.values_list("key", "value"))
    assert stored == {"mlflow.source.name": "train.py", "empty": "", "mlflow.modelVersions": tags[0]["value"]}


def test_deleting_an_absent_tag_is_404(wire, model):
    model_id = model["info"]["model_id"]
    message = wire.error(
        "DELETE", f"logged-models/{model_id}/tags/nope", status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    assert message == f"tag_key: logged model {model_id} has no tag 'nope'"


def test_params_are_added_and_never_changed(wire, model):
    model_id = model["info"]["model_id"]
    wire.ok(
        "POST",
        f"logged-models/{model_id}/params",
        {"model_id": model_id, "params": [{"key": "beta", "value": "2"}]},
    )
    message = wire.error(
        "POST",
        f"logged-models/{model_id}/params",
        {"model_id": model_id, "params": [{"key": "alpha", "value": "0.9"}]},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message.startswith("params.alpha: param 'alpha' of logged model")
    assert dict(LoggedModelParam.objects.values_list("key", "value")) == {"alpha": "0.5", "beta": "2"}


def test_more_than_100_params_in_one_call_is_a_400(wire, model):
    model_id = model["info"]["model_id"]
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    message = wire.error(
        "POST",
        f"logged-models/{model_id}/params",
        {"params": params},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message == "params: 101 items in one batch; the limit is 100"


# Search ------------------------------------------------------------------------------------


@pytest.fixture
def three_models(wire, experiment, run, contributor):
    ids = {}
    for name, alpha, acc in (("alpha", "0.1", 0.7), ("beta", "0.2", 0.9), ("gamma", "0.3", 0.8)):
        created = _create(
            wire,
            experiment,
            name=name,
            source_run_id=run.uuid,
            params=[{"key": "alpha", "value": alpha}],
            tags=[{"key": "team", "value": "vision" if name != "gamma" else "nlp"}],
        )
        ids[name] = model_id = created["info"]["model_id"]
        log_model_metrics(
            actor=contributor,
            run=run,
            metrics=[
                ModelMetricInput(model_id, "acc", acc, 0, 1000, "val" if name != "beta" else "test", "")
            ],
        )
    return ids


def _search(wire, experiment, **message) -> list[str]:
    found = wire.ok("POST", "logged-models/search", {"experiment_ids": [str(experiment.pk)], **message})
    return [model["info"]["name"] for model in found.get("models", [])]


@pytest.mark.parametrize(
    ("filter_string", "names"),
    [
        ("name = 'beta'", ["beta"]),
        ("name != 'beta'", ["gamma", "alpha"]),
        ("name LIKE '%a'", ["gamma", "beta", "alpha"]),
        ("name ILIKE 'AL%'", ["alpha"]),
        ("attributes.name IN ('alpha', 'gamma')", ["gamma", "alpha"]),
        ("params.alpha = '0.2'", ["beta"]),
        ("tags.team = 'vision' AND metrics.acc > 0.75", ["beta"]),
        ("metrics.acc <= 0.8", ["gamma", "alpha"]),
        ("status = 'LOGGED_MODEL_PENDING'", ["gamma", "beta", "alpha"]),
        ("status = 'READY'", []),
        ("name = 'beta' OR NOT name != 'gamma'", ["gamma", "beta"]),
        ("creation_timestamp > 0", ["gamma", "beta", "alpha"]),
        ("tags.absent IS NULL AND name = 'alpha'", ["alpha"]),
    ],
)
def test_search_filters_like_mlflow(wire, experiment, three_models, filter_string, names):
    assert _search(wire, experiment, filter=filter_string) == names


def test_search_by_source_run(wire, experiment, three_models, run):
    assert len(_search(wire, experiment, filter=f"source_run_id = '{run.uuid}'")) == 3


def test_search_datasets_scope_metric_filters(wire, experiment, three_models):
    datasets = [{"dataset_name": "val"}]
    assert _search(wire, experiment, filter="metrics.acc > 0.75", datasets=datasets) == ["gamma"]
    assert _search(wire, experiment, datasets=datasets) == ["gamma", "alpha"]


def test_search_orders_by_attributes_and_metrics(wire, experiment, three_models):
    assert _search(wire, experiment, order_by=[{"field_name": "name"}]) == ["alpha", "beta", "gamma"]
    assert _search(wire, experiment, order_by=[{"field_name": "metrics.acc", "ascending": False}]) == [
        "beta",
        "gamma",
        "alpha",
    ]
    on_val = [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "val"}]
    assert _search(wire, experiment, order_by=on_val) == ["gamma", "alpha", "beta"]  # beta has none: last


def test_search_pages_through_every_model(wire, experiment, three_models):
    names, token = [], None
    for _ in range(4):
        message = {
            "experiment_ids": [str(experiment.pk)],
            "max_results": 2,
            "order_by": [{"field_name": "name"}],
        }
        page = wire.ok(
            "POST", "logged-models/search", {**message, **({"page_token": token} if token else {})}
        )
        names += [m["info"]["name"] for m in page["models"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert names == ["alpha", "beta", "gamma"]


def test_search_leaves_out_deleted_models_and_other_experiments(wire, experiment, three_models):
    other = ExperimentFactory(name="other")
    _create(wire, other, name="alpha")
    wire.ok("DELETE", f"logged-models/{three_models['beta']}")
    assert _search(wire, experiment) == ["gamma", "alpha"]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"filter": "name = "}, "filter"),
        ({"filter": "color = 'red'"}, "filter"),
        ({"filter": "metrics.acc > 'high'"}, "filter"),
        ({"filter": "params.alpha > '1'"}, "filter"),
        ({"filter": "datasets.name = 'val'"}, "filter"),
        ({"order_by": [{"field_name": "params.alpha"}]}, "order_by"),
        ({"order_by": [{"field_name": "color"}]}, "order_by"),
        ({"order_by": [{"ascending": True}]}, "order_by[0].field_name"),
        ({"order_by": [{"field_name": "name", "ascending": "yes"}]}, "order_by[0].ascending"),
        ({"datasets": [{"dataset_digest": "x"}]}, "datasets[0].dataset_name"),
        ({"datasets": [{"dataset_name": "val\x00"}]}, "datasets[0].dataset_name"),
        ({"order_by": [{"field_name": "metrics.acc\x00"}]}, "order_by[0].field_name"),
        ({"filter": "name = 'a\x00'"}, "filter"),
        ({"max_results": 0}, "max_results"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"experiment_ids": []}, "experiment_ids"),
        ({"experiment_ids": ["abc"]}, "experiment_id"),
    ],
)
def test_bad_search_input_is_a_400_naming_the_field(wire, experiment, message, field):
    body = {"experiment_ids": [str(experiment.pk)], **message}
    text = wire.error("POST", "logged-models/search", body, status=400, code="INVALID_PARAMETER_VALUE")
    assert f"'{field}'" in text or text.startswith(f"{field}: ")


def test_search_in_an_unknown_experiment_is_404(wire):
    body = {"experiment_ids": ["424242"]}
    wire.error("POST", "logged-models/search", body, status=404, code="RESOURCE_DOES_NOT_EXIST")


def test_search_query_count_does_not_grow_with_the_models(
    wire, experiment, three_models, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):  # + the permissions
        assert len(_search(wire, experiment)) == 3


# Artifact listing --------------------------------------------------------------------------


def test_artifact_directories_lists_one_level_relative_to_the_model_root(wire, model, contributor):
    stored = LoggedModel.objects.get()
    for path in ("MLmodel", "data/model.pkl", "data/extra/x.txt"):
        store_artifact(actor=contributor, owner=stored, path=path, content=io.BytesIO(b"abc"))
    endpoint = f"logged-models/{stored.model_id}/artifacts/directories"

    root = wire.ok("GET", endpoint)
    data = wire.ok("GET", endpoint, {"artifact_directory_path": "data"})

    assert root == {
        "root_uri": stored.artifact_uri,
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 3}, {"path": "data", "is_dir": True}],
    }
    assert data["files"] == [
        {"path": "data/extra", "is_dir": True},
        {"path": "data/model.pkl", "is_dir": False, "file_size": 3},
    ]
    assert wire.ok("GET", endpoint, {"artifact_directory_path": "nothing"}) == {
        "root_uri": stored.artifact_uri
    }
    wire.error(
        "GET", endpoint, {"artifact_directory_path": "../x"}, status=400, code="INVALID_PARAMETER_VALUE"
    )
