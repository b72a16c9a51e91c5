"""Bulk uploads end to end: the real Celery worker, Redis and PostgreSQL, with files of a million rows."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.integration.conftest import wait_for
from tests.integration.uploads_helpers import PrivateRedis, Worker, broker, peak_rss_mb, write_metric_csv
from tracker.models import BulkUpload, MetricPoint, MetricSummary
from tracker.services import MetricInput, log_metric
from tracker.services.uploads import create_upload

pytestmark = pytest.mark.services


@pytest.fixture
def worker(postgres):
    """Start workers on the test database and a Redis of this test's own; all stopped at the end.

    A private redis-server per test: test processes running side by side (pytest -n) never take
    each other's messages, as they could from one shared Redis database.
    """
    redis = PrivateRedis()
    started: list[Worker] = []

    def start(**options) -> Worker:
        started.append(Worker(broker_url=redis.url, **options))
        return started[-1]

    try:
        with broker(redis.url):
            yield start
    finally:
        for process in started:
            process.stop()
        redis.close()


def upload_path(*, actor, path: Path, **options) -> BulkUpload:
    with path.open("rb") as content:
        return create_upload(actor=actor, content=content, file_name=path.name, **options).upload


def finished(upload: BulkUpload, worker: Worker, *, timeout: float = 300) -> BulkUpload:
    done = wait_for(
        lambda: BulkUpload.objects.filter(pk=upload.pk, status__in=["done", "failed"]).first(),
        timeout=timeout,
    )
    if done is None:
        pytest.fail(f"upload {upload.pk} did not finish within {timeout} s; worker log:\n{worker.output()}")
    return done


def staging_tables() -> list[str]:
    with connection.cursor() as cursor:
        return [name for name in connection.introspection.table_names(cursor) if "upload_staging" in name]


def wait_until_part_way(upload, process, rows: int = 1_000_000) -> None:
    """Until the upload has staged some of its rows but not all. Staging reports every quarter
    second, so this is watched closely: a slower poll could first see it after staging ended."""
    part_way = BulkUpload.objects.filter(pk=upload.pk, rows_done__gt=0, rows_done__lt=rows)
    assert wait_for(part_way.exists, interval=0.01), process.output()


def test_a_million_row_file_lands_exactly(worker, contributor, run, tmp_path):
    process = worker()
    upload = upload_path(
        actor=contributor, path=write_metric_csv(tmp_path / "m.csv", rows=1_000_000), run=run
    )
    upload = finished(upload, process)
    assert upload.status == "done", upload.error_message
    assert (upload.rows_done, upload.points_inserted) == (1_000_000, 1_000_000)
    assert MetricPoint.objects.filter(run=run).count() == 1_000_000
    counts = dict(MetricSummary.objects.filter(run=run).values_list("key__name", "count"))
    assert counts == {"train/loss": 250_000, "train/acc": 250_000, "val/loss": 250_000, "val/acc": 250_000}
    assert staging_tables() == []


def test_a_broken_line_at_row_500000_stores_nothing_and_reports_line_500001(
    worker, contributor, run, tmp_path
):
    process = worker()
    path = write_metric_csv(tmp_path / "broken.csv", rows=1_000_000, broken_row=500_000)
    upload = finished(upload_path(actor=contributor, path=path, run=run), process)
    assert upload.status == "failed"
    assert upload.error_message == "line 500001, column value: 'not-a-number' is not a number"
    assert (upload.error_line, upload.error_column) == (500_001, "value")
    assert MetricPoint.objects.count() == 0
    assert not MetricSummary.objects.exists()
    assert staging_tables() == []


def test_the_same_key_twice_ingests_once(worker, contributor, run, tmp_path):
    process = worker()
    path = write_metric_csv(tmp_path / "m.csv", rows=10_000)
    first = upload_path(actor=contributor, path=path, run=run, idempotency_key="nightly")
    second = upload_path(actor=contributor, path=path, run=run, idempotency_key="nightly")
    assert second.pk == first.pk
    assert finished(first, process).points_inserted == 10_000
    assert MetricPoint.objects.filter(run=run).count() == 10_000
    assert BulkUpload.objects.count() == 1


def test_gzip_files_are_ingested_by_the_worker(worker, contributor, run, tmp_path):
    process = worker()
    plain = write_metric_csv(tmp_path / "m.csv", rows=50_000, run_id=run.uuid)
    packed = tmp_path / "m.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    upload = finished(upload_path(actor=contributor, path=packed), process)
    assert (upload.status, upload.points_inserted, upload.bytes_done) == (
        "done",
        50_000,
        packed.stat().st_size,
    )


def test_a_worker_killed_mid_file_is_replaced_and_the_file_is_stored_exactly_once(
    worker, contributor, run, tmp_path
):
    lease = {"UPLOAD_LEASE_SECONDS": "3", "UPLOAD_SWEEP_SECONDS": "1"}
    first = worker(extra_env=lease)
    path = write_metric_csv(tmp_path / "m.csv", rows=1_000_000)
    upload = upload_path(actor=contributor, path=path, run=run)
    wait_until_part_way(upload, first)
    first.kill()
    killed_at = BulkUpload.objects.get(pk=upload.pk)
    assert (killed_at.status, killed_at.attempts) == ("running", 1)
    assert killed_at.rows_done < 1_000_000
    # The message was never acknowledged, but Redis would redeliver it only after an hour: the
    # sweep, run by beat in the new worker, finds the upload silent for a lease and queues it.
    second = worker(beat=True, extra_env=lease)
    upload = finished(upload, second)
    assert upload.status == "done", upload.error_message
    assert upload.attempts == 2
    assert MetricPoint.objects.filter(run=run).count() == 1_000_000
    assert sum(MetricSummary.objects.filter(run=run).values_list("count", flat=True)) == 1_000_000
    assert staging_tables() == []


def test_a_redis_restart_with_one_upload_queued_and_one_running_stores_both_exactly_once(
    postgres, contributor, run, tmp_path
):
    redis = PrivateRedis()
    process = None
    try:
        with broker(redis.url):
            process = Worker(
                broker_url=redis.url,
                beat=True,
                extra_env={"UPLOAD_LEASE_SECONDS": "3", "UPLOAD_SWEEP_SECONDS": "1"},
            )
            running = upload_path(
                actor=contributor, path=write_metric_csv(tmp_path / "a.csv", rows=1_000_000), run=run
            )
            queued = upload_path(
                actor=contributor,
                path=write_metric_csv(tmp_path / "b.csv", rows=20_000, run_id=""),
                run=_other_run(run),
            )
            assert wait_for(lambda: BulkUpload.objects.filter(pk=running.pk, rows_done__gt=0).exists()), (
                process.output()
            )
            assert BulkUpload.objects.get(pk=queued.pk).status == "queued"
            redis.restart()  # every message it held is gone, the queued upload's included
            for upload, rows in ((running, 1_000_000), (queued, 20_000)):
                upload = finished(upload, process)
                assert (upload.status, upload.points_inserted) == ("done", rows), upload.error_message
                assert MetricPoint.objects.filter(run=upload.run).count() == rows
    finally:
        if process is not None:
            process.stop()
        redis.close()


def _other_run(run):
    from tests.factories import RunFactory

    return RunFactory(experiment=run.experiment, name="second")


def test_log_metric_is_not_blocked_while_an_upload_runs(worker, contributor, run, tmp_path):
    process = worker()
    upload = upload_path(
        actor=contributor, path=write_metric_csv(tmp_path / "m.csv", rows=1_000_000), run=run
    )
    wait_until_part_way(upload, process)
    started = time.perf_counter()
    log_metric(actor=contributor, run=run, point=MetricInput("train/loss", 0.125, 10**9, 1))
    elapsed_ms = (time.perf_counter() - started) * 1000
    # It returned while the upload was still staging rows: nothing of the upload blocked it.
    during = BulkUpload.objects.get(pk=upload.pk)
    assert during.status == "running" and during.rows_done < 1_000_000, f"log_metric took {elapsed_ms:.1f} ms"
    upload = finished(upload, process)
    assert MetricSummary.objects.get(run=run, key__name="train/loss").count == 250_001


def test_a_50_mb_file_keeps_the_worker_under_300_mb(worker, contributor, run, tmp_path):
    process = worker()
    path = write_metric_csv(tmp_path / "big.csv", rows=750_000, run_id=run.uuid)
    assert path.stat().st_size >= 50 * 1024 * 1024
    upload = finished(upload_path(actor=contributor, path=path), process)
    assert upload.status == "done", upload.error_message
    peak = peak_rss_mb(process.pid)
    assert peak < 300, f"the worker peaked at {peak:.0f} MB"
