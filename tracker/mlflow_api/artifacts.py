"""MLflow endpoints: artifact transfer through the server (`mlflow-artifacts:/` URIs) and run listings.

The client maps `mlflow-artifacts:/<path>` to `/api/2.0/mlflow-artifacts/artifacts/<path>`, where
`<path>` is `<experiment_id>/<run_id>/artifacts/<file>` for a run and
`<experiment_id>/models/<model_id>/artifacts/<file>` for a logged model (the roots those owners
report as their artifact URI). Any other path is refused: files always belong to an owner.
"""

from __future__ import annotations

import mimetypes
import posixpath
from typing import Any

from django.http import FileResponse, HttpResponse

from config.exceptions import InvalidInput
from config.http import declared_body_size
from tracker import selectors, services
from tracker.models import ArtifactOwner
from tracker.permissions import require_run_readable
from tracker.validation import validate_artifact_path

from .logged_models import file_info
from .protocol import Call, Endpoint, MlflowError, in_mlflow_words, omit_empty
from .runs import run_ref

_PATH_SHAPES = "<experiment_id>/<run_id>/artifacts/… or <experiment_id>/models/<model_id>/artifacts/…"
# The client falls back to one PUT per file when mpu/create fails with exactly this message
# (mlflow.exceptions._UnsupportedMultipartUploadException).
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


def safe_path(path: str) -> str:
    """A relative path inside the artifacts, or MLflow's `Invalid path` error."""
    with in_mlflow_words(InvalidInput, "path", f"Invalid path: {path[:1000]}"):
        return validate_artifact_path(path)


def _owner_and_path(user: Any, path: str) -> tuple[ArtifactOwner, str]:
    """The run or logged model a mlflow-artifacts path points into, and the path inside it."""
    parts = safe_path(path).split("/")
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        owner = selectors.get_artifact_owner(user=user, experiment_id=parts[0], model_id=parts[2])
        inside = parts[4:]
    elif len(parts) >= 3 and parts[2] == "artifacts":
        owner = selectors.get_artifact_owner(user=user, experiment_id=parts[0], run_id=parts[1])
        inside = parts[3:]
    else:
        raise InvalidInput(f"{path!r} is not inside an artifact folder ({_PATH_SHAPES})", field="path")
    return owner, "/".join(inside)


def upload_artifact(call: Call, artifact_path: str) -> HttpResponse:
    """The raw request body is the file; the service streams it (a large model never sits in
    memory) and refuses one larger than MAX_ARTIFACT_BYTES before reading it."""
    owner, path = _owner_and_path(call.user, artifact_path)
    services.store_artifact(
        actor=call.user,
        owner=owner,
        path=path,
        content=call.request,
        declared_size=declared_body_size(call.request),
    )
    return HttpResponse(status=200)  # the client takes an empty 200 as success


def download_artifact(call: Call, artifact_path: str) -> FileResponse:
    owner, path = _owner_and_path(call.user, artifact_path)
    return file_response(selectors.get_owned_artifact(owner=owner, path=path))


def file_response(artifact: Any) -> FileResponse:
    """A stored file as a download."""
    name = posixpath.basename(artifact.path)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # Always an attachment, never sniffed: an uploaded HTML file must not render on this origin.
    response = FileResponse(
        artifact.file.open("rb"), as_attachment=True, filename=name, content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["ETag"] = f'"{artifact.sha256}"'
    return response


def delete_artifact(call: Call, artifact_path: str) -> dict[str, Any]:
    owner, path = _owner_and_path(call.user, artifact_path)
    services.delete_artifact(actor=call.user, owner=owner, path=path)
    return {}


def list_artifacts(call: Call) -> dict[str, Any]:
    """One folder level; paths are relative to the folder listed, as MLflow's artifact server sends them."""
    owner, path = _owner_and_path(call.user, call.string("path", required=True))
    entries = selectors.artifact_directory(owner=owner, path=path)
    return omit_empty({"files": [file_info(entry, posixpath.basename(entry.path)) for entry in entries]})


def list_run_artifacts(call: Call) -> dict[str, Any]:
    """One folder level of a run's files; paths are relative to the run's artifact root."""
    run = run_ref(call.run_id(), call.user)
    require_run_readable(call.user, run, action="Listing a run's artifacts")
    folder = call.string("path")
    if folder:
        folder = safe_path(folder)
    entries = selectors.artifact_directory(owner=run, path=folder)
    return omit_empty(
        {"root_uri": run.artifact_uri, "files": [file_info(entry, entry.path) for entry in entries]}
    )


def multipart_upload_unsupported(call: Call, artifact_path: str) -> dict[str, Any]:
    raise MlflowError(MULTIPART_UNSUPPORTED, error_code="NOT_IMPLEMENTED", http_status=501)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "artifacts/list", list_run_artifacts),
]
# Served under /api/2.0/mlflow-artifacts/ (ENDPOINTS above are under /api/2.0/mlflow/).
ARTIFACT_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "artifacts", list_artifacts),
    Endpoint("PUT", "artifacts/<path:artifact_path>", upload_artifact, raw_body=True),
    Endpoint("GET", "artifacts/<path:artifact_path>", download_artifact),
    Endpoint("DELETE", "artifacts/<path:artifact_path>", delete_artifact),
    Endpoint("POST", "mpu/create/<path:artifact_path>", multipart_upload_unsupported),
    Endpoint("POST", "mpu/complete/<path:artifact_path>", multipart_upload_unsupported),
    Endpoint("POST", "mpu/abort/<path:artifact_path>", multipart_upload_unsupported),
]
