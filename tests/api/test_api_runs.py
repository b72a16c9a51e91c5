"""Runs over the native API: create, read, update, delete, and search with paging."""

from __future__ import annotations

import pytest

from tests.api.api_helpers import error
from tests.factories import RunFactory
from tracker.models import RunStatus
from tracker.services import MetricInput, ParamInput, log_batch


def test_contributor_starts_a_run_with_its_context(contributor_api, experiment):
    response = contributor_api.post(
        "/api/v1/runs",
        {
            "experiment_id": experiment.pk,
            "run_name": "lr-sweep-1",
            "start_time": 1_700_000_000_000,
            "tags": [{"key": "team", "value": "vision"}],
            "code_commit": "3f2c1a9",
            "source": "train.py",
            "environment": {"python": "3.11"},
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert len(body["run_id"]) == 32
    assert body["run_name"] == "lr-sweep-1"
    assert body["experiment_id"] == experiment.pk
    assert body["status"] == "RUNNING"
    assert body["start_time"] == 1_700_000_000_000
    assert body["end_time"] is None
    assert body["user"] == "carl-contributor"
    assert body["tags"] == {"team": "vision"}
    assert body["environment"] == {"python": "3.11"}
    assert body["code_commit"] == "3f2c1a9"


def test_run_without_a_name_gets_a_generated_one(contributor_api, experiment):
    response = contributor_api.post("/api/v1/runs", {"experiment_id": str(experiment.pk)}, format="json")

    assert response.status_code == 201
    assert response.json()["run_name"].count("-") == 2


BAD_TIME = "start_time: must be milliseconds since the epoch, an integer from 0 to 253402300799999"
BAD_KEY = "may only contain letters, digits, underscores, dashes, periods, spaces, colons and slashes"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"start_time": -1}, BAD_TIME),
        ({"start_time": 10**20}, BAD_TIME),
        ({"start_time": "soon"}, BAD_TIME),
        ({"tags": [{"key": "a"}]}, "tags[0].value: This field is required."),
        ({"tags": [{"key": "bad key!", "value": "x"}]}, f"tags[0].key: 'bad key!' {BAD_KEY}"),
        ({"tags": [{"key": "team\n", "value": "x"}]}, f"tags[0].key: 'team\\n' {BAD_KEY}"),
        (
            {"environment": ["not", "an", "object"]},
            'environment: Expected a dictionary of items but got type "list".',
        ),
        ({"status": "DONE"}, "status: 'DONE' is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"),
        ({"run_name": 3.5}, "run_name: must be a string, not a number"),
        ({"source": 7}, "source: must be a string, not a number"),
        ({"tags": [{"key": "team", "value": 5}]}, "tags[0].value: must be a string, not a number"),
        ({"experiment_id": 1.5}, "experiment_id: must be an integer or a numeric string, not a number"),
    ],
)
def test_bad_run_input_is_a_400_naming_the_field(contributor_api, experiment, body, message):
    response = contributor_api.post("/api/v1/runs", {"experiment_id": experiment.pk, **body}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == message


def test_run_without_an_experiment_is_a_400(contributor_api, db):
    response = contributor_api.post("/api/v1/runs", {"run_name": "orphan"}, format="json")

    assert response.status_code == 400
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "experiment_id: This field is required.",
        "field": "experiment_id",
    }


def test_an_unknown_parent_run_is_a_404_naming_parent_run_id(contributor_api, experiment):
    body = {"experiment_id": experiment.pk, "parent_run_id": "zz"}
    response = contributor_api.post("/api/v1/runs", body, format="json")
    assert (response.status_code, error(response)["field"]) == (404, "parent_run_id")


def test_a_parent_run_and_a_parent_tag_that_differ_are_refused(contributor_api, experiment, run):
    body = {
        "experiment_id": experiment.pk,
        "parent_run_id": run.uuid,
        "tags": [{"key": "mlflow.parentRunId", "value": "0" * 32}],
    }
    response = contributor_api.post("/api/v1/runs", body, format="json")
    assert (response.status_code, error(response)["field"]) == (400, "parent_run_id")
    body["tags"][0]["value"] = run.uuid  # the same parent both ways is fine
    assert contributor_api.post("/api/v1/runs", body, format="json").status_code == 201


def test_unknown_run_is_a_404(viewer_api, db):
    response = viewer_api.get("/api/v1/runs/0123456789abcdef0123456789abcdef")

    assert response.status_code == 404
    assert error(response) == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "run_id: run '0123456789abcdef0123456789abcdef' does not exist",
        "field": "run_id",
    }


def test_finishing_a_run_sets_its_end_time(contributor_api, run):
    response = contributor_api.patch(f"/api/v1/runs/{run.uuid}", {"status": "FINISHED"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "FINISHED"
    assert response.json()["end_time"] is not None
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED


def test_patch_renames_a_run_and_sets_an_explicit_end_time(contributor_api, run):
    end = (run.start_time.timestamp() + 60) * 1000
    response = contributor_api.patch(
        f"/api/v1/runs/{run.uuid}",
        {"run_name": "renamed", "status": "KILLED", "end_time": int(end)},
        format="json",
    )

    body = response.json()
    assert (body["run_name"], body["status"], body["end_time"]) == ("renamed", "KILLED", int(end))


def test_end_time_before_start_time_is_a_400(contributor_api, run):
    response = contributor_api.patch(f"/api/v1/runs/{run.uuid}", {"end_time": 0}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == "end_time: must not be before the run's start time"


def test_deleted_run_leaves_the_list_and_comes_back_on_restore(contributor_api, run):
    listing = f"/api/v1/experiments/{run.experiment_id}/runs"

    assert contributor_api.delete(f"/api/v1/runs/{run.uuid}").status_code == 204
    assert contributor_api.get(listing).json()["runs"] == []
    assert [r["run_id"] for r in contributor_api.get(listing, {"lifecycle": "deleted"}).json()["runs"]] == [
        run.uuid
    ]
    assert contributor_api.post(f"/api/v1/runs/{run.uuid}/restore").json()["lifecycle"] == "active"
    assert len(contributor_api.get(listing).json()["runs"]) == 1


def test_deleted_run_refuses_new_batches(contributor_api, run):
    contributor_api.delete(f"/api/v1/runs/{run.uuid}")

    response = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/log-batch", {"params": [{"key": "lr", "value": "0.1"}]}, format="json"
    )

    assert response.status_code == 400
    assert error(response)["message"] == f"run_id: run {run.uuid} is deleted; restore it before logging to it"


@pytest.fixture
def scored_runs(experiment, contributor):
    """Seven runs with accuracies 0.1 … 0.7 and a param each."""
    runs = []
    for index in range(1, 8):
        run = RunFactory(experiment=experiment, user=contributor, name=f"run-{index}")
        log_batch(
            actor=contributor,
            run=run,
            metrics=[MetricInput("acc", index / 10, 1, 1000)],
            params=[ParamInput("lr", f"0.0{index}")],
        )
        runs.append(run)
    return runs


def test_runs_page_through_a_filtered_and_ordered_search(viewer_api, experiment, scored_runs):
    names, token, pages = [], None, 0
    while True:
        query = {"filter": "metrics.acc > 0.25", "order_by": ["metrics.acc DESC"], "max_results": 2}
        if token:
            query["page_token"] = token
        body = viewer_api.get(f"/api/v1/experiments/{experiment.pk}/runs", query).json()
        names += [r["run_name"] for r in body["runs"]]
        token, pages = body["next_page_token"], pages + 1
        if token is None:
            break

    assert names == ["run-7", "run-6", "run-5", "run-4", "run-3"]
    assert pages == 3


def test_run_list_takes_several_experiments_and_several_order_by(viewer_api, experiment, scored_runs):
    other = RunFactory(name="other-experiment")

    body = viewer_api.get(
        "/api/v1/runs",
        {
            "experiment_id": [experiment.pk, other.experiment_id],
            "order_by": ["params.lr DESC", "attributes.run_name"],
        },
    ).json()

    assert [r["run_name"] for r in body["runs"]][:3] == ["run-7", "run-6", "run-5"]
    assert "other-experiment" in [r["run_name"] for r in body["runs"]]
    assert body["param_keys"] == ["lr"]
    assert body["metric_keys"] == ["acc"]


def test_run_list_shows_params_and_metric_summaries(viewer_api, experiment, scored_runs):
    body = viewer_api.get(
        "/api/v1/runs", {"experiment_id": experiment.pk, "filter": "params.lr = '0.07'"}
    ).json()

    (run,) = body["runs"]
    assert run["params"] == {"lr": "0.07"}
    assert run["metrics"]["acc"] == {
        "key": "acc", "value": 0.7, "step": 1, "timestamp": 1000, "min": 0.7, "max": 0.7, "count": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"filter": "metrics.acc >"}, "filter", None),
        ({"filter": "bogus.acc > 1"}, "filter", None),
        ({"order_by": "metrics.acc SIDEWAYS"}, "order_by", None),
        ({"page_token": "not-a-token"}, "page_token", "page_token: Invalid page token"),
        ({"max_results": 0}, "max_results", "max_results: Ensure this value is greater than or equal to 1."),
        (
            {"max_results": 50001},
            "max_results",
            "max_results: Ensure this value is less than or equal to 50000.",
        ),
        ({"max_results": "many"}, "max_results", "max_results: A valid integer is required."),
    ],
)
def test_bad_search_input_is_a_400_naming_the_field(viewer_api, experiment, query, field, message):
    response = viewer_api.get(f"/api/v1/experiments/{experiment.pk}/runs", query)

    assert response.status_code == 400
    body = error(response)
    assert body["field"] == field
    if message:
        assert body["message"] == message


def test_run_list_without_an_experiment_is_a_400(viewer_api, db):
    response = viewer_api.get("/api/v1/runs")

    assert response.status_code == 400
    assert error(response)["message"] == "experiment_id: This field is required."


def test_run_list_query_count_does_not_grow_with_the_page(
    viewer_api, experiment, contributor, django_assert_max_num_queries
):
    parent = RunFactory(experiment=experiment, user=contributor)
    for index in range(30):
        run = RunFactory(experiment=experiment, user=contributor, parent=parent, name=f"r{index}")
        log_batch(
            actor=contributor,
            run=run,
            metrics=[MetricInput("loss", 1.0, 0, 1), MetricInput("acc", 0.5, 0, 1)],
            params=[ParamInput("lr", "0.1")],
        )
    viewer_api.get("/api/v1/me")  # the token's first use stamps last_used_at; keep that out of the count

    # token, role, experiment, page, 2 for the column keys, 4 for the page's data, parents
    with django_assert_max_num_queries(11):
        response = viewer_api.get(
            f"/api/v1/experiments/{experiment.pk}/runs", {"order_by": "metrics.loss", "max_results": 50}
        )

    assert len(response.json()["runs"]) == 31


def test_datasets_are_logged_once_and_listed(contributor_api, run):
    dataset = {"name": "mnist", "digest": "9f86d081", "version": "1.0", "context": "training"}

    first = contributor_api.post(f"/api/v1/runs/{run.uuid}/datasets", {"datasets": [dataset]}, format="json")
    again = contributor_api.post(f"/api/v1/runs/{run.uuid}/datasets", {"datasets": [dataset]}, format="json")
    listing = contributor_api.get(f"/api/v1/runs/{run.uuid}/datasets").json()["datasets"]
    detail = contributor_api.get(f"/api/v1/runs/{run.uuid}").json()

    assert first.status_code == again.status_code == 200
    assert [(d["name"], d["digest"], d["context"]) for d in listing] == [("mnist", "9f86d081", "training")]
    assert detail["datasets"][0]["version"] == "1.0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"datasets": []}, "datasets: This list may not be empty."),
        (
            {"datasets": [{"name": "mnist", "digest": "x" * 65}]},
            "datasets[0].digest: is 65 characters long; the limit is 64",
        ),
    ],
)
def test_bad_dataset_input_is_a_400(contributor_api, run, body, message):
    response = contributor_api.post(f"/api/v1/runs/{run.uuid}/datasets", body, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == message


def test_run_tag_is_deleted_and_a_missing_one_is_a_404(contributor_api, run):
    contributor_api.post(
        f"/api/v1/runs/{run.uuid}/log-batch", {"tags": [{"key": "note/short", "value": "x"}]}, format="json"
    )

    deleted = contributor_api.delete(f"/api/v1/runs/{run.uuid}/tags/note/short")
    missing = contributor_api.delete(f"/api/v1/runs/{run.uuid}/tags/note/short")

    assert deleted.status_code == 204
    assert missing.status_code == 404
    assert error(missing)["message"] == f"key: run {run.uuid} has no tag 'note/short'"


def test_the_readme_example_logs_to_the_default_experiment(contributor_api):
    run = contributor_api.post(
        "/api/v1/runs", {"experiment_id": "0", "run_name": "curl-run"}, format="json"
    ).json()
    logged = contributor_api.post(
        f"/api/v1/runs/{run['run_id']}/log-batch",
        {
            "params": [{"key": "lr", "value": "0.01"}],
            "metrics": [{"key": "loss", "value": 0.52, "step": 1}, {"key": "loss", "value": 0.31, "step": 2}],
        },
        format="json",
    )
    finished = contributor_api.patch(f"/api/v1/runs/{run['run_id']}", {"status": "FINISHED"}, format="json")

    assert logged.json()["points_inserted"] == 2
    assert finished.json()["metrics"]["loss"]["value"] == 0.31
    assert finished.json()["status"] == "FINISHED"
