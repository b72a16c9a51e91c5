"""Logged models through the services: roles, audit events, immutability, idempotency, limits."""

from __future__ import annotations

import io
import math
import re

import pytest

from audit.models import AuditEvent
from config.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from config.inputs import TagInput
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import (
    Artifact,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    RunModelLink,
)
from tracker.selectors import artifact_directory, get_owned_artifact, logged_model_details
from tracker.services import (
    ModelMetricInput,
    ParamInput,
    create_logged_model,
    delete_artifact,
    delete_logged_model,
    delete_logged_model_tag,
    finalize_logged_model,
    link_run_models,
    log_logged_model_params,
    log_model_metrics,
    set_logged_model_tags,
    store_artifact,
)

pytestmark = pytest.mark.django_db


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


@pytest.fixture
def model(contributor, experiment, run):
    return create_logged_model(
        actor=contributor,
        experiment=experiment,
        name="classifier",
        model_type="sklearn",
        source_run=run,
        params=[ParamInput("alpha", "0.5")],
        tags=[TagInput("team", "vision")],
    )


# Creating ---------------------------------------------------------------------------------


def test_a_created_model_is_pending_with_its_own_artifact_folder(model, contributor, experiment, run):
    assert re.fullmatch(r"m-[0-9a-f]{32}", model.model_id)
    assert model.artifact_uri == f"mlflow-artifacts:/{experiment.pk}/models/{model.model_id}/artifacts"
    assert (model.status, model.creator, model.source_run, model.name) == (
        LoggedModelStatus.PENDING,
        contributor,
        run,
        "classifier",
    )
    (details,) = logged_model_details([model])
    assert (details.params, details.tags, details.source_run_id) == (
        {"alpha": "0.5"},
        {"team": "vision"},
        run.uuid,
    )


def test_creating_a_model_is_one_audit_event_by_its_creator(model, contributor, run):
    (event,) = _events("logged_model.created")
    assert (event.actor, event.object_id) == (contributor, model.model_id)
    assert event.after["source_run"] == run.uuid
    assert event.after["params"] == {"alpha": "0.5"}


def test_a_model_created_without_a_name_gets_a_generated_one(contributor, experiment):
    model = create_logged_model(actor=contributor, experiment=experiment)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", model.name)


def test_the_source_run_may_belong_to_another_experiment_as_in_mlflow(contributor, experiment):
    other_run = RunFactory(experiment=ExperimentFactory(name="elsewhere"))
    model = create_logged_model(actor=contributor, experiment=experiment, source_run=other_run)
    assert model.source_run == other_run


def test_a_viewer_cannot_create_a_model(viewer, experiment):
    with pytest.raises(PermissionDenied) as error:
        create_logged_model(actor=viewer, experiment=experiment, name="m")
    assert str(error.value) == "Creating a logged model needs the contributor role."
    assert not LoggedModel.objects.exists()
    assert not _events("logged_model.created")


def test_a_model_cannot_be_created_in_a_deleted_experiment(contributor, experiment):
    experiment.lifecycle = Lifecycle.DELETED
    experiment.save()
    with pytest.raises(InvalidInput) as error:
        create_logged_model(actor=contributor, experiment=experiment, name="m")
    assert error.value.field == "experiment_id"


@pytest.mark.parametrize("name", ["a/b", "a.b", "a:b", "50%", "it's", 'say "x"'])
def test_model_names_refuse_the_characters_mlflow_refuses(contributor, experiment, name):
    with pytest.raises(InvalidInput) as error:
        create_logged_model(actor=contributor, experiment=experiment, name=name)
    assert error.value.field == "name"


def test_more_than_100_params_at_creation_is_refused(contributor, experiment):
    params = [ParamInput(f"p{i}", "1") for i in range(101)]
    with pytest.raises(InvalidInput) as error:
        create_logged_model(actor=contributor, experiment=experiment, params=params)
    assert str(error.value) == "params: 101 items in one batch; the limit is 100"


def test_a_bad_tag_key_is_named_by_its_position(contributor, experiment):
    with pytest.raises(InvalidInput) as error:
        create_logged_model(
            actor=contributor, experiment=experiment, tags=[TagInput("ok", "1"), TagInput("../x", "2")]
        )
    assert error.value.field == "tags[1].key"
    assert not LoggedModel.objects.exists()


# Finalizing and deleting -------------------------------------------------------------------


def test_finalizing_sets_the_status_and_records_before_and_after(model, contributor):
    finalize_logged_model(actor=contributor, model=model, status=LoggedModelStatus.READY)

    model.refresh_from_db()
    (event,) = _events("logged_model.finalized")
    assert model.status == LoggedModelStatus.READY
    assert (event.before["status"], event.after["status"]) == ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY")


def test_finalizing_twice_with_the_same_status_records_one_event(model, contributor):
    finalize_logged_model(actor=contributor, model=model, status=LoggedModelStatus.READY)
    finalize_logged_model(actor=contributor, model=model, status=LoggedModelStatus.READY)
    assert len(_events("logged_model.finalized")) == 1


def test_a_model_cannot_be_finalized_as_pending(model, contributor):
    with pytest.raises(InvalidInput) as error:
        finalize_logged_model(actor=contributor, model=model, status=LoggedModelStatus.PENDING)
    assert error.value.field == "status"


def test_a_viewer_cannot_finalize_a_model(model, viewer):
    with pytest.raises(PermissionDenied):
        finalize_logged_model(actor=viewer, model=model, status=LoggedModelStatus.READY)
    model.refresh_from_db()
    assert model.status == LoggedModelStatus.PENDING


def test_deleting_is_soft_and_recorded_once(model, contributor):
    delete_logged_model(actor=contributor, model=model)
    delete_logged_model(actor=contributor, model=model)

    model.refresh_from_db()
    assert model.lifecycle == Lifecycle.DELETED
    assert len(_events("logged_model.deleted")) == 1


def test_a_deleted_model_refuses_changes(model, contributor):
    delete_logged_model(actor=contributor, model=model)
    with pytest.raises(InvalidInput) as error:
        set_logged_model_tags(actor=contributor, model=model, tags=[TagInput("k", "v")])
    assert str(error.value) == f"model_id: logged model {model.model_id} is deleted"


# Tags and params ---------------------------------------------------------------------------


def test_tags_are_mutable_and_each_change_records_the_old_value(model, contributor):
    set_logged_model_tags(
        actor=contributor, model=model, tags=[TagInput("team", "nlp"), TagInput("new", "1")]
    )

    event = _events("logged_model.tags_set")[-1]
    assert dict(LoggedModelTag.objects.filter(model=model).values_list("key", "value")) == {
        "team": "nlp",
        "new": "1",
    }
    assert (event.before, event.after) == ({"team": "vision"}, {"team": "nlp", "new": "1"})


def test_setting_tags_to_their_current_values_changes_nothing(model, contributor):
    set_logged_model_tags(actor=contributor, model=model, tags=[TagInput("team", "vision")])
    assert not _events("logged_model.tags_set")


def test_deleting_a_tag_that_is_not_there_names_it(model, contributor):
    with pytest.raises(NotFound) as error:
        delete_logged_model_tag(actor=contributor, model=model, key="absent")
    assert str(error.value) == f"tag_key: logged model {model.model_id} has no tag 'absent'"


def test_deleting_a_tag_removes_it_and_records_its_value(model, contributor):
    delete_logged_model_tag(actor=contributor, model=model, key="team")

    (event,) = _events("logged_model.tag_deleted")
    assert not LoggedModelTag.objects.filter(model=model).exists()
    assert event.before == {"team": "vision"}


def test_params_are_immutable_like_run_params(model, contributor):
    log_logged_model_params(actor=contributor, model=model, params=[ParamInput("alpha", "0.5")])
    with pytest.raises(Conflict) as error:
        log_logged_model_params(actor=contributor, model=model, params=[ParamInput("alpha", "0.9")])

    assert error.value.field == "params.alpha"
    assert "already logged as '0.5'" in str(error.value)
    assert not _events("logged_model.params_logged")  # re-logging the same value changed nothing


def test_new_params_are_added_with_one_event(model, contributor):
    log_logged_model_params(
        actor=contributor, model=model, params=[ParamInput("alpha", "0.5"), ParamInput("depth", "3")]
    )
    (event,) = _events("logged_model.params_logged")
    assert event.after == {"depth": "3"}
    assert LoggedModelParam.objects.filter(model=model).count() == 2


def test_a_params_call_with_a_conflict_stores_none_of_its_params(model, contributor):
    with pytest.raises(Conflict):
        log_logged_model_params(
            actor=contributor, model=model, params=[ParamInput("depth", "3"), ParamInput("alpha", "1")]
        )
    assert not LoggedModelParam.objects.filter(model=model, key="depth").exists()


# Links to runs and model metrics ----------------------------------------------------------


def test_linking_an_unknown_model_names_its_id_and_position(model, contributor, run):
    with pytest.raises(NotFound) as error:
        link_run_models(actor=contributor, run=run, links=[(model.model_id, 0), ("m-" + "0" * 32, 0)])
    assert str(error.value) == f"models[1].model_id: logged model '{'m-' + '0' * 32}' does not exist"
    assert not RunModelLink.objects.exists()


def test_linking_is_idempotent(model, contributor, run):
    link_run_models(actor=contributor, run=run, links=[(model.model_id, 3)])
    link_run_models(actor=contributor, run=run, links=[(model.model_id, 3)])

    assert list(RunModelLink.objects.values_list("run", "model", "direction", "step")) == [
        (run.pk, model.pk, "output", 3)
    ]
    (event,) = _events("run.models_linked")
    assert event.after == {"direction": "output", "models": {model.model_id: 3}}


def test_a_run_may_use_a_model_as_input(model, contributor, run):
    link_run_models(
        actor=contributor, run=run, links=[(model.model_id, 0)], direction=RunModelLink.Direction.INPUT
    )
    assert RunModelLink.objects.get().direction == "input"


def test_a_viewer_cannot_link_models(model, viewer, run):
    with pytest.raises(PermissionDenied):
        link_run_models(actor=viewer, run=run, links=[(model.model_id, 0)])


def _metric(model, key="acc", value=0.9, step=1, timestamp=1000, **dataset):
    return ModelMetricInput(model.model_id, key, value, step, timestamp, **dataset)


def test_model_metrics_are_stored_once_however_often_they_are_sent(model, contributor, run):
    batch = [
        _metric(model),
        _metric(model, "loss", math.nan),
        _metric(model, dataset_name="val", dataset_digest="ab"),
    ]
    log_model_metrics(actor=contributor, run=run, metrics=batch)
    log_model_metrics(actor=contributor, run=run, metrics=batch)

    rows = list(
        LoggedModelMetric.objects.order_by("key", "dataset_name").values_list(
            "key", "value", "is_nan", "dataset_name", "run"
        )
    )
    assert rows == [
        ("acc", 0.9, False, "", run.pk),
        ("acc", 0.9, False, "val", run.pk),
        ("loss", 0.0, True, "", run.pk),
    ]
    (event,) = _events("logged_model.metrics_logged")
    assert (event.object_id, event.after) == (
        model.model_id,
        {"run": run.uuid, "points": 3, "keys": ["acc", "loss"]},
    )


def test_model_metrics_read_back_with_nan_restored(model, contributor, run):
    log_model_metrics(actor=contributor, run=run, metrics=[_metric(model, "loss", math.nan)])
    ((point,),) = [details.metrics for details in logged_model_details([model])]
    assert point.key == "loss" and math.isnan(point.value) and point.run_id == run.uuid


def test_metrics_for_an_unknown_model_store_nothing(model, contributor, run):
    unknown = ModelMetricInput("m-unknown", "acc", 1.0, 0, 1)
    with pytest.raises(NotFound) as error:
        log_model_metrics(actor=contributor, run=run, metrics=[_metric(model), unknown])
    assert error.value.field == "metrics[1].model_id"
    assert not LoggedModelMetric.objects.exists()


def test_logging_no_model_metrics_costs_no_query(contributor, run, django_assert_num_queries):
    with django_assert_num_queries(0):
        log_model_metrics(actor=contributor, run=run, metrics=[])


def test_a_bad_model_metric_value_is_named(model, contributor, run):
    with pytest.raises(InvalidInput) as error:
        log_model_metrics(actor=contributor, run=run, metrics=[_metric(model, value="high")])
    assert error.value.field == "metrics[0].value"


# A logged model's files --------------------------------------------------------------------


def test_model_files_live_in_the_models_folder_of_storage(model, contributor):
    artifact = store_artifact(
        actor=contributor, owner=model, path="sub/MLmodel", content=io.BytesIO(b"flavors: {}")
    )

    assert artifact.file.name.startswith(f"models/{model.model_id}/sub/")
    assert (artifact.run, artifact.logged_model) == (None, model)
    with get_owned_artifact(owner=model, path="sub/MLmodel").file.open("rb") as handle:
        assert handle.read() == b"flavors: {}"
    (event,) = _events("logged_model.artifact_stored")
    assert event.object_id == model.model_id


def test_a_viewer_cannot_store_model_files(model, viewer):
    with pytest.raises(PermissionDenied):
        store_artifact(actor=viewer, owner=model, path="x.bin", content=io.BytesIO(b"x"))
    assert not Artifact.objects.exists()


def test_a_folder_lists_its_files_and_sub_folders_one_level_deep(model, contributor):
    for path, size in (("MLmodel", 3), ("data/a.bin", 1), ("data/deep/b.bin", 2), ("conda.yaml", 4)):
        store_artifact(actor=contributor, owner=model, path=path, content=io.BytesIO(b"x" * size))

    root = [(e.path, e.is_dir, e.size) for e in artifact_directory(owner=model)]
    data = [(e.path, e.is_dir, e.size) for e in artifact_directory(owner=model, path="data")]

    assert root == [("MLmodel", False, 3), ("conda.yaml", False, 4), ("data", True, None)]
    assert data == [("data/a.bin", False, 1), ("data/deep", True, None)]
    assert artifact_directory(owner=model, path="MLmodel") == []
    assert artifact_directory(owner=model, path="Data") == []


def test_deleting_a_model_folder_removes_its_files_after_commit(
    model, contributor, django_capture_on_commit_callbacks
):
    stored = store_artifact(actor=contributor, owner=model, path="data/a.bin", content=io.BytesIO(b"a"))
    storage, name = stored.file.storage, stored.file.name

    with django_capture_on_commit_callbacks(execute=True):
        delete_artifact(actor=contributor, owner=model, path="data")

    assert not Artifact.objects.exists()
    assert not storage.exists(name)
    with pytest.raises(NotFound) as error:
        delete_artifact(actor=contributor, owner=model, path="data")
    assert str(error.value) == f"path: logged model {model.model_id} has no artifact at 'data'"
