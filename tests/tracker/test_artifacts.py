import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from audit.models import AuditEvent
from config.exceptions import InvalidInput, NotFound, PermissionDenied
from tracker.models import Artifact
from tracker.selectors import get_artifact, list_artifacts
from tracker.services import delete_artifact, store_artifact

pytestmark = pytest.mark.django_db


def test_stored_artifact_keeps_size_and_sha256(contributor, run):
    payload = b"weights" * 1000
    artifact = store_artifact(
        actor=contributor, owner=run, path="model/weights.bin", content=io.BytesIO(payload)
    )
    assert (artifact.size, artifact.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
    with get_artifact(run=run, path="model/weights.bin").file.open("rb") as handle:
        assert handle.read() == payload


def test_storing_at_the_same_path_replaces_the_file(contributor, run):
    store_artifact(actor=contributor, owner=run, path="notes.txt", content=io.BytesIO(b"one"))
    store_artifact(actor=contributor, owner=run, path="notes.txt", content=io.BytesIO(b"two"))
    (artifact,) = list_artifacts(run=run)
    with artifact.file.open("rb") as handle:
        assert handle.read() == b"two"


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\b", ""])
def test_artifact_paths_cannot_leave_the_run(contributor, run, path):
    with pytest.raises(InvalidInput) as error:
        store_artifact(actor=contributor, owner=run, path=path, content=io.BytesIO(b"x"))
    assert error.value.field == "path"


def test_deleting_a_missing_artifact_names_the_path(contributor, run):
    with pytest.raises(NotFound) as error:
        delete_artifact(actor=contributor, owner=run, path="missing.txt")
    assert str(error.value) == f"path: run {run.uuid} has no artifact at 'missing.txt'"


def test_deleting_a_folder_removes_its_files_after_commit(
    contributor, run, django_capture_on_commit_callbacks
):
    first = store_artifact(actor=contributor, owner=run, path="model/a.bin", content=io.BytesIO(b"a"))
    store_artifact(actor=contributor, owner=run, path="model/b.bin", content=io.BytesIO(b"b"))
    storage, name = first.file.storage, first.file.name
    with django_capture_on_commit_callbacks(execute=True):
        delete_artifact(actor=contributor, owner=run, path="model")
    assert not list_artifacts(run=run)
    assert not storage.exists(name)


# The size limit (MAX_ARTIFACT_BYTES) -------------------------------------------------------


class RequestBody:
    """A body that cannot be rewound, as a request's is; it counts what the service reads."""

    def __init__(self, payload: bytes) -> None:
        self._payload = io.BytesIO(payload)
        self.bytes_read = 0

    def read(self, n: int = -1, /) -> bytes:
        chunk = self._payload.read(n)
        self.bytes_read += len(chunk)
        return chunk


class UnreadableBody:
    def read(self, n: int = -1, /) -> bytes:
        raise AssertionError("the body was read")


def _stored_files() -> set[Path]:
    return {path for path in Path(django_settings.ARTIFACT_ROOT).rglob("*") if path.is_file()}


@pytest.fixture
def limit_of_1000_bytes(settings):
    settings.MAX_ARTIFACT_BYTES = 1000


def test_an_artifact_one_byte_over_the_limit_is_refused_naming_the_body(
    limit_of_1000_bytes, contributor, run
):
    with pytest.raises(InvalidInput) as error:
        store_artifact(
            actor=contributor, owner=run, path="model/weights.bin", content=io.BytesIO(b"x" * 1001)
        )

    assert error.value.field == "body"
    assert str(error.value) == "body: artifact 'model/weights.bin' is larger than the limit of 1,000 bytes"
    assert not Artifact.objects.exists()


def test_an_artifact_exactly_at_the_limit_is_stored(limit_of_1000_bytes, contributor, run):
    payload = bytes(range(250)) * 4

    artifact = store_artifact(actor=contributor, owner=run, path="weights.bin", content=io.BytesIO(payload))

    assert (artifact.size, artifact.sha256) == (1000, hashlib.sha256(payload).hexdigest())
    with get_artifact(run=run, path="weights.bin").file.open("rb") as handle:
        assert handle.read() == payload


def test_a_limit_of_zero_means_no_limit(settings, contributor, run):
    settings.MAX_ARTIFACT_BYTES = 0
    payload = b"w" * (2 * 1024 * 1024 + 5)  # more than one read chunk

    artifact = store_artifact(actor=contributor, owner=run, path="big.bin", content=RequestBody(payload))

    assert (artifact.size, artifact.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())


def test_a_refused_replacement_leaves_the_stored_artifact_intact(limit_of_1000_bytes, contributor, run):
    kept = bytes(range(256)) * 2
    stored = store_artifact(actor=contributor, owner=run, path="model/weights.bin", content=io.BytesIO(kept))
    files, events = _stored_files(), AuditEvent.objects.count()

    with pytest.raises(InvalidInput):
        store_artifact(
            actor=contributor, owner=run, path="model/weights.bin", content=io.BytesIO(b"y" * 1001)
        )

    artifact = get_artifact(run=run, path="model/weights.bin")
    assert (artifact.pk, artifact.size, artifact.sha256, artifact.file.name) == (
        stored.pk,
        len(kept),
        hashlib.sha256(kept).hexdigest(),
        stored.file.name,
    )
    with artifact.file.open("rb") as handle:
        assert handle.read() == kept
    assert _stored_files() == files
    assert AuditEvent.objects.count() == events


def test_a_refused_upload_leaves_no_row_no_file_and_no_audit_event(limit_of_1000_bytes, contributor, run):
    files = _stored_files()

    with pytest.raises(InvalidInput):
        store_artifact(actor=contributor, owner=run, path="big.bin", content=RequestBody(b"z" * 5000))

    assert not Artifact.objects.exists()
    assert _stored_files() == files
    assert not AuditEvent.objects.filter(action="run.artifact_stored").exists()


def test_a_request_body_is_read_no_further_than_one_byte_past_the_limit(
    limit_of_1000_bytes, contributor, run
):
    body = RequestBody(b"z" * 10_000)

    with pytest.raises(InvalidInput):
        store_artifact(actor=contributor, owner=run, path="big.bin", content=body)

    assert body.bytes_read == 1001


def test_a_request_body_is_stored_whole_and_byte_for_byte(contributor, run):
    payload = bytes(range(256)) * 10_000  # several read chunks

    artifact = store_artifact(actor=contributor, owner=run, path="model.bin", content=RequestBody(payload))

    with get_artifact(run=run, path="model.bin").file.open("rb") as handle:
        assert handle.read() == payload
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest()


def test_a_declared_size_over_the_limit_is_refused_before_the_body_is_read(
    limit_of_1000_bytes, contributor, run
):
    with pytest.raises(InvalidInput) as error:
        store_artifact(
            actor=contributor, owner=run, path="a.bin", content=UnreadableBody(), declared_size=1001
        )

    assert str(error.value) == "body: artifact 'a.bin' is larger than the limit of 1,000 bytes"


def test_a_viewer_is_refused_for_the_role_before_the_size(limit_of_1000_bytes, viewer, run):
    with pytest.raises(PermissionDenied):
        store_artifact(actor=viewer, owner=run, path="a.bin", content=UnreadableBody(), declared_size=5000)


@pytest.mark.parametrize(
    ("limit", "shown"),
    [
        (5 * 1024**3, "5 GiB"),
        (1536, "1.5 KiB"),
        (1100, "1.1 KiB (1,100 bytes)"),
        (250 * 1024**2, "250 MiB"),
        (1, "1 byte"),
    ],
)
def test_the_limit_is_named_in_readable_units(settings, contributor, run, limit, shown):
    settings.MAX_ARTIFACT_BYTES = limit

    with pytest.raises(InvalidInput) as error:
        store_artifact(
            actor=contributor, owner=run, path="a.bin", content=UnreadableBody(), declared_size=limit + 1
        )

    assert error.value.message == f"artifact 'a.bin' is larger than the limit of {shown}"


def _base_settings(**environ: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MAX_ARTIFACT_BYTES"} | environ
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.MAX_ARTIFACT_BYTES)"
    )
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def test_the_artifact_limit_defaults_to_5_gib_and_comes_from_the_environment():
    assert _base_settings().stdout.strip() == str(5 * 1024**3)
    assert _base_settings(MAX_ARTIFACT_BYTES="0").stdout.strip() == "0"


def test_a_negative_artifact_limit_stops_the_start_up():
    result = _base_settings(MAX_ARTIFACT_BYTES="-1")

    assert result.returncode != 0
    assert "MAX_ARTIFACT_BYTES=-1 is negative: use 0 for no limit." in result.stderr
