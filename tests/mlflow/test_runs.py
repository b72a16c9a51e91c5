"""runs/* as the mlflow client calls them: the run message in all four parts, logging params,
metrics, tags, inputs and outputs, refusals with MLflow's codes that store nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEvent
from tracker.models import (
    DatasetInput,
    LoggedModel,
    LoggedModelMetric,
    MetricPoint,
    Param,
    Run,
    RunModelLink,
    Tag,
)

pytestmark = pytest.mark.django_db

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_700_000_000_000


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def client_tags(**extra: str) -> list[dict[str, str]]:
    """The tags mlflow.start_run sends, with `user_id` and mlflow.user claiming someone else."""
    tags = {"mlflow.user": "root", "mlflow.source.type": "LOCAL", **extra}
    return [{"key": key, "value": value} for key, value in tags.items()]


def create_run(wire, experiment, **fields) -> dict:
    message = {"experiment_id": str(experiment.pk), "user_id": "root", "start_time": T0, **fields}
    return wire.ok("POST", "runs/create", message)["run"]


def get_run(wire, run_id: str) -> dict:
    return wire.ok("GET", "runs/get", {"run_id": run_id, "run_uuid": run_id})["run"]


def actions_by(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor=user).order_by("sequence").values_list("action", flat=True))


# runs/create ------------------------------------------------------------------------------


def test_create_returns_the_run_owned_by_the_authenticated_user(wire, contributor, experiment):
    shown = create_run(wire, experiment, run_name="lr-0.01", tags=client_tags())
    run = Run.objects.get()
    assert shown == {
        "info": {
            "run_id": run.uuid,
            "run_uuid": run.uuid,
            "run_name": "lr-0.01",
            "experiment_id": str(experiment.pk),
            "user_id": "carl-contributor",
            "status": "RUNNING",
            "start_time": T0,
            "artifact_uri": f"mlflow-artifacts:/{experiment.pk}/{run.uuid}/artifacts",
            "lifecycle_stage": "active",
        },
        "data": {
            "tags": [
                {"key": "mlflow.user", "value": "carl-contributor"},
                {"key": "mlflow.source.type", "value": "LOCAL"},
                {"key": "mlflow.runName", "value": "lr-0.01"},
            ]
        },
        "inputs": {},
        "outputs": {},
    }
    assert run.user == contributor
    assert dict(Tag.objects.values_list("key", "value")) == {
        "mlflow.user": "carl-contributor",
        "mlflow.source.type": "LOCAL",
        "mlflow.runName": "lr-0.01",
    }
    event = AuditEvent.objects.get(action="run.started")
    assert (event.actor, event.object_id) == (contributor, run.uuid)


def test_create_without_an_experiment_uses_the_default_one(wire):
    shown = wire.ok("POST", "runs/create", {"start_time": T0})["run"]
    assert shown["info"]["experiment_id"] == "0"


def test_a_run_without_a_name_gets_a_generated_one_in_its_name_tag(wire, experiment):
    shown = create_run(wire, experiment)
    name = shown["info"]["run_name"]
    assert len(name.split("-")) == 3
    assert Tag.objects.get(key="mlflow.runName").value == name == Run.objects.get().name


def test_the_name_tag_names_a_run_sent_without_run_name(wire, experiment):
    shown = create_run(wire, experiment, tags=client_tags(**{"mlflow.runName": "from-tag"}))
    assert shown["info"]["run_name"] == "from-tag"


def test_run_name_and_a_different_name_tag_are_refused(wire, experiment):
    message = {"run_name": "a", "tags": client_tags(**{"mlflow.runName": "b"})}
    text = wire.error(
        "POST",
        "runs/create",
        {"experiment_id": str(experiment.pk), **message},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert "run_name" in text
    assert not Run.objects.exists()


def test_nested_runs_get_their_parent_and_the_context_tags_fill_the_runs_context(wire, experiment):
    parent = create_run(wire, experiment, run_name="sweep")["info"]["run_id"]
    tags = client_tags(
        **{
            "mlflow.parentRunId": parent,
            "mlflow.source.git.commit": "3f2c1a9e" * 5,
            "mlflow.source.name": "train.py",
        }
    )
    child = create_run(wire, experiment, run_name="trial-1", tags=tags)
    stored = Run.objects.get(uuid=child["info"]["run_id"])
    assert stored.parent.uuid == parent
    assert (stored.code_commit, stored.source) == ("3f2c1a9e" * 5, "train.py")
    assert {"key": "mlflow.parentRunId", "value": parent} in get_run(wire, stored.uuid)["data"]["tags"]


@pytest.mark.parametrize("parent", ["0" * 32, "7", "not a run id!"])
def test_a_parent_this_server_does_not_know_is_kept_as_the_tag_as_mlflow_does(wire, experiment, parent):
    created = create_run(wire, experiment, tags=client_tags(**{"mlflow.parentRunId": parent}))
    stored = Run.objects.get(uuid=created["info"]["run_id"])
    assert stored.parent is None
    assert {"key": "mlflow.parentRunId", "value": parent} in get_run(wire, stored.uuid)["data"]["tags"]


@pytest.mark.parametrize(
    ("message", "status", "code", "field"),
    [
        ({"experiment_id": 5}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ({"experiment_id": "987654"}, 404, "RESOURCE_DOES_NOT_EXIST", "experiment_id"),
        ({"run_name": "x" * 251}, 400, "INVALID_PARAMETER_VALUE", "run_name"),
        ({"start_time": "noon"}, 400, "INVALID_PARAMETER_VALUE", "start_time"),
        ({"start_time": 10**18}, 400, "INVALID_PARAMETER_VALUE", "start_time"),
        ({"tags": [{"key": "a/../b", "value": "x"}]}, 400, "INVALID_PARAMETER_VALUE", "key"),
        ({"tags": [{"key": "note", "value": "x" * 8001}]}, 400, "INVALID_PARAMETER_VALUE", "value"),
        ({"tags": [{"key": ["k"], "value": "x"}]}, 400, "INVALID_PARAMETER_VALUE", "tags[0].key"),
    ],
)
def test_bad_create_messages_name_the_field_and_store_nothing(wire, message, status, code, field):
    text = wire.error("POST", "runs/create", message, status=status, code=code)
    assert field in text
    assert not Run.objects.exists()


def test_a_tag_sent_twice_keeps_its_last_value(wire, experiment):
    tags = [{"key": "team", "value": "a"}, {"key": "team", "value": "b"}]
    create_run(wire, experiment, tags=tags)
    assert Tag.objects.get(key="team").value == "b"


def test_a_viewer_cannot_start_a_run(viewer_wire, experiment, viewer):
    viewer_wire.error(
        "POST", "runs/create", {"experiment_id": str(experiment.pk)}, status=403, code="PERMISSION_DENIED"
    )
    assert not Run.objects.exists()
    assert actions_by(viewer) == ["api_token.created"]


# runs/get ---------------------------------------------------------------------------------


@pytest.fixture
def logged_run(wire, experiment):
    """A run with a NaN, an infinite and a plain metric, two params, a dataset and model links."""
    run_id = create_run(wire, experiment, run_name="full")["info"]["run_id"]
    metrics = [
        {"key": "loss", "value": 0.9, "timestamp": T0, "step": 0},
        {"key": "loss", "value": 0.5, "timestamp": T0 + 1, "step": 1},
        {"key": "grad", "value": "Infinity", "timestamp": T0, "step": 1},
        {"key": "f1", "value": 0.1, "timestamp": T0, "step": 0},
        {"key": "f1", "value": "NaN", "timestamp": T0 + 5, "step": 2},
    ]
    params = [{"key": "lr", "value": "0.01"}, {"key": "epochs", "value": "20"}]
    wire.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": params})
    dataset = {
        "name": "digits",
        "digest": "abc123",
        "source_type": "s3",
        "source": '{"uri": "s3://bucket/digits.csv"}',
        "schema": '{"mlflow_colspec": []}',
    }
    inputs = [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}]
    wire.ok("POST", "runs/log-inputs", {"run_id": run_id, "datasets": inputs})
    return run_id


def test_get_returns_all_four_parts_with_latest_metrics_and_nan_spelled(wire, logged_run):
    shown = get_run(wire, logged_run)
    assert shown["info"]["run_name"] == "full"
    assert "end_time" not in shown["info"]
    assert shown["data"]["metrics"] == [
        {"key": "f1", "value": "NaN", "timestamp": T0 + 5, "step": 2},
        {"key": "grad", "value": "Infinity", "timestamp": T0, "step": 1},
        {"key": "loss", "value": 0.5, "timestamp": T0 + 1, "step": 1},
    ]
    assert shown["data"]["params"] == [{"key": "epochs", "value": "20"}, {"key": "lr", "value": "0.01"}]
    assert shown["inputs"] == {
        "dataset_inputs": [
            {
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
                "dataset": {
                    "name": "digits",
                    "digest": "abc123",
                    "source_type": "s3",
                    "source": '{"uri": "s3://bucket/digits.csv"}',
                    "schema": '{"mlflow_colspec": []}',
                },
            }
        ]
    }
    assert shown["outputs"] == {}


def test_get_accepts_the_legacy_run_uuid_alone(wire, logged_run):
    assert wire.ok("GET", "runs/get", {"run_uuid": logged_run})["run"]["info"]["run_id"] == logged_run


def test_an_unknown_run_is_mlflows_run_not_found(wire):
    message = wire.error("GET", "runs/get", {"run_id": "0" * 32}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    assert message == f"Run '{'0' * 32}' not found"
    message = wire.error(
        "POST", "runs/log-batch", {"run_id": "f" * 32}, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    assert message == f"Run '{'f' * 32}' not found"


def test_a_run_id_of_the_wrong_type_is_mlflows_invalid_value(wire):
    message = wire.error("POST", "runs/log-batch", {"run_id": 31}, status=400, code="INVALID_PARAMETER_VALUE")
    assert message == (
        "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. "
        "See the API docs for more information about request parameters."
    )


def test_deleting_a_tag_the_run_lacks_is_mlflows_no_tag_error(wire, logged_run):
    message = wire.error(
        "POST",
        "runs/delete-tag",
        {"run_id": logged_run, "key": "nope"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert message == f"No tag with name: nope in run with id {logged_run}"


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        ({"run_id": "bad id\x00"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "x" * 300}, 400, "INVALID_PARAMETER_VALUE"),
        ({}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_unknown_or_malformed_run_ids(wire, message, status, code):
    assert "run_id" in wire.error("GET", "runs/get", message, status=status, code=code)


# logged models as run inputs and outputs (the link services are the logged-model helper's) ---


@pytest.fixture
def model(experiment):
    return LoggedModel.objects.create(experiment=experiment, name="model")


def test_log_inputs_and_outputs_link_logged_models_shown_in_the_run(wire, logged_run, model, contributor):
    wire.ok("POST", "runs/log-inputs", {"run_id": logged_run, "models": [{"model_id": model.model_id}]})
    wire.ok(
        "POST", "runs/outputs", {"run_id": logged_run, "models": [{"model_id": model.model_id, "step": 3}]}
    )
    shown = get_run(wire, logged_run)
    assert shown["inputs"]["model_inputs"] == [{"model_id": model.model_id}]
    assert shown["outputs"] == {"model_outputs": [{"model_id": model.model_id, "step": 3}]}
    assert set(RunModelLink.objects.values_list("direction", "step")) == {("input", 0), ("output", 3)}
    assert actions_by(contributor)[-2:] == ["run.models_linked", "run.models_linked"]


def test_log_inputs_with_an_unknown_model_stores_neither_datasets_nor_models(wire, logged_run):
    dataset = {"name": "extra", "digest": "d1", "source_type": "local", "source": "{}"}
    wire.error(
        "POST",
        "runs/log-inputs",
        {"run_id": logged_run, "datasets": [{"dataset": dataset}], "models": [{"model_id": "m-nope"}]},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert not DatasetInput.objects.filter(name="extra").exists()
    assert not RunModelLink.objects.exists()


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"datasets": [{"tags": []}]}, "datasets[0].dataset"),
        ({"datasets": [{"dataset": "digits"}]}, "datasets[0].dataset"),
        ({"datasets": [{"dataset": {"name": "d"}}]}, "datasets[0].digest"),
        ({"datasets": [{"dataset": {"name": "d", "digest": "x" * 65}}]}, "datasets[0].digest"),
        ({"models": [{}]}, "models[0].model_id"),
        ({"models": [{"model_id": ["m"]}]}, "models[0].model_id"),
    ],
)
def test_bad_log_inputs_name_the_field(wire, logged_run, message, field):
    text = wire.error(
        "POST",
        "runs/log-inputs",
        {"run_id": logged_run, **message},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert field in text


def test_metrics_with_a_model_id_are_also_attached_to_the_model(wire, logged_run, model):
    point = {"key": "acc", "value": 0.8, "timestamp": T0, "step": 4, "model_id": model.model_id}
    wire.ok("POST", "runs/log-batch", {"run_id": logged_run, "metrics": [point]})
    wire.ok("POST", "runs/log-metric", {"run_id": logged_run, **point, "key": "auc", "dataset_name": "val"})
    assert MetricPoint.objects.filter(run__uuid=logged_run, key__name__in=["acc", "auc"]).count() == 2
    assert sorted(LoggedModelMetric.objects.values_list("key", "value", "step", "dataset_name")) == [
        ("acc", 0.8, 4, ""),
        ("auc", 0.8, 4, "val"),
    ]


def test_a_metric_naming_an_unknown_model_stores_nothing(wire, logged_run):
    point = {"key": "acc", "value": 0.8, "timestamp": T0, "step": 4, "model_id": "m-nope"}
    wire.error(
        "POST",
        "runs/log-batch",
        {"run_id": logged_run, "metrics": [point]},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert not MetricPoint.objects.filter(key__name="acc").exists()


# runs/update, delete, restore -------------------------------------------------------------


def test_update_ends_the_run_and_answers_with_run_info(wire, experiment, contributor):
    run_id = create_run(wire, experiment, run_name="r")["info"]["run_id"]
    message = {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED", "end_time": T0 + 60_000}
    info = wire.ok("POST", "runs/update", message)["run_info"]
    assert (info["status"], info["end_time"], info["user_id"]) == (
        "FINISHED",
        T0 + 60_000,
        "carl-contributor",
    )
    event = AuditEvent.objects.get(action="run.updated")
    assert (event.actor, event.after["status"]) == (contributor, "FINISHED")


def test_renaming_a_run_renames_its_name_tag(wire, experiment):
    run_id = create_run(wire, experiment, run_name="before")["info"]["run_id"]
    info = wire.ok("POST", "runs/update", {"run_id": run_id, "run_name": "after"})["run_info"]
    assert info["run_name"] == "after"
    assert Tag.objects.get(key="mlflow.runName").value == "after"


def test_setting_the_name_tag_renames_the_run(wire, experiment):
    run_id = create_run(wire, experiment, run_name="before")["info"]["run_id"]
    wire.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "after"})
    assert get_run(wire, run_id)["info"]["run_name"] == "after"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"status": 3}, "status"),
        ({"end_time": T0 - 1}, "end_time"),
        ({"end_time": -5}, "end_time"),
    ],
)
def test_bad_updates_name_the_field_and_change_nothing(wire, experiment, message, field):
    run_id = create_run(wire, experiment)["info"]["run_id"]
    text = wire.error(
        "POST", "runs/update", {"run_id": run_id, **message}, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert field in text
    assert Run.objects.get().status == "RUNNING"


def test_delete_and_restore_a_run(wire, experiment):
    run_id = create_run(wire, experiment)["info"]["run_id"]
    assert wire.ok("POST", "runs/delete", {"run_id": run_id}) == {}
    assert get_run(wire, run_id)["info"]["lifecycle_stage"] == "deleted"
    wire.error(
        "POST",
        "runs/log-metric",
        {"run_id": run_id, "key": "x", "value": 1, "timestamp": T0},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert wire.ok("POST", "runs/restore", {"run_id": run_id}) == {}
    assert Run.objects.get().lifecycle == "active"


def test_deleting_an_experiment_closes_its_runs_to_every_write_path(wire, experiment):
    """MLflow deletes an experiment's runs with it; a training job still logging to one of them
    is refused on every path, the single-statement ones included, and nothing is stored."""
    run_id = create_run(wire, experiment)["info"]["run_id"]
    wire.ok("POST", "experiments/delete", {"experiment_id": str(experiment.pk)})
    assert get_run(wire, run_id)["info"]["lifecycle_stage"] == "deleted"
    for endpoint, message in [
        ("runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": T0}),
        ("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "1"}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "x", "value": 1, "timestamp": T0}]}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
    ]:
        text = wire.error("POST", endpoint, message, status=400, code="INVALID_PARAMETER_VALUE")
        assert run_id in text, endpoint
    text = wire.error("POST", "runs/restore", {"run_id": run_id}, status=400, code="INVALID_PARAMETER_VALUE")
    assert f"deleted experiment {experiment.pk}" in text
    assert not MetricPoint.objects.exists() and not Param.objects.exists()

    wire.ok("POST", "experiments/restore", {"experiment_id": str(experiment.pk)})
    assert get_run(wire, run_id)["info"]["lifecycle_stage"] == "active"
    wire.ok("POST", "runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": T0})
    assert MetricPoint.objects.count() == 1


def test_a_viewer_cannot_change_a_run(wire, viewer_wire, experiment):
    run_id = create_run(wire, experiment, run_name="r")["info"]["run_id"]
    events = AuditEvent.objects.count()
    for endpoint, message in [
        ("runs/update", {"run_id": run_id, "status": "KILLED"}),
        ("runs/delete", {"run_id": run_id}),
        ("runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": T0}),
        ("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "1"}),
        ("runs/log-batch", {"run_id": run_id, "tags": [{"key": "t", "value": "v"}]}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
        ("runs/delete-tag", {"run_id": run_id, "key": "mlflow.runName"}),
        ("runs/log-inputs", {"run_id": run_id, "datasets": [{"dataset": {"name": "d", "digest": "x"}}]}),
    ]:
        viewer_wire.error("POST", endpoint, message, status=403, code="PERMISSION_DENIED")
    run = Run.objects.get()
    assert (run.status, run.lifecycle) == ("RUNNING", "active")
    assert (
        not MetricPoint.objects.exists() and not Param.objects.exists() and not DatasetInput.objects.exists()
    )
    assert set(Tag.objects.values_list("key", flat=True)) == {"mlflow.runName", "mlflow.user"}
    assert AuditEvent.objects.count() == events


# log-metric, log-parameter, log-batch, tags --------------------------------------------------


@pytest.fixture
def run_id(wire, experiment) -> str:
    return create_run(wire, experiment, run_name="target")["info"]["run_id"]


def points(run_id: str) -> list[tuple]:
    rows = MetricPoint.objects.filter(run__uuid=run_id).order_by("key__name", "step", "timestamp")
    return list(rows.values_list("key__name", "step", "timestamp", "value", "is_nan"))


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0.25, (0.25, False)), (3, (3.0, False)), ("NaN", (0.0, True)), ("-Infinity", (float("-inf"), False))],
)
def test_log_metric_accepts_numbers_and_protobuf_spellings(wire, run_id, value, stored):
    message = {
        "run_id": run_id,
        "run_uuid": run_id,
        "key": "loss",
        "value": value,
        "timestamp": T0,
        "step": 2,
    }
    assert wire.ok("POST", "runs/log-metric", message) == {}
    assert points(run_id) == [("loss", 2, T0, *stored)]


def test_log_metric_without_step_or_timestamp_is_step_zero_now(wire, run_id, contributor):
    before = int(time.time() * 1000)
    wire.ok("POST", "runs/log-metric", {"run_id": run_id, "key": "loss", "value": 1.5})
    [(key, step, timestamp, value, _)] = points(run_id)
    assert (key, step, value) == ("loss", 0, 1.5)
    assert before <= timestamp <= int(time.time() * 1000)
    event = AuditEvent.objects.filter(action="run.batch_logged").get()
    assert (event.actor, event.object_id) == (contributor, run_id)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"value": 1}, "key"),
        ({"key": "loss"}, "value"),
        ({"key": "loss", "value": "abc"}, "value"),
        ({"key": "loss", "value": True}, "value"),
        ({"key": "loss", "value": 1, "step": "two"}, "step"),
        ({"key": "loss", "value": 1, "timestamp": -1}, "timestamp"),
        ({"key": "a" * 251, "value": 1}, "key"),
        ({"key": "../up", "value": 1}, "key"),
        ({"key": "loss\n", "value": 1}, "key"),  # `$` alone would match before the newline
    ],
)
def test_bad_metrics_name_the_field_and_store_nothing(wire, run_id, message, field):
    text = wire.error(
        "POST", "runs/log-metric", {"run_id": run_id, **message}, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert field in text
    assert points(run_id) == []


def test_log_metric_to_an_unknown_run_is_404(wire):
    wire.error(
        "POST",
        "runs/log-metric",
        {"run_id": "0" * 32, "key": "x", "value": 1, "timestamp": T0},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_a_param_is_immutable_once_logged(wire, run_id):
    message = {"run_id": run_id, "key": "lr", "value": "0.1"}
    assert wire.ok("POST", "runs/log-parameter", message) == {}
    assert wire.ok("POST", "runs/log-parameter", message) == {}  # the same value again is fine
    text = wire.error(
        "POST", "runs/log-parameter", {**message, "value": "0.2"}, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert "0.1" in text and "0.2" in text
    assert Param.objects.get().value == "0.1"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"value": "1"}, "key"),
        ({"key": "lr", "value": 0.1}, "value"),
        ({"key": "lr", "value": "x" * 6001}, "value"),
        ({"key": "lr\n", "value": "1"}, "key"),
    ],
)
def test_bad_params_name_the_field(wire, run_id, message, field):
    text = wire.error(
        "POST",
        "runs/log-parameter",
        {"run_id": run_id, **message},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert field in text
    assert not Param.objects.exists()


def test_log_batch_stores_metrics_params_and_tags_in_one_audited_batch(wire, run_id, contributor):
    message = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 1.0 / (step + 1), "timestamp": T0 + step, "step": step, "run_id": run_id}
            for step in range(1000)
        ],
        "params": [{"key": "lr", "value": "0.01"}, {"key": "empty", "value": ""}],
        "tags": [{"key": "team", "value": "vision"}],
    }
    assert wire.ok("POST", "runs/log-batch", message) == {}
    assert MetricPoint.objects.filter(run__uuid=run_id).count() == 1000
    assert dict(Param.objects.values_list("key", "value")) == {"lr": "0.01", "empty": ""}
    assert Tag.objects.get(key="team").value == "vision"
    event = AuditEvent.objects.get(action="run.batch_logged")
    assert event.actor == contributor
    assert event.after["metrics"] == {"received": 1000, "inserted": 1000, "keys": ["loss"]}
    # An exact re-send (a client retry) stores nothing twice.
    wire.ok("POST", "runs/log-batch", message)
    assert MetricPoint.objects.filter(run__uuid=run_id).count() == 1000


def metric(step: int, **fields) -> dict:
    return {"key": "loss", "value": 0.5, "timestamp": T0, "step": step, **fields}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (
            {"metrics": [metric(0), metric(1), metric(2), {"key": "loss", "timestamp": T0}]},
            "metrics[3].value",
        ),
        ({"metrics": [metric(0), {"value": 1.0}]}, "metrics[1].key"),
        ({"metrics": [metric(0, value="abc")]}, "metrics[0].value"),
        ({"metrics": [metric(0, value=None)]}, "metrics[0].value"),
        ({"metrics": [{**metric(0), "step": 1.5}]}, "metrics[0].step"),
        ({"metrics": [metric(0, timestamp="soon")]}, "metrics[0].timestamp"),
        ({"metrics": [metric(0, key=7)]}, "metrics[0].key"),
        ({"metrics": [metric(step) for step in range(1001)]}, "metrics"),
        ({"metrics": {"key": "loss"}}, "metrics"),
        ({"metrics": ["loss"]}, "metrics[0]"),
        ({"metrics": [metric(0)], "params": [{"key": "p", "value": "x" * 6001}]}, "params[0].value"),
        ({"metrics": [metric(0)], "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}, "params"),
        ({"metrics": [metric(0)], "tags": [{"key": "t", "value": "x" * 8001}]}, "tags[0].value"),
        ({"metrics": [metric(0)], "tags": [{"value": "x"}]}, "tags[0].key"),
        ({"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, "params[1].value"),
    ],
)
def test_a_bad_batch_is_400_naming_the_field_and_stores_nothing(wire, run_id, message, field):
    text = wire.error(
        "POST", "runs/log-batch", {"run_id": run_id, **message}, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert field in text
    assert points(run_id) == []
    assert not Param.objects.exists()
    assert not Tag.objects.filter(key="t").exists()


def test_a_batch_changing_a_param_is_refused_whole(wire, run_id):
    wire.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    message = {"run_id": run_id, "metrics": [metric(0)], "params": [{"key": "lr", "value": "0.5"}]}
    wire.error("POST", "runs/log-batch", message, status=400, code="INVALID_PARAMETER_VALUE")
    assert points(run_id) == []


def test_set_tag_and_delete_tag(wire, run_id):
    assert wire.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "team", "value": "vision"}) == {}
    assert wire.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "team", "value": "nlp"}) == {}
    assert Tag.objects.get(key="team").value == "nlp"
    assert wire.ok("POST", "runs/delete-tag", {"run_id": run_id, "key": "team"}) == {}
    assert not Tag.objects.filter(key="team").exists()
    text = wire.error(
        "POST",
        "runs/delete-tag",
        {"run_id": run_id, "key": "team"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert "team" in text


def test_a_name_tag_that_is_no_valid_run_name_is_refused(wire, run_id):
    wire.error(
        "POST",
        "runs/set-tag",
        {"run_id": run_id, "key": "mlflow.runName", "value": "x" * 300},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert Run.objects.get(uuid=run_id).name == "target"


def test_dataset_input_tags_come_back_in_the_order_sent(wire, logged_run):
    tags = [
        {"key": "z", "value": "1"},
        {"key": "mlflow.data.context", "value": "eval"},
        {"key": "a", "value": ""},
    ]
    dataset = {"name": "ordered", "digest": "d2", "source_type": "local", "source": "{}"}
    wire.ok(
        "POST", "runs/log-inputs", {"run_id": logged_run, "datasets": [{"tags": tags, "dataset": dataset}]}
    )
    run = wire.ok("GET", "runs/get", {"run_id": logged_run})["run"]
    (logged,) = [d for d in run["inputs"]["dataset_inputs"] if d["dataset"]["name"] == "ordered"]
    assert logged["tags"] == tags


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        (
            {"value": "v"},
            "Invalid value null for parameter 'datasets[0].tags[0].key' supplied:  Hint: Value was of type "
            "'NoneType'. See the API docs for more information about request parameters.",
        ),
        (
            {"key": "k", "value": 5},
            "Invalid value 5 for parameter 'datasets[0].tags[0].value' supplied:  Hint: Value was of type "
            "'int'. See the API docs for more information about request parameters.",
        ),
        (
            {"key": "k" * 256, "value": "v"},
            "datasets[0].tags[0].key: is 256 characters long; the limit is 255",
        ),
        (
            {"key": "k", "value": "v" * 501},
            "datasets[0].tags[0].value: is 501 characters long; the limit is 500",
        ),
    ],
)
def test_a_bad_input_tag_is_refused_naming_it_and_nothing_is_stored(wire, logged_run, tag, message):
    dataset = {"name": "refused", "digest": "d3"}
    text = wire.error(
        "POST",
        "runs/log-inputs",
        {"run_id": logged_run, "datasets": [{"tags": [tag], "dataset": dataset}]},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert text == message
    assert not DatasetInput.objects.filter(name="refused").exists()


@pytest.mark.parametrize(
    ("endpoint", "message", "field"),
    [
        ("experiments/create", {"name": 123456789}, "name"),
        ("experiments/create", {"name": "sweep", "artifact_location": 5}, "artifact_location"),
        ("runs/create", {"run_name": 3.5}, "run_name"),
        ("runs/create", {"user_id": 3}, "user_id"),
        ("runs/create", {"tags": [{"key": "team", "value": 1}]}, "tags[0].value"),
        ("registered-models/create", {"name": 5}, "name"),
        ("registered-models/create", {"name": "digits", "description": 5}, "description"),
    ],
)
def test_a_number_where_mlflow_expects_a_string_is_invalid_parameter_value(
    wire, experiment, endpoint, message, field
):
    if endpoint == "runs/create":
        message = {"experiment_id": str(experiment.pk), **message}
    text = wire.error("POST", endpoint, message, status=400, code="INVALID_PARAMETER_VALUE")
    assert f"for parameter '{field}' supplied" in text
    assert not Run.objects.exists()
