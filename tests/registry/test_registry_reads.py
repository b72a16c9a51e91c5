"""Registry reads added for the MLflow API: the search language over models and versions (with
MLflow's prompt rule), where a version's run comes from, download URIs, records in bulk; and
versions registered from MLflow 3 logged models."""

import pytest

from accounts.permissions import SYSTEM_READER
from config.exceptions import InvalidInput, NotFound
from config.inputs import TagInput
from registry.models import ModelVersion, RegisteredModel
from registry.selectors import (
    canonical_stage,
    download_uri,
    latest_versions,
    registered_model_records,
    search_model_versions,
    search_registered_models,
    version_origin,
    version_records,
    versions_of_run,
)
from registry.services import (
    create_model_version,
    create_registered_model,
    delete_model_version,
    set_alias,
    set_model_version_tag,
    transition_stage,
)
from tracker.models import LoggedModel
from tracker.services import start_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(contributor, experiment):
    return start_run(actor=contributor, experiment=experiment, name="trained")


@pytest.fixture
def logged_model(experiment, run):
    model = LoggedModel.objects.create(experiment=experiment, name="model", source_run=run)
    model.artifact_uri = f"mlflow-artifacts:/{experiment.pk}/models/{model.model_id}/artifacts"
    model.save()
    return model


def model_names(filter_string: str) -> list[str]:
    return [
        record.name
        for record in search_registered_models(user=SYSTEM_READER, filter_string=filter_string).items
    ]


@pytest.fixture
def catalogue(contributor):
    def register(name: str, **tags: str) -> None:
        tag_inputs = [TagInput(key.replace("__", "."), value) for key, value in tags.items()]
        create_registered_model(actor=contributor, name=name, tags=tag_inputs)

    register("digits", team="vision", stage="beta")
    register("sentiment", team="nlp")
    register("untagged")
    register("greeting", mlflow__prompt__is_prompt="true")
    register("plain", mlflow__prompt__is_prompt="false")


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ["digits", "plain", "sentiment", "untagged"]),
        ("tags.team = 'vision' OR tags.team = 'nlp'", ["digits", "sentiment"]),
        ("NOT tags.team = 'vision'", ["plain", "sentiment", "untagged"]),
        ("tags.team != 'vision'", ["sentiment"]),
        ("tags.team IS NULL", ["plain", "untagged"]),
        ("(name = 'digits' OR name = 'untagged') AND tags.stage IS NOT NULL", ["digits"]),
        ("tags.`mlflow.prompt.is_prompt` = 'false'", ["digits", "plain", "sentiment", "untagged"]),
        ("tags.`mlflow.prompt.is_prompt` != 'true' AND name LIKE '%a%'", ["plain", "untagged"]),
        ("tags.`mlflow.prompt.is_prompt` = 'true'", ["greeting"]),
        ("tags.`mlflow.prompt.is_prompt` != 'false'", ["greeting"]),
        ("name = 'greeting'", []),
    ],
)
def test_model_filters_follow_mlflow_and_leave_prompts_out_unless_asked(catalogue, filter_string, expected):
    assert model_names(filter_string) == expected


def test_filter_errors_name_the_identifier_and_where_it_is(catalogue):
    with pytest.raises(InvalidInput) as error:
        search_registered_models(user=SYSTEM_READER, filter_string="name = 'a' AND run_id = 'b'")
    assert str(error.value) == (
        "filter: Invalid attribute key 'run_id' at position 15. Valid values are ['name']"
    )
    with pytest.raises(InvalidInput) as error:
        search_registered_models(user=SYSTEM_READER, filter_string="name IS NULL")
    assert str(error.value).startswith("filter: Invalid comparator 'IS NULL' for name at position 0")


def test_deep_nesting_is_refused_before_it_can_exhaust_the_stack(catalogue):
    with pytest.raises(InvalidInput, match="nested more than"):
        search_registered_models(user=SYSTEM_READER, filter_string="NOT " * 200 + "name = 'a'")


def test_versions_of_a_prompt_are_left_out_of_version_search(contributor, run):
    prompt = create_registered_model(actor=contributor, name="greeting")
    first = create_model_version(actor=contributor, model=prompt, run=run)
    create_model_version(actor=contributor, model=prompt, run=run)
    set_model_version_tag(actor=contributor, version=first, tag=TagInput("mlflow.prompt.is_prompt", "true"))
    model = create_registered_model(actor=contributor, name="digits")
    create_model_version(actor=contributor, model=model, run=run)

    assert [(v.name, v.version) for v in search_model_versions(user=SYSTEM_READER).items] == [("digits", 1)]
    asked = search_model_versions(
        user=SYSTEM_READER, filter_string="tags.`mlflow.prompt.is_prompt` = 'true'"
    ).items
    assert [(v.name, v.version) for v in asked] == [("greeting", 1)]


def test_version_origin_prefers_run_id_then_the_logged_model_then_a_runs_source(
    contributor, experiment, run, logged_model
):
    other = start_run(actor=contributor, experiment=experiment)
    assert version_origin(run_id=other.uuid, model_id="", source="").run == other
    from_model = version_origin(run_id="", model_id=logged_model.model_id, source="")
    assert (from_model.run, from_model.logged_model) == (run, logged_model)
    from_source = version_origin(run_id="", model_id="", source=f"models:/{logged_model.model_id}")
    assert (from_source.run, from_source.logged_model) == (run, logged_model)
    from_path = version_origin(run_id="", model_id="", source=f"runs:/{other.uuid}/nested/model")
    assert (from_path.run, from_path.logged_model) == (other, None)


def test_version_origin_refuses_what_cannot_be_evidence(contributor, experiment, run, logged_model):
    with pytest.raises(InvalidInput) as error:
        version_origin(run_id="", model_id="", source="file:///tmp/model")
    assert error.value.field == "run_id"
    with pytest.raises(InvalidInput) as error:
        version_origin(run_id=run.uuid, model_id="", source="runs:/another/model")
    assert str(error.value) == f"source: source 'runs:/another/model' names another run than {run.uuid!r}"
    logged_model.lifecycle = "deleted"
    logged_model.save()
    with pytest.raises(NotFound):
        version_origin(run_id="", model_id=logged_model.model_id, source="")


def test_a_logged_model_version_defaults_its_source_to_the_model_uri(contributor, run, logged_model):
    model = create_registered_model(actor=contributor, name="digits")
    version = create_model_version(actor=contributor, model=model, run=run, logged_model=logged_model)
    assert version.source == f"models:/{logged_model.model_id}"
    assert download_uri(version=version) == logged_model.artifact_uri


def test_a_source_climbing_out_with_dot_dot_is_refused(contributor, run):
    model = create_registered_model(actor=contributor, name="digits")
    for source in (f"runs:/{run.uuid}/../other", f"runs:/{run.uuid}/%2E%2E/other", "s3://b/a\\..\\c"):
        with pytest.raises(InvalidInput) as error:
            create_model_version(actor=contributor, model=model, run=run, source=source)
        assert error.value.field == "source"
    assert not ModelVersion.objects.exists()


def test_download_uri_falls_back_to_the_stored_source_when_nothing_resolves(contributor, run):
    model = create_registered_model(actor=contributor, name="digits")
    gone = create_model_version(actor=contributor, model=model, run=run, source="models:/m-0123abcd")
    elsewhere = create_model_version(actor=contributor, model=model, run=run, source="runs:/unknown/model")
    assert download_uri(version=gone) == "models:/m-0123abcd"
    assert download_uri(version=elsewhere) == "runs:/unknown/model"


def test_latest_versions_are_per_stage_and_stages_are_case_insensitive(contributor, run):
    model = create_registered_model(actor=contributor, name="digits")
    v1, v2, v3, _ = (create_model_version(actor=contributor, model=model, run=run) for _ in range(4))
    transition_stage(actor=contributor, version=v1, stage="Staging")
    transition_stage(actor=contributor, version=v3, stage="Staging")
    transition_stage(actor=contributor, version=v2, stage="Archived")
    latest = latest_versions(model=model, stages=[])
    assert [(r.version, r.stage) for r in latest] == [(2, "Archived"), (3, "Staging"), (4, "None")]
    assert [r.version for r in latest_versions(model=model, stages=["STAGING"])] == [3]
    assert canonical_stage(" archived ") == "Archived"


def test_records_are_read_in_a_fixed_number_of_queries(contributor, run, django_assert_num_queries):
    for index in range(5):
        model = create_registered_model(actor=contributor, name=f"m{index}", tags=[TagInput("k", "v")])
        versions = [create_model_version(actor=contributor, model=model, run=run) for _ in range(3)]
        transition_stage(actor=contributor, version=versions[0], stage="Staging")
        set_alias(actor=contributor, model=model, alias="champion", version=versions[1])
    with django_assert_num_queries(6):
        records = registered_model_records(RegisteredModel.objects.order_by("name"))
    assert [len(record.latest_versions) for record in records] == [2] * 5
    assert records[0].aliases == (("champion", 2),)
    with django_assert_num_queries(3):
        versions = version_records(ModelVersion.objects.order_by("model__name", "version"))
    assert len(versions) == 15
    assert versions[1].aliases == ("champion",)


def test_the_versions_of_a_run_leave_out_deleted_ones_and_carry_their_aliases(contributor, run):
    beta = create_registered_model(actor=contributor, name="beta")
    alpha = create_registered_model(actor=contributor, name="alpha")
    kept = create_model_version(actor=contributor, model=beta, run=run)
    dropped = create_model_version(actor=contributor, model=alpha, run=run)
    first_alpha = create_model_version(actor=contributor, model=alpha, run=run)
    set_alias(actor=contributor, model=beta, alias="staging", version=kept)
    delete_model_version(actor=contributor, version=dropped)

    versions = versions_of_run(run=run, user=contributor)

    assert [(v.model.name, v.version) for v in versions] == [("alpha", 2), ("beta", 1)]
    assert versions[0].pk == first_alpha.pk
    assert [a.alias for a in versions[1].aliases.all()] == ["staging"]
