# Fixtures are imported from tests/s3_server.py and the mlflow client conftest: F811 is their use.
# ruff: noqa: F811
"""Artifacts in an S3-compatible bucket (ARTIFACT_STORAGE=s3): native API and the real mlflow
client, against moto's S3 server over HTTP."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import mlflow
import pytest

from config.storage import ArtifactS3Storage
from tests.mlflow_client.conftest import client, mlflow_as, tracking_uri  # noqa: F401
from tests.s3_server import s3_artifact_storage, s3_bucket, s3_client, s3_endpoint  # noqa: F401
from tracker.models import Artifact

# Three times the 1 MiB read buffer, so a download streams from the bucket in pieces.
WEIGHTS = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)


def _objects(s3_client, bucket: str) -> dict[str, int]:
    listed = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: item["Size"] for item in listed}


def _put(api, run, path: str, content: bytes):
    return api.generic(
        "PUT", f"/api/v1/runs/{run.uuid}/artifacts/{path}", content, content_type="application/octet-stream"
    )


def test_native_upload_lands_in_the_bucket_and_downloads_byte_for_byte(
    s3_artifact_storage,
    s3_client,
    contributor_api,
    viewer_api,
    run,
):
    uploaded = _put(contributor_api, run, "model/weights.bin", WEIGHTS)
    listing = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts").json()["artifacts"]
    download = viewer_api.get(f"/api/v1/runs/{run.uuid}/artifacts/model/weights.bin")

    assert uploaded.status_code == 201
    assert [(a["path"], a["size"], a["sha256"]) for a in listing] == [
        ("model/weights.bin", len(WEIGHTS), hashlib.sha256(WEIGHTS).hexdigest())
    ]
    assert _objects(s3_client, s3_artifact_storage) == {f"runs/{run.uuid}/model/weights.bin": len(WEIGHTS)}
    assert download.status_code == 200
    assert download["Content-Length"] == str(len(WEIGHTS))
    assert b"".join(download.streaming_content) == WEIGHTS


def test_multipart_upload_and_a_folder_listing_use_the_bucket(
    s3_artifact_storage,
    s3_client,
    contributor_api,
    run,
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    for path in ("eval/scores.csv", "eval/confusion.csv"):
        response = contributor_api.post(
            f"/api/v1/runs/{run.uuid}/artifacts",
            {"file": SimpleUploadedFile("x.csv", path.encode()), "path": path},
            format="multipart",
        )
        assert response.status_code == 201
    _put(contributor_api, run, "notes.txt", b"n")

    listing = contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts", {"path": "eval"}).json()["artifacts"]

    assert [a["path"] for a in listing] == ["eval/confusion.csv", "eval/scores.csv"]
    assert set(_objects(s3_client, s3_artifact_storage)) == {
        f"runs/{run.uuid}/eval/scores.csv",
        f"runs/{run.uuid}/eval/confusion.csv",
        f"runs/{run.uuid}/notes.txt",
    }


@pytest.mark.django_db(transaction=True)
def test_replacing_and_deleting_remove_the_old_objects(
    s3_artifact_storage,
    s3_client,
    contributor_api,
    run,
):
    _put(contributor_api, run, "notes.txt", b"first")
    _put(contributor_api, run, "notes.txt", b"second")
    after_replace = _objects(s3_client, s3_artifact_storage)
    downloaded = b"".join(
        contributor_api.get(f"/api/v1/runs/{run.uuid}/artifacts/notes.txt").streaming_content
    )
    deleted = contributor_api.delete(f"/api/v1/runs/{run.uuid}/artifacts/notes.txt")

    assert list(after_replace.values()) == [len(b"second")]
    assert downloaded == b"second"
    assert deleted.status_code == 204
    assert _objects(s3_client, s3_artifact_storage) == {}


def test_a_stored_file_reads_in_pieces_and_seeks_with_ranged_gets(s3_artifact_storage, contributor, run):
    from tracker.services import store_artifact

    artifact = store_artifact(actor=contributor, owner=run, path="w.bin", content=io.BytesIO(WEIGHTS))
    storage = artifact.file.storage

    with storage.open(artifact.file.name, "rb") as handle:
        head = handle.read(10)
        handle.seek(-10, io.SEEK_END)
        tail = handle.read()
        handle.seek(5)
        middle = handle.read(10)

    assert isinstance(storage._wrapped, ArtifactS3Storage)
    assert (head, tail, middle) == (WEIGHTS[:10], WEIGHTS[-10:], WEIGHTS[5:15])


def test_a_missing_object_reads_as_a_missing_file(s3_artifact_storage, s3_client, contributor, run):
    from tracker.services import store_artifact

    artifact = store_artifact(actor=contributor, owner=run, path="gone.txt", content=io.BytesIO(b"x"))
    s3_client.delete_object(Bucket=s3_artifact_storage, Key=artifact.file.name)

    with pytest.raises(FileNotFoundError):
        artifact.file.storage.open(artifact.file.name, "rb")


@pytest.mark.django_db(transaction=True)
def test_mlflow_client_logs_and_downloads_artifacts_through_the_bucket(
    s3_artifact_storage,
    s3_client,
    client,
    tmp_path,
):
    source = tmp_path / "source"
    (source / "plots").mkdir(parents=True)
    (source / "weights.bin").write_bytes(WEIGHTS)
    (source / "plots" / "curve.csv").write_text("step,loss\n0,1.0\n1,0.5\n")

    mlflow.set_experiment("s3-artifacts")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(source / "weights.bin"))
        mlflow.log_artifacts(str(source), artifact_path="bundle")
    run_id = active.info.run_id

    listed = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "out")))

    assert listed == {("weights.bin", False), ("bundle", True)}
    assert (downloaded / "weights.bin").read_bytes() == WEIGHTS
    assert (downloaded / "bundle" / "weights.bin").read_bytes() == WEIGHTS
    assert (downloaded / "bundle" / "plots" / "curve.csv").read_text() == "step,loss\n0,1.0\n1,0.5\n"
    assert set(_objects(s3_client, s3_artifact_storage)) == {
        f"runs/{run_id}/weights.bin",
        f"runs/{run_id}/bundle/weights.bin",
        f"runs/{run_id}/bundle/plots/curve.csv",
    }
    assert Artifact.objects.filter(run__uuid=run_id).count() == 3


@pytest.mark.parametrize("file_name", ["metrics.csv", "metrics.parquet"])
def test_bulk_uploads_are_stored_in_and_ingested_from_the_bucket(
    s3_artifact_storage, s3_client, contributor, run, django_capture_on_commit_callbacks, file_name
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tracker.models import MetricPoint
    from tracker.services.uploads import create_upload

    steps = list(range(5000))
    if file_name.endswith(".csv"):
        content = ("key,step,value\n" + "".join(f"loss,{s},{1 / (s + 1)}\n" for s in steps)).encode()
    else:  # Parquet is read footer first: the reader seeks, which is a ranged GET here
        buffer = io.BytesIO()
        table = pa.table({"key": ["loss"] * len(steps), "step": steps, "value": [1 / (s + 1) for s in steps]})
        pq.write_table(table, buffer, row_group_size=1000)
        content = buffer.getvalue()

    with django_capture_on_commit_callbacks(execute=True):
        upload = create_upload(
            actor=contributor, content=io.BytesIO(content), file_name=file_name, run=run
        ).upload
    upload.refresh_from_db()

    assert upload.status == "done", upload.error_message
    assert MetricPoint.objects.filter(run=run).count() == len(steps)
    assert _objects(s3_client, s3_artifact_storage) == {upload.file.name: len(content)}


def test_a_bucket_response_that_ends_early_is_an_error_not_a_short_file():
    from config.storage import _ObjectReader

    class Cut:
        key = "runs/x/w.bin"

        def get(self, Range):  # boto3's spelling
            return {"Body": io.BytesIO(b"abc")}

    reader = io.BufferedReader(_ObjectReader(Cut(), 10))

    with pytest.raises(OSError, match=r"runs/x/w.bin: the bucket's response ended at byte 3 of 10"):
        reader.read()
