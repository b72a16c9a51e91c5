"""/ajax-api/2.0/mlflow/*: what MLflow's web UI and tools built on it call, with MLflow's request
and response shapes, its limits and texts, behind the same authentication (issue #12, section 4)."""

from __future__ import annotations

import io

import pytest

from tracker.models import Artifact, LoggedModel
from tracker.services import DatasetSpec, MetricInput, log_batch, log_inputs, start_run, store_artifact

pytestmark = pytest.mark.django_db

AJAX = "/ajax-api/2.0/mlflow/"
T0 = 1_700_000_000_000


@pytest.fixture
def two_runs(contributor, experiment):
    """Two runs with a 'loss' series each (3 and 2 points, a NaN in the first)."""
    runs = []
    for name, values in (("a", [1.0, float("nan"), 0.5]), ("b", [2.0, 1.5])):
        run = start_run(actor=contributor, experiment=experiment, name=name)
        points = [MetricInput("loss", value, step, T0 + step) for step, value in enumerate(values)]
        log_batch(actor=contributor, run=run, metrics=points)
        runs.append(run)
    return sorted(runs, key=lambda run: run.uuid)


def test_the_same_endpoints_answer_under_ajax_api(wire, two_runs):
    first = two_runs[0]
    shown = wire.ok("GET", "runs/get", {"run_id": first.uuid}, prefix=AJAX)
    assert shown["run"]["info"]["run_id"] == first.uuid


def test_ajax_api_needs_credentials_like_the_rest(client, two_runs):
    response = client.get(
        AJAX + "metrics/get-history-bulk", {"run_id": two_runs[0].uuid, "metric_key": "loss"}
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_get_history_bulk_returns_every_runs_points_with_its_run_id(
    wire, two_runs, django_assert_max_num_queries
):
    first, second = two_runs
    values = {"a": [1.0, "NaN", 0.5], "b": [2.0, 1.5]}
    expected = [
        {"key": "loss", "value": value, "timestamp": T0 + step, "step": step, "run_id": run.uuid}
        for run in two_runs
        for step, value in enumerate(values[run.name])
    ]
    # Credentials, the runs, the key, the points: the same however many runs.
    with django_assert_max_num_queries(6):
        shown = wire.ok(
            "GET",
            "metrics/get-history-bulk",
            {"run_id": [second.uuid, first.uuid], "metric_key": "loss"},
            prefix=AJAX,
        )
    assert shown == {"metrics": expected}


def test_get_history_bulk_of_an_unknown_run_is_resource_does_not_exist_in_mlflows_words(wire, two_runs):
    message = {"run_id": [two_runs[0].uuid, "0" * 32], "metric_key": "loss"}
    text = wire.error(
        "GET", "metrics/get-history-bulk", message, prefix=AJAX, status=404, code="RESOURCE_DOES_NOT_EXIST"
    )
    assert text == f"Run '{'0' * 32}' not found"


def test_get_history_bulk_stops_at_max_results(wire, two_runs):
    first, second = two_runs
    message = {"run_id": [first.uuid, second.uuid], "metric_key": "loss", "max_results": 2}
    shown = wire.ok("GET", "metrics/get-history-bulk", message, prefix=AJAX)
    assert [(m["run_id"], m["step"]) for m in shown["metrics"]] == [(first.uuid, 0), (first.uuid, 1)]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"metric_key": "loss"}, "GetMetricHistoryBulk request must specify at least one run_id."),
        (
            {"metric_key": "loss", "run_id": [f"{i:032x}" for i in range(101)]},
            "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.",
        ),
        ({"run_id": "RUN"}, "GetMetricHistoryBulk request must specify a metric_key."),
    ],
)
def test_bad_bulk_history_requests_get_mlflows_texts(wire, two_runs, message, text):
    message = {**message, "run_id": two_runs[0].uuid} if message.get("run_id") == "RUN" else message
    got = wire.error(
        "GET", "metrics/get-history-bulk", message, prefix=AJAX, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert got == text


def test_get_history_pages_with_max_results_and_page_token(wire, two_runs):
    (run,) = [run for run in two_runs if run.name == "a"]
    message = {"run_id": run.uuid, "metric_key": "loss", "max_results": 2}
    first = wire.ok("GET", "metrics/get-history", message, prefix=AJAX)
    rest = wire.ok(
        "GET", "metrics/get-history", {**message, "page_token": first["next_page_token"]}, prefix=AJAX
    )
    assert [m["step"] for m in first["metrics"]] + [m["step"] for m in rest["metrics"]] == [0, 1, 2]
    assert "next_page_token" not in rest


def test_get_history_bulk_interval_samples_under_ajax_api(wire, two_runs):
    message = {"run_ids": [run.uuid for run in two_runs], "metric_key": "loss", "max_results": 10}
    shown = wire.ok("GET", "metrics/get-history-bulk-interval", message, prefix=AJAX)
    steps = {"a": [0, 1, 2], "b": [0, 1]}
    expected = sorted((run.uuid, step) for run in two_runs for step in steps[run.name])
    assert sorted((m["run_id"], m["step"]) for m in shown["metrics"]) == expected


def _upload(wire, query: str, body: bytes):
    return wire.client.generic(
        "POST",
        f"{AJAX}upload-artifact?{query}",
        body,
        content_type="application/octet-stream",
        headers=wire.headers,
    )


def test_upload_artifact_stores_the_body_under_the_runs_artifacts(wire, run):
    response = _upload(wire, f"run_uuid={run.uuid}&path=notes/readme.txt", b"hello")
    assert response.status_code == 200
    artifact = Artifact.objects.get(path="notes/readme.txt")
    assert (artifact.run_id, artifact.size) == (run.pk, 5)
    assert artifact.file.read() == b"hello"


@pytest.mark.parametrize(
    ("query", "body", "text"),
    [
        ("path=a.txt", b"x", "Request must specify run_uuid."),
        ("run_uuid=RUN", b"x", "Request must specify path."),
        ("run_uuid=RUN&path=../a.txt", b"x", "Invalid path: ../a.txt"),
        ("run_uuid=RUN&path=a.txt", b"", "Request must specify data."),
        (
            "run_uuid=RUN&path=a.txt",
            b"x" * (10 * 1024 * 1024 + 1),
            "Artifact size is too large. Max size is 10MB.",
        ),
    ],
)
def test_bad_uploads_get_mlflows_texts_and_store_nothing(wire, run, query, body, text):
    response = _upload(wire, query.replace("RUN", run.uuid), body)
    assert (response.status_code, response.json()) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": text},
    )
    assert not Artifact.objects.exists()


def test_a_viewer_cannot_upload(viewer_wire, run):
    response = _upload(viewer_wire, f"run_uuid={run.uuid}&path=a.txt", b"x")
    assert response.status_code == 403
    assert not Artifact.objects.exists()


def test_search_datasets_lists_each_dataset_of_the_experiments_once(wire, contributor, experiment, two_runs):
    for run in two_runs:
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("digits", "d1", context="training")])
    log_inputs(actor=contributor, run=two_runs[0], datasets=[DatasetSpec("digits", "d2")])
    shown = wire.ok(
        "POST", "experiments/search-datasets", {"experiment_ids": [str(experiment.pk)]}, prefix=AJAX
    )
    assert shown == {
        "dataset_summaries": [
            {"experiment_id": str(experiment.pk), "name": "digits", "digest": "d1", "context": "training"},
            {"experiment_id": str(experiment.pk), "name": "digits", "digest": "d2"},
        ]
    }


@pytest.mark.parametrize(
    ("ids", "status", "code", "text"),
    [
        (
            [],
            400,
            "INVALID_PARAMETER_VALUE",
            "SearchDatasets request must specify at least one experiment_id.",
        ),
        (
            [str(i) for i in range(21)],
            400,
            "INVALID_PARAMETER_VALUE",
            "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids.",
        ),
    ],
)
def test_bad_dataset_searches_get_mlflows_texts(wire, ids, status, code, text):
    got = wire.error(
        "POST", "experiments/search-datasets", {"experiment_ids": ids}, prefix=AJAX, status=status, code=code
    )
    assert got == text


def test_a_logged_models_files_list_and_download(wire, contributor, experiment, run):
    model = LoggedModel.objects.create(experiment=experiment, source_run=run, name="m")
    store_artifact(actor=contributor, owner=model, path="model/MLmodel", content=io.BytesIO(b"flavors: {}\n"))
    listing = wire.ok(
        "GET",
        f"logged-models/{model.model_id}/artifacts/directories",
        {"artifact_directory_path": "model"},
        prefix=AJAX,
    )
    assert [(f["path"], f["is_dir"], f["file_size"]) for f in listing["files"]] == [
        ("model/MLmodel", False, 12)
    ]
    response = wire.call(
        "GET",
        f"logged-models/{model.model_id}/artifacts/files",
        {"artifact_file_path": "model/MLmodel"},
        prefix=AJAX,
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"flavors: {}\n"
    missing = wire.error(
        "GET",
        f"logged-models/{model.model_id}/artifacts/files",
        {"artifact_file_path": "../x"},
        prefix=AJAX,
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert missing == "Invalid path: ../x"
