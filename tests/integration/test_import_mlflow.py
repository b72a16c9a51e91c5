"""`manage.py import_mlflow` against a real `mlflow server` (MLFLOW_SERVER_BIN; `make mlflow-server`
installs one), filled by the real mlflow client, then imported twice."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEvent
from registry.models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel
from tests.conftest import skip_or_fail
from tests.integration.uploads_helpers import PrivateRedis, Worker, _free_port, broker
from tracker.importers.mlflow import IMPORT_TAG
from tracker.models import (
    DEFAULT_EXPERIMENT_ID,
    Artifact,
    BulkUpload,
    DatasetInput,
    Experiment,
    ExperimentTag,
    MetricPoint,
    MetricSummary,
    Param,
    Run,
    Tag,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
MODEL = "imported-model"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow 3 server on a free port: a SQLite backend and a local artifact folder."""
    binary = os.environ.get("MLFLOW_SERVER_BIN", "")
    if not binary or not os.access(binary, os.X_OK):
        skip_or_fail(
            "this test needs an mlflow server: set MLFLOW_SERVER_BIN (make mlflow-server installs one)"
        )
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DJANGO_", "DATABASE_"))}
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(
        [binary, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server starts workers of its own
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _answers(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {Path(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        # Its job consumers may outlive it (they finish their queues on SIGTERM): the group goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()


@pytest.fixture(scope="module")
def source(mlflow_server):
    """What the real mlflow client logged there: one finished run with everything, one deleted
    run, a model with two versions, `champion` on v2 and `production` (protected here) on v1."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    experiment_id = client.create_experiment("imported-experiment", tags={"team": "nlp"})
    run = client.create_run(
        experiment_id, run_name="baseline", tags={"stage": "dev"}, start_time=1_700_000_000_000
    )
    run_id = run.info.run_id
    points = [("loss", 1.0 / (step + 1), step, 1_700_000_001_000 + step) for step in range(5)]
    points += [("acc", 0.5 + step / 10, step, 1_700_000_002_000 + step) for step in range(3)]
    points.append(("acc", 0.75, 2, 1_700_000_003_000))  # the same step logged twice: both points are kept
    points.append(("loss", math.nan, 5, 1_700_000_001_005))  # MLflow's JSON sends NaN as a string
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, timestamp, step) for key, value, step, timestamp in points],
        params=[],
    )
    client.log_param(run_id, "lr", "0.01")
    client.log_param(run_id, "epochs", "5")
    client.set_tag(run_id, "team", "nlp")
    dataset = Dataset(name="train", digest="d1g3st", source_type="local", source='{"uri": "/data/train.csv"}')
    client.log_inputs(
        run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
    )
    client.log_text(run_id, "hello from mlflow", "notes/readme.txt")
    client.set_terminated(run_id, "FINISHED", end_time=1_700_000_010_000)
    deleted = client.create_run(experiment_id, run_name="thrown-away")
    client.delete_run(deleted.info.run_id)
    client.create_registered_model(MODEL, tags={"owner": "nlp"}, description="the model")
    for _ in range(2):
        client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(MODEL, "champion", "2")
    client.set_registered_model_alias(MODEL, "production", "1")
    return {
        "url": mlflow_server,
        "experiment_id": experiment_id,
        "run_id": run_id,
        "deleted_run_id": deleted.info.run_id,
        "points": points,
    }


def _import(source, user, *extra):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_mlflow",
        "--tracking-uri",
        source["url"],
        "--as",
        user.username,
        *extra,
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (
            Experiment, ExperimentTag, Run, Param, Tag, MetricPoint, MetricSummary, DatasetInput, Artifact,
            BulkUpload, RegisteredModel, ModelVersion, ModelAlias, PromotionRequest, AuditEvent,
        )
    }  # fmt: skip


@pytest.fixture
def importer_env(monkeypatch, settings, django_db_blocker):
    # A transactional test that ran before may have flushed the Default experiment every database
    # starts with (migration 0002); MLflow's Default maps onto it, as on a real installation.
    with django_db_blocker.unblock():
        Experiment.objects.get_or_create(pk=DEFAULT_EXPERIMENT_ID, defaults={"name": "Default"})
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings.REGISTRY_PROTECTED_ALIASES = ["production"]


def test_import_copies_everything_exactly_once_and_never_moves_a_protected_alias(
    transactional_db, importer_env, source, contributor
):
    out, err = _import(source, contributor)

    assert "Imported 1 experiments, 1 runs" in out
    experiment = Experiment.objects.get(name="imported-experiment")
    assert dict(experiment.tags.values_list("key", "value")) == {
        "team": "nlp",
        IMPORT_TAG: f"{source['url']}/#/experiments/{source['experiment_id']}",
    }
    run = Run.objects.get(uuid=source["run_id"])  # the MLflow run id is ours
    assert not Run.objects.filter(uuid=source["deleted_run_id"]).exists()
    assert (run.experiment, run.name, run.status, run.user) == (
        experiment,
        "baseline",
        "FINISHED",
        contributor,
    )
    assert int(run.start_time.timestamp() * 1000) == 1_700_000_000_000
    assert int(run.end_time.timestamp() * 1000) == 1_700_000_010_000
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01", "epochs": "5"}
    tags = dict(Tag.objects.filter(run=run).values_list("key", "value"))
    assert tags["team"] == "nlp" and tags["stage"] == "dev" and tags["mlflow.runName"] == "baseline"

    stored = sorted(
        MetricPoint.objects.filter(run=run).values_list("key__name", "value", "step", "timestamp", "is_nan")
    )
    assert stored == sorted(
        (key, 0.0, step, ts, True) if math.isnan(value) else (key, value, step, ts, False)
        for key, value, step, ts in source["points"]
    )
    summaries = {s.key.name: s for s in MetricSummary.objects.filter(run=run).select_related("key")}
    assert (summaries["acc"].count, summaries["acc"].last_value) == (4, 0.75)
    loss = summaries["loss"]
    assert (loss.count, loss.min_value, loss.last_step, loss.last_is_nan) == (6, 0.2, 5, True)
    upload = BulkUpload.objects.get()  # the points came through the bulk path
    assert (upload.run, upload.format, upload.status, upload.points_inserted) == (run, "parquet", "done", 10)

    dataset = DatasetInput.objects.get(run=run)
    assert (dataset.name, dataset.digest, dataset.context, dataset.source_type) == (
        "train", "d1g3st", "training", "local",
    )  # fmt: skip
    artifact = Artifact.objects.get(run=run)
    assert artifact.path == "notes/readme.txt"
    assert artifact.sha256 == hashlib.sha256(b"hello from mlflow").hexdigest()
    with artifact.file.open("rb") as content:
        assert content.read() == b"hello from mlflow"

    model = RegisteredModel.objects.get(name=MODEL)
    assert model.description == "the model"
    assert dict(model.tags.values_list("key", "value")) == {"owner": "nlp"}
    versions = list(ModelVersion.objects.filter(model=model).order_by("version"))
    assert [(v.version, v.run, v.source) for v in versions] == [
        (1, run, f"runs:/{run.uuid}/model"),
        (2, run, f"runs:/{run.uuid}/model"),
    ]
    assert dict(ModelAlias.objects.filter(model=model).values_list("alias", "version__version")) == {
        "champion": 2
    }  # production is protected: not moved
    assert f"{MODEL!r}: alias 'production' → version 1 is protected by the promotion policy: not moved" in err

    before = _counts()
    out, err = _import(source, contributor)
    assert _counts() == before  # nothing copied twice, not even an audit event
    assert "Imported 0 experiments, 0 runs (0 updated), 0 params, 0 tags, 0 datasets, 0 artifacts" in out


@pytest.fixture
def worker(postgres):
    """A real worker on the test database and a Redis of this test's own (as the upload tests)."""
    redis = PrivateRedis()
    try:
        with broker(redis.url):
            process = Worker(broker_url=redis.url)
            try:
                yield process
            finally:
                process.stop()
    finally:
        redis.close()


def test_the_points_are_ingested_by_a_real_worker_while_the_command_waits(
    importer_env, source, contributor, worker
):
    answer: dict[str, str] = {}

    def run_command() -> None:
        try:
            answer["out"], _ = _import(
                source, contributor, "--experiment", "imported-experiment", "--skip-registry"
            )
        finally:
            connection.close()  # this thread's own connection, or the test database cannot be dropped

    # In a thread, so that a worker that never ingests fails the test instead of hanging it.
    command = threading.Thread(target=run_command, daemon=True)
    command.start()
    command.join(timeout=300)
    if command.is_alive():
        pytest.fail(f"the import still waits after 300 s; worker log:\n{worker.output()}")

    upload = BulkUpload.objects.get()  # done when the command returned: it waited for the worker
    assert (upload.status, upload.rows_done, upload.points_inserted) == ("done", 10, 10)
    assert MetricPoint.objects.filter(run__uuid=source["run_id"]).count() == len(source["points"])
    assert "10 metric points in 1 uploads" in answer["out"]


def test_request_promotions_opens_one_request_for_a_protected_alias(
    transactional_db, importer_env, source, contributor
):
    _import(source, contributor, "--model", MODEL, "--request-promotions")

    request = PromotionRequest.objects.get()
    assert (request.version.version, request.label_name, request.status, request.requester) == (
        1, "production", "pending", contributor,
    )  # fmt: skip
    assert not ModelAlias.objects.filter(alias="production").exists()
    # --model alone still brought the version's run, with its evidence.
    assert MetricPoint.objects.filter(run__uuid=source["run_id"]).count() == len(source["points"])

    _, err = _import(source, contributor, "--model", MODEL, "--request-promotions")
    assert PromotionRequest.objects.count() == 1
    assert "already asks to move alias 'production' to version 1" in err


def test_include_deleted_copies_a_deleted_run_as_deleted(transactional_db, importer_env, source, contributor):
    _import(
        source, contributor, "--experiment", "imported-experiment", "--include-deleted", "--skip-registry"
    )

    assert Run.objects.get(uuid=source["deleted_run_id"]).lifecycle == "deleted"
    assert not RegisteredModel.objects.exists()


def test_a_server_that_does_not_answer_is_an_error_naming_the_url(db, importer_env, contributor):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: refused
        with pytest.raises(CommandError) as error:
            call_command("import_mlflow", "--tracking-uri", url, "--as", contributor.username)
    assert str(error.value).startswith(f"tracking_uri: {url}/api/2.0/mlflow/experiments/search: ")
    assert not Experiment.objects.exclude(pk=0).exists()


@pytest.mark.parametrize(
    ("uri", "user", "message"),
    [
        (
            "file:///tmp/mlruns",
            "carl-contributor",
            "tracking_uri: 'file:///tmp/mlruns' is not an http(s) URL",
        ),
        ("http://127.0.0.1:5000", "nobody", "No user named 'nobody'."),
        ("http://127.0.0.1:5000", "vera-viewer", "Importing from MLflow needs the contributor role"),
    ],
)
def test_a_bad_uri_or_user_is_refused_before_any_request(db, contributor, viewer, uri, user, message):
    with pytest.raises(CommandError) as error:
        call_command("import_mlflow", "--tracking-uri", uri, "--as", user)
    assert message in str(error.value)
