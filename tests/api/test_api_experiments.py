"""Experiments over the native API."""

from __future__ import annotations

import pytest

from tests.api.api_helpers import error
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import Experiment, Lifecycle


def test_contributor_creates_an_experiment_with_tags(contributor_api):
    response = contributor_api.post(
        "/api/v1/experiments",
        {"name": "mnist", "description": "digits", "tags": [{"key": "team", "value": "vision"}]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "mnist"
    assert body["tags"] == {"team": "vision"}
    assert body["lifecycle"] == "active"
    assert Experiment.objects.get(pk=body["experiment_id"]).description == "digits"


def test_duplicate_experiment_name_is_a_409_naming_the_field(contributor_api, experiment):
    response = contributor_api.post("/api/v1/experiments", {"name": "digits-sweep"}, format="json")

    assert response.status_code == 409
    assert error(response) == {
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": "name: an experiment named 'digits-sweep' already exists",
        "field": "name",
    }


def test_experiment_without_a_name_is_a_400(contributor_api):
    response = contributor_api.post("/api/v1/experiments", {"description": "?"}, format="json")

    assert response.status_code == 400
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "name: This field is required.",
        "field": "name",
    }


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"name": 123456789}, "name", "a number"),
        ({"name": "x", "description": 12345}, "description", "a number"),
        ({"name": "x", "artifact_location": ["s3://bucket"]}, "artifact_location", "a list"),
        ({"name": True}, "name", "a boolean"),
    ],
)
def test_a_number_or_other_non_string_for_a_text_field_is_a_400_naming_it(contributor_api, body, field, kind):
    response = contributor_api.post("/api/v1/experiments", body, format="json")

    assert response.status_code == 400
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"{field}: must be a string, not {kind}",
        "field": field,
    }
    assert not Experiment.objects.exclude(name="Default").exists()


def test_a_number_for_a_text_field_in_a_patch_is_a_400(contributor_api, experiment):
    response = contributor_api.patch(f"/api/v1/experiments/{experiment.pk}", {"name": 42}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == "name: must be a string, not a number"
    experiment.refresh_from_db()
    assert experiment.name != "42"


def test_malformed_json_body_is_a_400_naming_the_body(contributor_api):
    response = contributor_api.generic(
        "POST", "/api/v1/experiments", '{"name": "x",', content_type="application/json"
    )

    assert response.status_code == 400
    body = error(response)
    assert body["field"] == "body"
    assert body["message"].startswith("body: Malformed request body: JSON parse error")


def test_experiment_list_counts_runs_and_hides_deleted_experiments(viewer_api, run):
    ExperimentFactory(name="old", lifecycle=Lifecycle.DELETED)

    active = viewer_api.get("/api/v1/experiments").json()["experiments"]
    deleted = viewer_api.get("/api/v1/experiments", {"lifecycle": "deleted"}).json()["experiments"]

    by_name = {e["name"]: e for e in active}
    assert by_name["digits-sweep"]["run_count"] == 1
    assert "old" not in by_name
    assert [e["name"] for e in deleted] == ["old"]


def test_unknown_experiment_is_a_404_and_a_non_numeric_id_a_400(viewer_api):
    missing = viewer_api.get("/api/v1/experiments/999999")
    malformed = viewer_api.get("/api/v1/experiments/abc")
    huge = viewer_api.get("/api/v1/experiments/99999999999999999999999")

    assert missing.status_code == 404
    assert error(missing)["message"] == "experiment_id: experiment 999999 does not exist"
    assert malformed.status_code == 400
    assert error(malformed)["message"] == "experiment_id: 'abc' is not an experiment id"
    assert huge.status_code == 404


def test_patch_renames_and_describes_an_experiment(contributor_api, experiment):
    response = contributor_api.patch(
        f"/api/v1/experiments/{experiment.pk}",
        {"name": "digits-v2", "description": "second try"},
        format="json",
    )

    assert response.status_code == 200
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("digits-v2", "second try")


def test_a_refused_description_leaves_the_name_unchanged(contributor_api, experiment):
    response = contributor_api.patch(
        f"/api/v1/experiments/{experiment.pk}",
        {"name": "digits-v2", "description": "x" * 20001},
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["message"] == "description: is 20001 characters long; the limit is 20000"
    experiment.refresh_from_db()
    assert experiment.name == "digits-sweep"


def test_empty_patch_is_a_400(contributor_api, experiment):
    response = contributor_api.patch(f"/api/v1/experiments/{experiment.pk}", {}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == "give a name, a description or both"


def test_deleted_experiment_can_be_restored(contributor_api, experiment):
    deleted = contributor_api.delete(f"/api/v1/experiments/{experiment.pk}")
    restored = contributor_api.post(f"/api/v1/experiments/{experiment.pk}/restore")

    assert deleted.status_code == 204
    assert restored.status_code == 200
    assert restored.json()["lifecycle"] == "active"


def test_runs_of_a_deleted_experiment_cannot_be_started(contributor_api, experiment):
    contributor_api.delete(f"/api/v1/experiments/{experiment.pk}")

    response = contributor_api.post("/api/v1/runs", {"experiment_id": experiment.pk}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == f"experiment_id: experiment {experiment.pk} is deleted"


def test_experiment_runs_endpoint_lists_only_that_experiments_runs(viewer_api, run):
    RunFactory(name="elsewhere")

    response = viewer_api.get(f"/api/v1/experiments/{run.experiment_id}/runs")

    assert [r["run_name"] for r in response.json()["runs"]] == ["baseline"]


def test_overlong_artifact_location_is_a_400_not_a_database_error(contributor_api):
    response = contributor_api.post(
        "/api/v1/experiments", {"name": "far", "artifact_location": "s3://" + "x" * 1000}, format="json"
    )

    assert response.status_code == 400
    assert (
        error(response)["message"] == "artifact_location: Ensure this field has no more than 1000 characters."
    )
