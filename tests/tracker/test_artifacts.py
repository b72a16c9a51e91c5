import hashlib
import io

import pytest

from config.exceptions import InvalidInput, NotFound
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
