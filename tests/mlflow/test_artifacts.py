"""Artifact transfer through /api/2.0/mlflow-artifacts/, and run listings under /api/2.0/mlflow/."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import ExperimentFactory
from tracker.models import Artifact
from tracker.services import create_logged_model, start_run

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/"
BINARY = bytes(range(256)) * 300 + b"\x00\r\n\xff"


@pytest.fixture
def mlflow_run(contributor, experiment):
    """A run as runs/create makes it, with its `mlflow-artifacts:/` URI."""
    return start_run(actor=contributor, experiment=experiment, name="r1")


@pytest.fixture
def logged_model(contributor, experiment, mlflow_run):
    return create_logged_model(actor=contributor, experiment=experiment, name="model", source_run=mlflow_run)


def _root(owner) -> str:
    """What the client puts after artifacts/: the owner's artifact URI without its scheme."""
    return owner.artifact_uri.removeprefix("mlflow-artifacts:/")


def _put(wire, path: str, content: bytes, content_type: str = "application/octet-stream"):
    return wire.client.generic(
        "PUT", f"{ARTIFACTS}artifacts/{path}", content, content_type=content_type, headers=wire.headers
    )


def _get(wire, path: str):
    return wire.client.get(f"{ARTIFACTS}artifacts/{path}", headers=wire.headers)


def _stored_files() -> list[Path]:
    return [path for path in Path(settings.ARTIFACT_ROOT).rglob("*") if path.is_file()]


# Upload and download -----------------------------------------------------------------------


def test_a_text_file_round_trips_byte_for_byte(wire, mlflow_run):
    content = "näive ünïcode ✓\nline two\n".encode()
    uploaded = _put(wire, f"{_root(mlflow_run)}/notes.txt", content, "text/plain")

    downloaded = _get(wire, f"{_root(mlflow_run)}/notes.txt")

    assert (uploaded.status_code, uploaded.content) == (200, b"")
    assert downloaded.status_code == 200
    assert b"".join(downloaded.streaming_content) == content
    assert downloaded["Content-Type"] == "text/plain"
    assert downloaded["Content-Length"] == str(len(content))
    assert downloaded["Content-Disposition"] == 'attachment; filename="notes.txt"'


def test_a_binary_file_in_a_sub_folder_round_trips_byte_for_byte(wire, mlflow_run):
    path = f"{_root(mlflow_run)}/model/weights/final.bin"
    assert _put(wire, path, BINARY).status_code == 200

    downloaded = _get(wire, path)

    assert b"".join(downloaded.streaming_content) == BINARY
    assert downloaded["Content-Type"] == "application/octet-stream"
    assert downloaded["Content-Length"] == str(len(BINARY))
    artifact = Artifact.objects.get()
    assert (artifact.run, artifact.path, artifact.sha256) == (
        mlflow_run,
        "model/weights/final.bin",
        hashlib.sha256(BINARY).hexdigest(),
    )


def test_a_json_file_is_stored_as_bytes_not_parsed(wire, mlflow_run):
    content = b'{"not": "closed"'
    assert _put(wire, f"{_root(mlflow_run)}/config.json", content, "application/json").status_code == 200
    assert b"".join(_get(wire, f"{_root(mlflow_run)}/config.json").streaming_content) == content


def test_html_is_served_as_an_attachment_that_is_never_sniffed(wire, mlflow_run):
    _put(wire, f"{_root(mlflow_run)}/figure.html", b"<script>alert(1)</script>", "text/html")

    downloaded = _get(wire, f"{_root(mlflow_run)}/figure.html")

    assert downloaded["Content-Disposition"].startswith("attachment;")
    assert downloaded["X-Content-Type-Options"] == "nosniff"


def test_an_empty_file_uploads(wire, mlflow_run):
    assert _put(wire, f"{_root(mlflow_run)}/empty.txt", b"").status_code == 200
    assert Artifact.objects.get().size == 0


def test_uploading_again_replaces_the_file(wire, mlflow_run):
    _put(wire, f"{_root(mlflow_run)}/notes.txt", b"first")
    _put(wire, f"{_root(mlflow_run)}/notes.txt", b"second")
    assert b"".join(_get(wire, f"{_root(mlflow_run)}/notes.txt").streaming_content) == b"second"
    assert Artifact.objects.count() == 1


def test_logged_model_files_go_to_the_model_not_the_run(wire, logged_model):
    path = f"{_root(logged_model)}/MLmodel"
    assert _root(logged_model) == f"{logged_model.experiment_id}/models/{logged_model.model_id}/artifacts"

    assert _put(wire, path, b"flavors:\n  python_function: {}\n").status_code == 200

    artifact = Artifact.objects.get()
    assert (artifact.run, artifact.logged_model, artifact.path) == (None, logged_model, "MLmodel")
    assert b"".join(_get(wire, path).streaming_content) == b"flavors:\n  python_function: {}\n"


def test_uploads_are_audited_as_the_authenticated_user(wire, contributor, mlflow_run):
    from audit.models import AuditEvent

    _put(wire, f"{_root(mlflow_run)}/a.txt", b"a")
    event = AuditEvent.objects.get(action="run.artifact_stored")
    assert (event.actor, event.object_id, event.after) == (
        contributor,
        mlflow_run.uuid,
        {"a.txt": {"size": 1, "sha256": hashlib.sha256(b"a").hexdigest()}},
    )


def test_a_viewer_may_download_but_not_upload(viewer_wire, wire, mlflow_run):
    before = set(_stored_files())
    _put(wire, f"{_root(mlflow_run)}/kept.txt", b"kept")

    refused = _put(viewer_wire, f"{_root(mlflow_run)}/sneaky.txt", b"sneaky")

    assert refused.status_code == 403
    assert refused.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": "Uploading an artifact needs the contributor role.",
    }
    assert list(Artifact.objects.values_list("path", flat=True)) == ["kept.txt"]
    assert [path.name for path in set(_stored_files()) - before] == ["kept.txt"]
    assert _get(viewer_wire, f"{_root(mlflow_run)}/kept.txt").status_code == 200


def test_an_outsider_can_neither_read_nor_write(mlflow_wire_for, outsider, mlflow_run):
    outsider_wire = mlflow_wire_for(outsider)
    assert _put(outsider_wire, f"{_root(mlflow_run)}/x.txt", b"x").status_code == 403
    assert _get(outsider_wire, f"{_root(mlflow_run)}/x.txt").status_code == 403


# The size limit (MAX_ARTIFACT_BYTES) -------------------------------------------------------


def test_a_file_over_the_size_limit_is_a_400_and_the_stored_one_stays(settings, wire, mlflow_run):
    settings.MAX_ARTIFACT_BYTES = 1000
    path = f"{_root(mlflow_run)}/model/weights.bin"
    assert _put(wire, path, BINARY[:1000]).status_code == 200
    before = set(_stored_files())

    response = _put(wire, path, BINARY[:1001])

    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "body: artifact 'model/weights.bin' is larger than the limit of 1,000 bytes",
    }
    assert set(_stored_files()) == before
    assert list(Artifact.objects.values_list("size", "sha256")) == [
        (1000, hashlib.sha256(BINARY[:1000]).hexdigest())
    ]
    assert b"".join(_get(wire, path).streaming_content) == BINARY[:1000]


def test_a_declared_length_over_the_size_limit_is_refused_before_the_body_is_read(settings, wire, mlflow_run):
    settings.MAX_ARTIFACT_BYTES = 1000
    # The test client's body holds 1 byte: reading past it would fail the request, not refuse it.
    response = wire.client.generic(
        "PUT",
        f"{ARTIFACTS}artifacts/{_root(mlflow_run)}/big.bin",
        b"x",
        content_type="application/octet-stream",
        headers=wire.headers,
        CONTENT_LENGTH="5000",
    )

    assert response.status_code == 400
    assert response.json()["message"] == "body: artifact 'big.bin' is larger than the limit of 1,000 bytes"
    assert not Artifact.objects.exists()


# Paths that are not an owner's files --------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    ["../x", "%2e%2e/x", "%2E%2E/%2E%2E/x", "a/../../x", "model/..%2F..%2Fx", "a\\..\\x", "bad%00name"],
)
def test_hostile_paths_are_refused_and_store_nothing(wire, mlflow_run, suffix):
    before = set(_stored_files())

    response = _put(wire, f"{_root(mlflow_run)}/{suffix}", b"x")

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert response.json()["message"].startswith(("Invalid path: ", "path: "))
    assert not Artifact.objects.exists()
    assert set(_stored_files()) == before


@pytest.mark.parametrize("path", ["/etc/passwd", "%2Fetc%2Fpasswd", "etc/passwd", "1", "1/models/m-x"])
def test_paths_outside_any_artifact_folder_are_a_400(wire, path):
    response = _put(wire, path, b"x")
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(("Invalid path: ", "path: "))


def test_a_run_of_another_experiment_is_404(wire, mlflow_run):
    other = ExperimentFactory(name="other")
    response = _put(wire, f"{other.pk}/{mlflow_run.uuid}/artifacts/x.txt", b"x")
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"path: run {mlflow_run.uuid} is not in experiment '{other.pk}'",
    }


def test_an_unknown_run_or_model_is_404(wire, experiment):
    assert _put(wire, f"{experiment.pk}/{'0' * 32}/artifacts/x.txt", b"x").status_code == 404
    assert _put(wire, f"{experiment.pk}/models/m-{'0' * 32}/artifacts/x.txt", b"x").status_code == 404


def test_uploading_to_the_folder_itself_is_a_400(wire, mlflow_run):
    response = _put(wire, _root(mlflow_run), b"x")
    assert response.status_code == 400
    assert response.json()["message"] == "path: must be a non-empty relative path"


def test_downloading_a_missing_file_is_404(wire, mlflow_run):
    response = _get(wire, f"{_root(mlflow_run)}/nope.txt")
    assert response.status_code == 404
    assert response.json()["message"] == f"path: run {mlflow_run.uuid} has no artifact at 'nope.txt'"


# Listing -----------------------------------------------------------------------------------


@pytest.fixture
def files(wire, mlflow_run):
    for path, content in (("model/MLmodel", b"abc"), ("model/data/x.pkl", b"xy"), ("notes.txt", b"n")):
        _put(wire, f"{_root(mlflow_run)}/{path}", content)


def _list(wire, path: str | None = None) -> dict:
    return wire.ok("GET", "artifacts", {"path": path} if path is not None else {}, prefix=ARTIFACTS)


def test_listing_shows_one_level_with_names_relative_to_the_folder(wire, mlflow_run, files):
    assert _list(wire, _root(mlflow_run)) == {
        "files": [{"path": "model", "is_dir": True}, {"path": "notes.txt", "is_dir": False, "file_size": 1}]
    }
    assert _list(wire, f"{_root(mlflow_run)}/model") == {
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 3}, {"path": "data", "is_dir": True}]
    }


def test_listing_a_file_or_a_missing_folder_is_empty(wire, mlflow_run, files):
    assert _list(wire, f"{_root(mlflow_run)}/notes.txt") == {}
    assert _list(wire, f"{_root(mlflow_run)}/missing") == {}


def test_listing_needs_a_path_inside_an_artifact_folder(wire, mlflow_run):
    wire.error("GET", "artifacts", {}, prefix=ARTIFACTS, status=400, code="INVALID_PARAMETER_VALUE")
    wire.error(
        "GET", "artifacts", {"path": "../x"}, prefix=ARTIFACTS, status=400, code="INVALID_PARAMETER_VALUE"
    )


def test_a_logged_models_folder_lists_like_a_runs(wire, logged_model):
    _put(wire, f"{_root(logged_model)}/MLmodel", b"m")
    assert _list(wire, _root(logged_model)) == {
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 1}]
    }


def test_run_artifact_listing_names_paths_from_the_run_root(wire, mlflow_run, files):
    message = {"run_id": mlflow_run.uuid, "run_uuid": mlflow_run.uuid, "path": "model"}

    listing = wire.ok("GET", "artifacts/list", message)

    assert listing == {
        "root_uri": mlflow_run.artifact_uri,
        "files": [
            {"path": "model/MLmodel", "is_dir": False, "file_size": 3},
            {"path": "model/data", "is_dir": True},
        ],
    }
    root = wire.ok("GET", "artifacts/list", {"run_id": mlflow_run.uuid})
    assert [f["path"] for f in root["files"]] == ["model", "notes.txt"]


def test_run_artifact_listing_refuses_hostile_paths_and_unknown_runs(wire, mlflow_run):
    bad = {"run_id": mlflow_run.uuid, "path": "../../etc"}
    wire.error("GET", "artifacts/list", bad, status=400, code="INVALID_PARAMETER_VALUE")
    wire.error("GET", "artifacts/list", {"run_id": "f" * 32}, status=404, code="RESOURCE_DOES_NOT_EXIST")
    wire.error("GET", "artifacts/list", {}, status=400, code="INVALID_PARAMETER_VALUE")
    wire.error("GET", "artifacts/list", {"run_id": "ab\x00c"}, status=400, code="INVALID_PARAMETER_VALUE")


# Deleting and multipart --------------------------------------------------------------------


def test_deleting_a_folder_removes_its_files(wire, mlflow_run, files, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = wire.client.delete(f"{ARTIFACTS}artifacts/{_root(mlflow_run)}/model", headers=wire.headers)

    assert (response.status_code, response.json()) == (200, {})
    assert list(Artifact.objects.values_list("path", flat=True)) == ["notes.txt"]
    assert [path.name for path in _stored_files() if mlflow_run.uuid in str(path)] == ["notes.txt"]


def test_deleting_needs_the_contributor_role_and_an_existing_path(viewer_wire, wire, mlflow_run, files):
    url = f"{ARTIFACTS}artifacts/{_root(mlflow_run)}/notes.txt"
    assert viewer_wire.client.delete(url, headers=viewer_wire.headers).status_code == 403
    assert wire.client.delete(url + ".missing", headers=wire.headers).status_code == 404
    assert Artifact.objects.count() == 3


def test_multipart_upload_is_declined_with_the_message_the_client_falls_back_on(wire, mlflow_run):
    message = wire.error(
        "POST",
        f"mpu/create/{_root(mlflow_run)}/big.bin",
        {"path": "big.bin", "num_parts": 3},
        prefix=ARTIFACTS,
        status=501,
        code="NOT_IMPLEMENTED",
    )
    assert message == "Multipart upload is not supported for the current artifact repository"


def test_an_artifact_path_that_climbs_out_is_mlflows_invalid_path(wire, mlflow_run):
    response = _put(wire, f"{_root(mlflow_run)}/a/../../x", b"x")
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Invalid path: {_root(mlflow_run)}/a/../../x",
    }
