"""POST /api/v1/uploads and reading uploads back: 202 with the URL, idempotency, errors that name the line."""

from __future__ import annotations

import gzip

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tracker.models import BulkUpload, MetricPoint

pytestmark = pytest.mark.django_db

CSV = b"key,step,value\nloss,0,1.5\nloss,1,0.5\n"


@pytest.fixture
def post_file(django_capture_on_commit_callbacks):
    """Post a file; the task queued on commit runs eagerly when the request's transaction ends."""

    def post(client, content: bytes, name: str = "metrics.csv", headers=None, **options):
        data = {"file": SimpleUploadedFile(name, content), **options}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/uploads", data, format="multipart", headers=headers or {})

    return post


def test_a_multipart_upload_answers_202_with_its_url(contributor_api, run, post_file):
    response = post_file(contributor_api, CSV, run_id=run.uuid)
    assert response.status_code == 202, response.json()
    body = response.json()
    upload = BulkUpload.objects.get()
    assert body["url"] == f"/api/v1/uploads/{upload.pk}"
    assert response["Location"] == body["url"]
    assert (body["status"], body["format"], body["file_name"], body["run_id"], body["experiment_id"]) == (
        "queued",
        "csv",
        "metrics.csv",
        run.uuid,
        run.experiment_id,  # an integer, as everywhere in the API
    )


def test_the_upload_reads_back_done_with_its_counts(contributor_api, viewer_api, run, post_file):
    url = post_file(contributor_api, CSV, run_id=run.uuid).json()["url"]
    body = viewer_api.get(url).json()
    assert (body["status"], body["rows_done"], body["points_inserted"], body["error"]) == ("done", 2, 2, None)
    assert body["bytes_done"] == body["size_bytes"] == len(CSV)


def test_a_raw_body_with_options_in_the_query_string_is_accepted(
    contributor_api, run, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = contributor_api.generic(
            "POST",
            f"/api/v1/uploads?run_id={run.uuid}&file_format=csv",
            gzip.compress(CSV),
            content_type="application/octet-stream",
        )
    assert response.status_code == 202, response.json()
    assert MetricPoint.objects.filter(run=run).count() == 2


def test_the_same_idempotency_key_answers_200_with_the_same_upload(contributor_api, run, post_file):
    headers = {"Idempotency-Key": "nightly-2026-12-04"}
    first = post_file(contributor_api, CSV, run_id=run.uuid, headers=headers)
    second = post_file(contributor_api, CSV, run_id=run.uuid, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert MetricPoint.objects.filter(run=run).count() == 2


def test_a_broken_line_reads_back_as_failed_with_line_and_column(contributor_api, run, post_file):
    url = post_file(contributor_api, b"key,step,value\nloss,0,1\nloss,x,2\n", run_id=run.uuid).json()["url"]
    body = contributor_api.get(url).json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "message": "line 3, column step: 'x' is not an integer",
        "line": 3,
        "column": "step",
    }
    assert MetricPoint.objects.count() == 0


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        ({"run_id": "nope"}, 404, "run_id: run 'nope' does not exist"),
        ({"file_format": "xls"}, 400, 'file_format: "xls" is not a valid choice.'),
        ({"create_runs": "true"}, 400, "create_runs: creating runs needs the experiment to create them in"),
    ],
)
def test_bad_options_are_refused_with_the_field_named(contributor_api, options, status, message, post_file):
    response = post_file(contributor_api, CSV, **options)
    assert response.status_code == status
    assert response.json()["message"] == message
    assert not BulkUpload.objects.exists()


def test_a_multipart_request_without_a_file_is_refused(contributor_api, run):
    response = contributor_api.post("/api/v1/uploads", {"run_id": run.uuid}, format="multipart")
    assert response.status_code == 400
    assert response.json()["message"] == "file: No file was submitted."


def test_a_viewer_cannot_upload(viewer_api, run, post_file):
    response = post_file(viewer_api, CSV, run_id=run.uuid)
    assert response.status_code == 403
    assert response.json()["message"] == "Uploading metrics needs the contributor role."


def test_an_anonymous_client_cannot_list_uploads(anonymous_client):
    assert anonymous_client.get("/api/v1/uploads").status_code == 401


def test_an_unknown_upload_is_a_404(viewer_api):
    response = viewer_api.get("/api/v1/uploads/999")
    assert response.status_code == 404
    assert response.json()["message"] == "upload_id: upload 999 does not exist"


def test_uploads_are_listed_per_experiment_in_a_fixed_number_of_queries(
    contributor_api, viewer_api, run, experiment, django_assert_max_num_queries, post_file
):
    for step in range(3):
        post_file(contributor_api, f"key,step,value\nloss,{step},1\n".encode(), run_id=run.uuid)
    with django_assert_max_num_queries(6):
        response = viewer_api.get("/api/v1/uploads", {"experiment_id": experiment.pk})
    assert [upload["rows_done"] for upload in response.json()["uploads"]] == [1, 1, 1]


def test_the_openapi_schema_describes_uploads_and_their_errors(viewer_api):
    schema = viewer_api.get("/api/schema/", {"format": "json"}).json()
    post = schema["paths"]["/api/v1/uploads"]["post"]
    assert {"200", "202", "400", "401", "403", "404", "409"} <= set(post["responses"])
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert "/api/v1/uploads/{upload_id}" in schema["paths"]


@pytest.mark.parametrize("name", ["..", ".", "@@@", "runs/"])
def test_a_file_name_storage_cannot_use_is_refused_naming_it(contributor_api, run, name):
    response = contributor_api.generic(
        "POST",
        f"/api/v1/uploads?run_id={run.uuid}&file_format=csv&file_name={name}",
        CSV,
        content_type="application/octet-stream",
    )

    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"file_name: {name!r} cannot name a stored file",
        "field": "file_name",
    }
    assert not BulkUpload.objects.exists()


def test_a_file_name_inside_folders_keeps_only_its_own_name(contributor_api, run, post_file):
    response = contributor_api.generic(
        "POST",
        f"/api/v1/uploads?run_id={run.uuid}&file_format=csv&file_name=../../etc/loss.csv",
        CSV,
        content_type="application/octet-stream",
    )

    assert response.status_code == 202, response.json()
    assert response.json()["file_name"] == "loss.csv"


def test_a_request_django_refuses_as_suspicious_gets_the_json_error_shape(contributor_api, run, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    data = {"file": SimpleUploadedFile("metrics.csv", CSV), "run_id": run.uuid, "a": "1", "b": "2"}

    response = contributor_api.post("/api/v1/uploads", data, format="multipart")

    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "the request was refused as unsafe (TooManyFieldsSent)",
        "field": None,
    }
