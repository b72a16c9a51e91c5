"""A run's artifacts over the API: upload, list, download, delete; paths stay inside the run."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.api_helpers import error
from tracker.models import Artifact

WEIGHTS = bytes(range(256)) * 1000


def _put(client, run, path: str, content: bytes, content_type: str = "application/octet-stream"):
    return client.generic(
        "PUT", f"/api/v1/runs/{run.uuid}/artifacts/{path}", content, content_type=content_type
    )


def test_raw_upload_lists_and_downloads_the_same_bytes(contributor_api, run):
    uploaded = _put(contributor_api, run, "model/weights.bin", WEIGHTS)

    listing = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts").json()["artifacts"]
    download = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts/model/weights.bin")

    sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    assert uploaded.status_code == 201
    assert uploaded.json()["sha256"] == sha256
    assert [(a["path"], a["size"], a["sha256"]) for a in listing] == [
        ("model/weights.bin", len(WEIGHTS), sha256)
    ]
    assert listing[0]["download_url"] == f"/api/v1/runs/{run.uuid}/artifacts/model/weights.bin"
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == WEIGHTS
    assert download["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert download["ETag"] == f'"{sha256}"'


def test_a_json_file_uploads_as_bytes_whatever_its_content_type(contributor_api, run):
    content = b'{"not": "parsed"'

    response = _put(contributor_api, run, "config.json", content, content_type="application/json")

    assert response.status_code == 201
    assert response.json()["size"] == len(content)


def test_html_artifacts_download_as_attachments_never_inline(contributor_api, run):
    _put(contributor_api, run, "report.html", b"<script>alert(1)</script>", content_type="text/html")

    response = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts/report.html", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")


def test_uploading_to_the_same_path_replaces_the_file(contributor_api, run):
    _put(contributor_api, run, "notes.txt", b"first")
    _put(contributor_api, run, "notes.txt", b"second")

    download = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts/notes.txt")

    assert b"".join(download.streaming_content) == b"second"
    assert Artifact.objects.filter(run=run).count() == 1


def test_multipart_upload_takes_the_file_name_or_a_path(contributor_api, run):
    by_name = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts",
        {"file": SimpleUploadedFile("plot.png", b"\x89PNG")},
        format="multipart",
    )
    by_path = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts",
        {"file": SimpleUploadedFile("x.csv", b"a,b\n"), "path": "eval/scores.csv"},
        format="multipart",
    )
    empty = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts",
        {"file": SimpleUploadedFile("empty.txt", b"")},
        format="multipart",
    )

    assert (by_name.status_code, by_name.json()["path"]) == (201, "plot.png")
    assert (by_path.status_code, by_path.json()["path"]) == (201, "eval/scores.csv")
    assert (empty.status_code, empty.json()["size"]) == (201, 0)


def test_listing_under_a_folder_shows_only_its_files(viewer_api, contributor_api, run):
    for path in ("model/weights.bin", "model/config.json", "notes.txt"):
        _put(contributor_api, run, path, b"x")

    listing = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts", {"path": "model"}).json()["artifacts"]

    assert [a["path"] for a in listing] == ["model/config.json", "model/weights.bin"]
    trailing = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts", {"path": "model/"}).json()["artifacts"]
    assert trailing == listing


@pytest.mark.parametrize("path", ["../", "..", "model/../..", "/etc"])
def test_listing_a_folder_outside_the_run_is_a_400_as_uploading_there_is(viewer_api, run, path):
    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts", {"path": path})
    assert (response.status_code, error(response)["field"]) == (400, "path")


@pytest.mark.parametrize("path", ["../x", "%2e%2e/x", "a/../../x", "model/../../../etc/passwd"])
def test_raw_upload_outside_the_run_is_a_400(contributor_api, run, path):
    response = _put(contributor_api, run, path, b"x")

    assert response.status_code == 400
    assert error(response)["field"] == "path"
    assert Artifact.objects.count() == 0


def test_multipart_upload_outside_the_run_is_a_400(contributor_api, run):
    response = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts",
        {"file": SimpleUploadedFile("x.txt", b"x"), "path": "../x"},
        format="multipart",
    )

    assert response.status_code == 400
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "path: '../x' must be a relative path inside the run's artifacts",
        "field": "path",
    }


def test_multipart_upload_without_a_file_is_a_400(contributor_api, run):
    response = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts", {"path": "a.txt"}, format="multipart"
    )

    assert response.status_code == 400
    assert error(response)["message"] == "file: No file was submitted."


def test_raw_upload_over_the_size_limit_is_a_413_naming_the_body(settings, contributor_api, run):
    settings.MAX_ARTIFACT_BYTES = 1000

    refused = _put(contributor_api, run, "model/weights.bin", WEIGHTS[:1001])
    accepted = _put(contributor_api, run, "model/weights.bin", WEIGHTS[:1000])

    assert refused.status_code == 413
    assert error(refused) == {
        "error_code": "REQUEST_TOO_LARGE",
        "message": "body: artifact 'model/weights.bin' is larger than the limit of 1,000 bytes",
        "field": "body",
    }
    assert (accepted.status_code, accepted.json()["size"]) == (201, 1000)


def test_raw_upload_declaring_more_than_the_size_limit_is_refused_unread(settings, contributor_api, run):
    settings.MAX_ARTIFACT_BYTES = 1000
    # The test client's body holds 1 byte: reading past it would fail the request, not refuse it.
    response = contributor_api.generic(
        "PUT",
        f"/api/v1/runs/{run.uuid}/artifacts/big.bin",
        b"x",
        content_type="application/octet-stream",
        CONTENT_LENGTH="5000",
    )

    assert response.status_code == 413
    assert error(response)["field"] == "body"
    assert not Artifact.objects.exists()


def test_multipart_upload_over_the_size_limit_is_a_413_and_keeps_the_stored_file(
    settings, contributor_api, run
):
    settings.MAX_ARTIFACT_BYTES = 1000
    _put(contributor_api, run, "eval/scores.csv", b"a,b\n")

    response = contributor_api.post(
        f"/api/v1/runs/{run.uuid}/artifacts",
        {"file": SimpleUploadedFile("x.csv", b"c" * 1001), "path": "eval/scores.csv"},
        format="multipart",
    )

    assert response.status_code == 413
    assert error(response) == {
        "error_code": "REQUEST_TOO_LARGE",
        "message": "body: artifact 'eval/scores.csv' is larger than the limit of 1,000 bytes",
        "field": "body",
    }
    download = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts/eval/scores.csv")
    assert b"".join(download.streaming_content) == b"a,b\n"
    assert Artifact.objects.get(run=run).size == 4


def test_downloading_a_missing_artifact_is_a_404(viewer_api, run):
    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts/nope.txt")

    assert response.status_code == 404
    assert error(response)["message"] == f"path: run {run.uuid} has no artifact at 'nope.txt'"


def test_deleting_a_folder_removes_its_files(contributor_api, run):
    _put(contributor_api, run, "model/a.bin", b"a")
    _put(contributor_api, run, "model/b.bin", b"b")
    _put(contributor_api, run, "keep.txt", b"k")

    response = contributor_api.delete(f"/api/v1/runs/{run.uuid}/artifacts/model")

    assert response.status_code == 204
    assert list(Artifact.objects.filter(run=run).values_list("path", flat=True)) == ["keep.txt"]


def test_artifact_list_query_count_does_not_grow_with_the_files(
    viewer_api, contributor_api, run, django_assert_max_num_queries
):
    for index in range(20):
        _put(contributor_api, run, f"f{index}.txt", b"x")
    viewer_api.get("/api/v1/me")

    with django_assert_max_num_queries(4):
        response = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts")

    assert len(response.json()["artifacts"]) == 20
