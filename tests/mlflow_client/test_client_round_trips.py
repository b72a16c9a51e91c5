"""Whatever the client sends comes back from the matching get and search calls, field for field:
one round trip per entity (issue #12, section 1)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, LoggedModelOutput

pytestmark = pytest.mark.django_db(transaction=True)


def _tags(entity_tags) -> list[tuple[str, str]]:
    return [(tag.key, tag.value) for tag in entity_tags]


def test_log_input_keeps_every_input_tag_in_the_order_given(client):
    frame = pd.DataFrame({"x": [1, 2, 3]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train")
    mlflow.set_experiment("input-tags")
    with mlflow.start_run() as active:
        mlflow.log_input(dataset, "train", {"foo": "baz", "alpha": "1"})
    fetched = client.get_run(active.info.run_id).inputs.dataset_inputs
    # The client appends the context tag after the caller's tags; the order comes back as sent.
    expected = [("foo", "baz"), ("alpha", "1"), ("mlflow.data.context", "train")]
    assert [_tags(d.tags) for d in fetched] == [expected]
    found = client.search_runs([active.info.experiment_id])
    assert [_tags(d.tags) for d in found[0].inputs.dataset_inputs] == [expected]


def test_log_inputs_returns_the_dataset_with_its_tags_and_the_model_inputs(client):
    experiment_id = client.create_experiment("log-inputs")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(experiment_id, name="encoder", source_run_id=run.info.run_id)
    dataset = Dataset(name="eval", digest="abc123", source_type="local", source="/data/eval", schema="{}")
    client.log_inputs(
        run.info.run_id,
        datasets=[DatasetInput(dataset, tags=[InputTag("tag1", "value1"), InputTag("tag0", "value0")])],
        models=[LoggedModelInput(model.model_id)],
    )
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 3)])
    fetched = client.get_run(run.info.run_id)
    (dataset_input,) = fetched.inputs.dataset_inputs
    assert _tags(dataset_input.tags) == [("tag1", "value1"), ("tag0", "value0")]
    assert (dataset_input.dataset.name, dataset_input.dataset.digest) == ("eval", "abc123")
    assert (dataset_input.dataset.source_type, dataset_input.dataset.source) == ("local", "/data/eval")
    assert dataset_input.dataset.schema == "{}"
    assert [m.model_id for m in fetched.inputs.model_inputs] == [model.model_id]
    assert [(m.model_id, m.step) for m in fetched.outputs.model_outputs] == [(model.model_id, 3)]


def test_a_logged_model_returns_its_params_tags_and_type_from_get_and_search(client):
    experiment_id = client.create_experiment("logged-model-trip")
    run = client.create_run(experiment_id)
    created = client.create_logged_model(
        experiment_id,
        name="ranker",
        source_run_id=run.info.run_id,
        tags={"team": "search", "stage": "draft"},
        params={"depth": "6", "eta": "0.3"},
        model_type="xgboost",
    )
    client.set_logged_model_tags(created.model_id, {"reviewed": "no"})
    for model in (client.get_logged_model(created.model_id), client.search_logged_models([experiment_id])[0]):
        assert model.name == "ranker"
        assert model.model_type == "xgboost"
        assert model.source_run_id == run.info.run_id
        assert model.params == {"depth": "6", "eta": "0.3"}
        assert model.tags == {"team": "search", "stage": "draft", "reviewed": "no"}


def test_a_registered_model_and_its_version_return_tags_and_descriptions(client):
    experiment_id = client.create_experiment("registry-trip")
    run = client.create_run(experiment_id)
    client.create_registered_model("trip", tags={"owner": "nlp"}, description="the trip model")
    client.create_model_version(
        "trip",
        f"runs:/{run.info.run_id}/model",
        run_id=run.info.run_id,
        tags={"data": "v2"},
        description="first cut",
    )
    client.set_model_version_tag("trip", "1", "checked", "yes")
    for model in (client.get_registered_model("trip"), client.search_registered_models()[0]):
        assert (model.name, model.description, model.tags) == ("trip", "the trip model", {"owner": "nlp"})
    for version in (client.get_model_version("trip", "1"), client.search_model_versions("name='trip'")[0]):
        assert version.description == "first cut"
        assert version.tags == {"data": "v2", "checked": "yes"}
        assert version.run_id == run.info.run_id


def test_an_experiment_returns_its_tags_from_get_and_search(client):
    experiment_id = client.create_experiment("tagged", tags={"team": "vision", "mlflow.note.content": "hi"})
    client.set_experiment_tag(experiment_id, "phase", "2")
    for experiment in (
        client.get_experiment(experiment_id),
        client.search_experiments(filter_string="name = 'tagged'")[0],
    ):
        assert experiment.tags == {"team": "vision", "mlflow.note.content": "hi", "phase": "2"}
