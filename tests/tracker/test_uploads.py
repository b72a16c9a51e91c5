"""Bulk uploads through the services: formats, all-or-nothing errors naming line and column, exactly once."""

from __future__ import annotations

import gzip
import io
import math
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditEvent
from config.exceptions import Conflict, InvalidInput, PermissionDenied
from tests.factories import RunFactory, UserFactory
from tracker.models import BulkUpload, MetricPoint, MetricSummary, Run
from tracker.permissions import delete_experiment_permission, set_experiment_permission
from tracker.services import delete_experiment, delete_run, uploads
from tracker.services.rollups import fold_all_stale_rollups

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload_file(contributor, django_capture_on_commit_callbacks):
    """`upload_file(content, **options)` → the upload, after its (eager) task has run."""

    def send(content: bytes | str, *, actor=None, file_name: str = "metrics.csv", **options) -> BulkUpload:
        data = content.encode() if isinstance(content, str) else content
        with django_capture_on_commit_callbacks(execute=True):
            receipt = uploads.create_upload(
                actor=actor or contributor, content=io.BytesIO(data), file_name=file_name, **options
            )
        receipt.upload.refresh_from_db()
        return receipt.upload

    return send


def test_a_csv_for_one_run_stores_every_point_with_summaries_and_one_audit_event(run, upload_file):
    events_before = AuditEvent.objects.count()
    upload = upload_file(
        "key,step,value,timestamp\nloss,0,1.5,1000\nloss,1,0.5,2000\nacc,0,0.25,1000\n", run=run
    )
    assert upload.status == BulkUpload.Status.DONE
    assert (upload.rows_done, upload.points_inserted, upload.bytes_done) == (3, 3, upload.size_bytes)
    assert MetricPoint.objects.filter(run=run).count() == 3
    loss = MetricSummary.objects.get(run=run, key__name="loss")
    assert (loss.last_value, loss.last_step, loss.min_value, loss.max_value, loss.count) == (
        0.5,
        1,
        0.5,
        1.5,
        2,
    )
    assert AuditEvent.objects.count() == events_before + 1
    event = AuditEvent.objects.latest("sequence")
    assert event.action == "upload.ingested"
    assert event.after["points_inserted"] == 3


def test_rows_name_their_runs_by_run_id(experiment, contributor, upload_file):
    first, second = RunFactory(experiment=experiment), RunFactory(experiment=experiment)
    text = f"run_id,key,step,value\n{first.uuid},loss,0,1\n{second.uuid},loss,0,2\n{second.uuid},loss,1,3\n"
    upload = upload_file(text)
    assert upload.status == "done", upload.error_message
    assert MetricPoint.objects.filter(run=first).count() == 1
    assert MetricPoint.objects.filter(run=second).count() == 2


def test_runs_are_created_from_run_names_inside_the_named_experiment(experiment, upload_file):
    text = "run_name,key,step,value\nalpha,loss,0,1\nbeta,loss,0,2\nalpha,loss,1,0.5\n"
    upload = upload_file(text, experiment=experiment, create_runs=True)
    assert upload.status == "done", upload.error_message
    assert upload.runs_created == 2
    alpha = Run.objects.get(experiment=experiment, name="alpha")
    assert MetricSummary.objects.get(run=alpha).last_value == 0.5


def test_a_missing_timestamp_becomes_the_upload_time_so_a_retry_stores_the_same_points(run, upload_file):
    upload = upload_file("key,step,value,timestamp\nloss,0,1,\nloss,1,2,5\n", run=run)
    assert upload.status == "done", upload.error_message
    created_ms = int(upload.created_at.timestamp() * 1000)
    assert sorted(MetricPoint.objects.filter(run=run).values_list("timestamp", flat=True)) == [5, created_ms]


def test_nan_and_infinity_are_stored_as_mlflow_stores_them(run, upload_file):
    upload = upload_file("key,step,value\nloss,0,NaN\nloss,1,Infinity\nloss,2,-inf\n", run=run)
    assert upload.status == "done", upload.error_message
    points = list(MetricPoint.objects.filter(run=run).order_by("step").values_list("value", "is_nan"))
    assert points == [(0.0, True), (float("inf"), False), (float("-inf"), False)]


@pytest.mark.parametrize(
    ("content", "message", "line", "column"),
    [
        ("key,step,value\nloss,0,1\nloss,1,abc\n", "line 3, column value: 'abc' is not a number", 3, "value"),
        ("key,step,value\nloss,0,1\nloss,1.5,2\n", "line 3, column step: '1.5' is not an integer", 3, "step"),
        ("key,step,value\nloss,0,1\nloss,,2\n", "line 3, column step: is missing", 3, "step"),
        ("key,step,value\nloss,0,1\n,1,2\n", "line 3, column key: is missing", 3, "key"),
        ("key,step,value\nloss,0,1\nloss,1\n", "line 3: has 2 fields; the header has 3", 3, ""),
        ("key,step,value\nloss,0,1\n\nloss,1\n", "line 4: has 2 fields; the header has 3", 4, ""),
        (
            'key,step,value\nloss,0,1\n"lo\nss",1,2\nloss,x,3\n',
            "line 3: has a quoted value that runs on to the next line; a value may not hold a line break",
            3,
            "",
        ),
        (
            "key,step,value\nloss,0,1\n../up,1,2\n",
            "line 3, column key: '../up' must be a normalised relative path (no '..', no leading '/')",
            3,
            "key",
        ),
        (
            "key,step,value\nbad key!,0,1\n",
            "line 2, column key: 'bad key!' may only contain letters, digits, underscores, dashes, "
            "periods, spaces, colons and slashes",
            2,
            "key",
        ),
        (
            "key,step,value,timestamp\nloss,0,1,-5\n",
            "line 2, column timestamp: -5 is not a timestamp (milliseconds since the epoch, a non-negative "
            "integer)",
            2,
            "timestamp",
        ),
        (
            "key,step,value\nloss,99999999999999999999,1\n",
            "line 2, column step: '99999999999999999999' is not an integer",
            2,
            "step",
        ),
        (
            "key,step,value,colour\nloss,0,1,red\n",
            "line 1, column colour: is not a known column; "
            "expected run_id, run_name, key, step, value, timestamp",
            1,
            "colour",
        ),
        ("key,value\nloss,1\n", "line 1, column step: is missing from the header", 1, "step"),
    ],
)
def test_a_bad_line_fails_the_upload_naming_line_and_column_and_stores_nothing(
    run, upload_file, content, message, line, column
):
    upload = upload_file(content, run=run)
    assert upload.status == BulkUpload.Status.FAILED
    assert upload.error_message == message
    assert (upload.error_line, upload.error_column) == (line, column)
    assert MetricPoint.objects.filter(run=run).count() == 0
    assert not MetricSummary.objects.filter(run=run).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"key,step,value\nloss,0,1\nlo\xffss,1,2\n", "line 3: is not UTF-8 text; save the file as UTF-8"),
        (
            "key,step,value\nloss,0,1\n".encode("utf-16"),
            "line 1: is not UTF-8 text; save the file as UTF-8 (it looks like UTF-16)",
        ),
        (b"k\xe9y,step,value\nloss,0,1\n", "line 1: is not UTF-8 text; save the file as UTF-8"),
    ],
    ids=["latin-1-row", "utf-16", "latin-1-header"],
)
def test_a_csv_that_is_not_utf8_names_its_line_in_plain_words(run, upload_file, content, message):
    upload = upload_file(content, run=run)
    assert (upload.status, upload.error_message) == ("failed", message)
    assert not MetricPoint.objects.filter(run=run).exists()


@pytest.mark.parametrize(
    ("content", "file_name", "reason"),
    [
        (b"key,step,value\rloss,1,1\rloss,2,2\r", "mac.csv", "its lines end in a bare carriage return"),
        (gzip.compress(b"key,step,value\nloss,1,1\n", mtime=0)[:-8], "cut.csv.gz", "gzip data ends early"),
        (b"\x1f\x8b\x08\x00garbage-after-the-gzip-magic", "fake.csv.gz", "gzip"),
        (gzip.compress(b'{"key": "loss", "value": 1, "step": 1}\n', mtime=0)[:-8], "m.jsonl.gz", "early"),
    ],
    ids=["bare-cr-line-endings", "cut-gzip", "not-gzip", "cut-gzip-jsonl"],  # ids the same on every worker
)
def test_a_file_that_cannot_be_read_fails_naming_why_instead_of_crashing_the_worker(
    run, upload_file, content, file_name, reason
):
    """These crashed the task once, and the stalled-upload sweep retried them for ever."""
    upload = upload_file(content, run=run, file_name=file_name)
    assert upload.status == BulkUpload.Status.FAILED
    assert upload.error_message.startswith("file: cannot be read: ") and reason in upload.error_message
    assert (upload.error_line, upload.error_column, upload.attempts) == (None, "", 1)
    assert MetricPoint.objects.filter(run=run).count() == 0


def test_whole_numbers_written_as_decimals_are_steps_and_timestamps_as_in_json_lines(run, upload_file):
    """A float column written by pandas reads "3.0"; JSON Lines (and the JSON APIs) take 3.0."""
    content = (
        "key,step,value,timestamp\nloss,3.0,1,1.7e12\nloss, 4 ,2,1700000000001\nloss,9007199254740993,3,1\n"
    )
    upload = upload_file(content, run=run)
    assert upload.status == BulkUpload.Status.DONE, upload.error_message
    assert list(MetricPoint.objects.filter(run=run).order_by("step").values_list("step", "timestamp")) == [
        (3, 1_700_000_000_000),
        (4, 1_700_000_000_001),
        (9_007_199_254_740_993, 1),  # an integer past 2**53 beside decimals keeps every digit
    ]


@pytest.mark.parametrize(
    ("step", "shown"),
    [("1e300", "'1e300'"), ("9007199254740993.0", "'9007199254740993.0'"), ("nan", "'nan'")],
)
def test_a_decimal_step_that_is_not_exactly_a_whole_number_is_refused(run, upload_file, step, shown):
    upload = upload_file(f"key,step,value\nloss,1,1\nloss,{step},2\n", run=run)
    assert upload.error_message == f"line 3, column step: {shown} is not an integer"
    assert MetricPoint.objects.filter(run=run).count() == 0


def test_quoted_values_on_one_line_are_read(run, upload_file):
    upload = upload_file('key,step,value\n"loss",1,"2.5"\n"loss","2",3\n', run=run)
    assert upload.status == BulkUpload.Status.DONE, upload.error_message
    assert list(MetricPoint.objects.filter(run=run).order_by("step").values_list("step", "value")) == [
        (1, 2.5),
        (2, 3.0),
    ]


def test_blank_lines_in_a_csv_are_skipped_and_later_lines_keep_their_numbers(run, upload_file):
    upload = upload_file("key,step,value\nloss,1,1\n\nloss,2,2\n\n", run=run)
    assert (upload.status, upload.rows_done, upload.points_inserted) == (BulkUpload.Status.DONE, 2, 2)
    failed = upload_file("key,step,value\nloss,5,1\n\n\nloss,6,x\n", run=run)
    assert failed.error_message == "line 5, column value: 'x' is not a number"


def test_an_upload_that_keeps_failing_unexpectedly_stops_after_its_attempts(run, contributor, settings):
    """A failure that is not the file's (here its stored copy vanished) is retried, but not for ever."""
    settings.UPLOAD_MAX_ATTEMPTS = 2
    upload = uploads.create_upload(
        actor=contributor, content=io.BytesIO(b"key,step,value\nloss,1,1\n"), file_name="m.csv", run=run
    ).upload
    upload.file.storage.delete(upload.file.name)
    for attempt in (1, 2):
        with pytest.raises(FileNotFoundError):
            uploads.ingest_upload(upload_id=upload.pk)
        upload.refresh_from_db()
        assert upload.attempts == attempt
    assert upload.status == BulkUpload.Status.FAILED
    assert upload.error_message.startswith(
        "file: ingesting stopped after 2 attempts; the last failed with FileNotFoundError"
    )


def test_an_unknown_run_fails_the_upload_at_its_first_line(run, upload_file):
    text = f"run_id,key,step,value\n{run.uuid},loss,0,1\n{'f' * 32},loss,1,2\n"
    upload = upload_file(text)
    assert upload.status == "failed"
    assert upload.error_message == f"line 3, column run_id: run '{'f' * 32}' does not exist"
    assert MetricPoint.objects.count() == 0


def test_a_run_name_unknown_in_the_experiment_fails_without_create_runs(experiment, upload_file):
    upload = upload_file("run_name,key,step,value\nghost,loss,0,1\n", experiment=experiment)
    assert (
        upload.error_message
        == "line 2, column run_name: no run is named 'ghost' in experiment 'digits-sweep'"
    )


def test_a_file_without_runs_needs_a_run_given_with_it(upload_file, experiment):
    upload = upload_file("key,step,value\nloss,0,1\n")
    assert upload.error_message == (
        "line 1, column run_id: is missing; give a run with the upload or name runs in the file by run_id"
    )
    into_experiment = upload_file("key,step,value\nloss,0,1\n", experiment=experiment, create_runs=True)
    assert into_experiment.error_message.endswith("by run_id (or run_name, with the experiment given)")


def test_a_tensorboard_file_without_its_run_is_refused_at_once(upload_file, experiment):
    with pytest.raises(InvalidInput) as refused:
        upload_file(b"\x00" * 16, experiment=experiment, file_name="events.out.tfevents.1")
    assert str(refused.value) == "run_id: a TensorBoard event file needs the run its scalars belong to"
    assert not BulkUpload.objects.exists()


def test_json_lines_may_hold_nan_and_infinity_as_pythons_json_writes_them(run, upload_file):
    jsonl = (
        '{"key": "loss", "step": 0, "value": NaN}\n'
        '{"key": "loss", "step": 1, "value": Infinity}\n'
        '{"key": "loss", "step": 2, "value": -Infinity}\n'
        '{"key": "loss", "step": 3, "value": 1e999}\n'
        '{"key": "loss", "step": 4, "value": 0.25}\n'
    )
    upload = upload_file(jsonl, run=run, file_name="m.jsonl")
    assert upload.status == "done", upload.error_message
    stored = [
        ("nan" if point.is_nan else point.value)
        for point in MetricPoint.objects.filter(run=run).order_by("step")
    ]
    assert stored == ["nan", math.inf, -math.inf, math.inf, 0.25]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"key": "loss", "step": 1, "value": NaN', "line 1: is not valid JSON"),
        ('{"key": "\\ud800", "step": 1, "value": 1}', "line 1: is not valid JSON"),
        ('{"key": "loss", "value": 1}', "line 1, column step: is missing from the object"),
        ('{"key": "loss", "step": 1, "value": NaN}'.encode("utf-16"), "line 1: is not valid JSON"),
    ],
    ids=["unclosed", "lone-surrogate", "missing-field", "utf-16"],
)
def test_a_json_line_python_cannot_read_either_is_refused_naming_it(run, upload_file, line, message):
    content = line + b"\n" if isinstance(line, bytes) else line + "\n"
    upload = upload_file(content, run=run, file_name="m.jsonl")
    assert upload.status == "failed"
    assert upload.error_message.startswith(message), upload.error_message


def test_the_same_idempotency_key_returns_the_first_upload_and_ingests_once(run, contributor, upload_file):
    first = upload_file("key,step,value\nloss,0,1\n", run=run, idempotency_key="k-1")
    again = upload_file("key,step,value\nloss,0,1\n", run=run, idempotency_key="k-1")
    assert again.pk == first.pk
    assert BulkUpload.objects.count() == 1
    assert MetricPoint.objects.filter(run=run).count() == 1


def test_an_idempotency_key_reused_for_another_file_is_a_conflict(run, upload_file):
    first = upload_file("key,step,value\nloss,0,1\n", run=run, idempotency_key="k-1")
    with pytest.raises(Conflict) as error:
        upload_file("key,step,value\nloss,0,2\n", run=run, idempotency_key="k-1")
    assert str(error.value) == (
        f"Idempotency-Key: 'k-1' was already used for upload {first.pk}, "
        "of another file or target; use a new key"
    )


def test_the_same_file_for_the_same_target_returns_the_existing_upload(run, upload_file):
    first = upload_file("key,step,value\nloss,0,1\n", run=run)
    assert upload_file("key,step,value\nloss,0,1\n", run=run).pk == first.pk
    other_run = RunFactory(experiment=run.experiment)
    assert upload_file("key,step,value\nloss,0,1\n", run=other_run).pk != first.pk


def test_the_same_file_from_another_user_is_their_own_upload(run, upload_file, admin, settings):
    """Another user's upload of the same bytes is neither returned nor revealed (its file name,
    its uploader), and theirs is checked against their own rights."""
    settings.DEFAULT_PERMISSION = "READ"
    text = "key,step,value,run_id\nsecret,1,42," + run.uuid + "\n"
    first = upload_file(text, actor=admin, file_name="admin-secret.csv")
    outsider = UserFactory(username="otto")
    assign_role(user=outsider, role=Role.CONTRIBUTOR)
    mine = upload_file(text, actor=outsider, file_name="mine.csv")
    assert mine.pk != first.pk
    assert (mine.created_by, mine.file_name, mine.status) == (outsider, "mine.csv", "failed")
    assert mine.error_message == f"line 2, column run_id: otto may not write to run '{run.uuid}'"
    assert MetricPoint.objects.filter(run=run).count() == 1  # the admin's point alone


@pytest.fixture
def queued(contributor, django_capture_on_commit_callbacks):
    """`queued(content, **options)` → an upload accepted and queued, its task not yet run."""

    def send(content: str, **options) -> BulkUpload:
        with django_capture_on_commit_callbacks(execute=False):
            receipt = uploads.create_upload(
                actor=contributor, content=io.BytesIO(content.encode()), file_name="m.csv", **options
            )
        return receipt.upload

    return send


def _ingested(upload: BulkUpload) -> BulkUpload:
    return uploads.ingest_upload(upload_id=upload.pk)


def test_a_run_deleted_after_its_upload_was_queued_gets_none_of_its_points(run, contributor, queued):
    upload = queued("key,step,value\nloss,0,1\n", run=run)
    delete_run(actor=contributor, run=run)
    done = _ingested(upload)
    assert (done.status, done.error_column) == ("failed", "run_id")
    assert done.error_message == f"run_id: run {run.uuid} was deleted while the file was read"
    assert not MetricPoint.objects.filter(run=run).exists()


def test_an_upload_to_a_run_whose_experiment_was_deleted_meanwhile_names_the_experiment(
    experiment, run, admin, queued
):
    """The experiment's deletion took the run along: the experiment is the reason to name."""
    upload = queued("key,step,value\nloss,0,1\n", run=run)
    delete_experiment(actor=admin, experiment=experiment)
    done = _ingested(upload)
    assert (
        done.error_message == f"experiment_id: experiment {experiment.pk} was deleted while the file waited"
    )
    assert not MetricPoint.objects.filter(run=run).exists()


def test_a_grant_withdrawn_after_an_upload_was_queued_stops_it(
    experiment, contributor, admin, queued, settings
):
    settings.DEFAULT_PERMISSION = "READ"
    theirs = RunFactory(experiment=experiment, user=admin)
    set_experiment_permission(actor=admin, experiment=experiment, grantee=contributor, level=Level.EDIT)
    upload = queued("key,step,value\nloss,0,1\n", run=theirs)
    delete_experiment_permission(actor=admin, experiment=experiment, grantee=contributor)
    done = _ingested(upload)
    assert done.status == "failed"
    assert done.error_message == f"run_id: {contributor} may no longer write to run {theirs.uuid}"
    assert not MetricPoint.objects.filter(run=theirs).exists()


def test_an_experiment_deleted_after_an_upload_was_queued_stops_it(experiment, run, admin, queued):
    upload = queued(f"run_id,key,step,value\n{run.uuid},loss,0,1\n", experiment=experiment)
    delete_experiment(actor=admin, experiment=experiment)
    done = _ingested(upload)
    assert (done.status, done.error_column) == ("failed", "experiment_id")
    assert (
        done.error_message == f"experiment_id: experiment {experiment.pk} was deleted while the file waited"
    )
    assert not MetricPoint.objects.filter(run=run).exists()


def test_a_failed_upload_does_not_block_the_same_file_later(upload_file, experiment):
    text = "run_name,key,step,value\nlate,loss,0,1\n"
    failed = upload_file(text, experiment=experiment)
    assert failed.status == "failed"
    RunFactory(experiment=experiment, name="late")
    retried = upload_file(text, experiment=experiment)
    assert retried.pk != failed.pk and retried.status == "done"


def test_ingesting_a_finished_upload_again_changes_nothing(run, upload_file):
    upload = upload_file("key,step,value\nloss,0,1\nloss,1,2\n", run=run)
    events = AuditEvent.objects.count()
    again = uploads.ingest_upload(upload_id=upload.pk)
    assert (again.status, again.attempts, again.points_inserted) == ("done", 1, 2)
    assert AuditEvent.objects.count() == events
    assert MetricSummary.objects.get(run=run).count == 2


def test_points_already_stored_are_not_counted_twice(run, upload_file):
    upload_file("key,step,value,timestamp\nloss,0,1,7\n", run=run)
    second = upload_file("key,step,value,timestamp\nloss,0,1,7\nloss,1,3,7\nloss,1,3,7\n", run=run)
    assert (second.rows_done, second.points_inserted) == (3, 1)
    summary = MetricSummary.objects.get(run=run)
    assert (summary.count, summary.last_value, summary.max_value) == (2, 3.0, 3.0)


def test_gzip_csv_and_json_lines_are_read(run, upload_file):
    csv_upload = upload_file(gzip.compress(b"key,step,value\nloss,0,1\n"), run=run, file_name="m.csv.gz")
    jsonl = b'{"key": "acc", "step": 0, "value": 0.5}\n\n{"key": "acc", "step": 1, "value": "NaN"}\n'
    jsonl_upload = upload_file(gzip.compress(jsonl), run=run, file_name="m.jsonl.gz")
    assert (csv_upload.status, jsonl_upload.status) == ("done", "done"), jsonl_upload.error_message
    assert MetricPoint.objects.filter(run=run).count() == 3


def test_a_json_lines_file_may_start_with_a_byte_order_mark_as_a_csv_may(run, upload_file):
    upload = upload_file(
        b'\xef\xbb\xbf{"key": "loss", "step": 1, "value": 0.5}\n', run=run, file_name="m.jsonl"
    )
    assert (upload.status, upload.points_inserted) == (BulkUpload.Status.DONE, 1)


def test_a_bad_json_line_names_its_line(run, upload_file):
    jsonl = '{"key": "acc", "step": 0, "value": 0.5}\n{"key": "acc", "step": 1, "value": true}\n{oops\n'
    upload = upload_file(jsonl, run=run, file_name="m.jsonl")
    assert upload.error_message == "line 2, column value: 'true' is not a number"


def test_parquet_files_are_read_by_batch(run, upload_file):
    table = pa.table({"key": ["loss"] * 3, "step": [0, 1, 2], "value": [3.0, 2.0, 1.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    upload = upload_file(buffer.getvalue(), run=run, file_name="m.parquet")
    assert upload.status == "done", upload.error_message
    assert MetricSummary.objects.get(run=run).min_value == 1.0


@pytest.mark.parametrize(
    "text_type",
    [pa.large_string(), pa.dictionary(pa.int32(), pa.string()), pa.dictionary(pa.int8(), pa.large_string())],
    ids=["large_string", "category", "category-of-large-strings"],
)
def test_parquet_text_columns_may_be_written_as_pandas_writes_them(run, upload_file, text_type):
    """`astype("category")` and `string[pyarrow]` columns, as pandas' to_parquet writes them."""
    table = pa.table(
        {
            "key": pa.array(["loss", "acc", "loss"]).cast(text_type),
            "run_id": pa.array([run.uuid] * 3).cast(text_type),
            "step": [0, 0, 1],
            "value": [3.0, 0.5, 1.0],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    upload = upload_file(buffer.getvalue(), run=run, file_name="m.parquet")
    assert upload.status == "done", upload.error_message
    counts = dict(MetricSummary.objects.filter(run=run).values_list("key__name", "count"))
    assert counts == {"loss": 2, "acc": 1}


def test_a_viewer_cannot_upload(run, viewer, upload_file):
    with pytest.raises(PermissionDenied):
        upload_file("key,step,value\nloss,0,1\n", run=run, actor=viewer)
    assert not BulkUpload.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"file_name": "m.txt"},
            "format: cannot tell the format of 'm.txt'; give one of csv, jsonl, parquet, tensorboard",
        ),
        ({"format": "xls"}, "format: 'xls' is not one of csv, jsonl, parquet, tensorboard"),
        ({"create_runs": True}, "create_runs: creating runs needs the experiment to create them in"),
    ],
)
def test_bad_upload_options_are_refused_before_anything_is_stored(run, upload_file, options, message):
    with pytest.raises(InvalidInput) as error:
        upload_file("key,step,value\nloss,0,1\n", **options)
    assert str(error.value) == message
    assert not BulkUpload.objects.exists()


def test_an_empty_file_is_refused(run, upload_file):
    with pytest.raises(InvalidInput) as error:
        upload_file(b"", run=run)
    assert str(error.value) == "file: is empty"


def test_the_sweep_requeues_uploads_whose_task_vanished_and_leaves_live_ones(run, contributor, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    receipt = uploads.create_upload(
        actor=contributor, content=io.BytesIO(b"key,step,value\nloss,0,1\n"), file_name="m.csv", run=run
    )  # its on_commit never ran: the message was lost
    stale = timezone.now() - timedelta(seconds=settings.UPLOAD_LEASE_SECONDS + 1)
    assert uploads.requeue_stalled_uploads() == []
    BulkUpload.objects.filter(pk=receipt.upload.pk).update(heartbeat_at=stale)
    assert uploads.requeue_stalled_uploads() == [receipt.upload.pk]


def _event_file(folder, scalars) -> bytes:
    """An event file written by tensorboardX's SummaryWriter, as a training script writes one."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(folder))
    for tag, step, value in scalars:
        writer.add_scalar(tag, value, step)
    writer.add_text("notes", "not a scalar", 0)
    writer.close()
    (path,) = folder.glob("*tfevents*")
    return path.read_bytes()


def test_tensorboard_scalars_are_read_and_other_summaries_skipped(run, upload_file, tmp_path):
    content = _event_file(tmp_path, [("train/loss", 0, 2.0), ("train/loss", 1, 0.5), ("val/acc", 1, 0.75)])
    upload = upload_file(content, run=run, file_name="events.out.tfevents.1700000000.host")
    assert upload.status == "done", upload.error_message
    assert upload.format == "tensorboard"
    summaries = dict(MetricSummary.objects.filter(run=run).values_list("key__name", "last_value"))
    assert summaries == {"train/loss": 0.5, "val/acc": 0.75}


def test_a_truncated_event_file_names_its_record_and_stores_nothing(run, upload_file, tmp_path):
    content = _event_file(tmp_path, [("loss", step, 1.0) for step in range(3)])
    upload = upload_file(content[:-6], run=run, file_name="events.out.tfevents.1.host")
    assert upload.error_message == "record 5: is cut short (an incomplete record)"
    assert MetricPoint.objects.count() == 0


def test_a_bad_parquet_cell_names_its_row(run, upload_file):
    table = pa.table({"key": ["loss", "bad key!"], "step": [0, 1], "value": [1.0, 2.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    upload = upload_file(buffer.getvalue(), run=run, file_name="m.parquet")
    assert upload.error_message.startswith("row 2, column key: 'bad key!' may only contain letters")


@pytest.mark.parametrize("stored_before", [0, 100], ids=["all new", "some stored already"])
def test_uploaded_points_feed_the_charts_rollups_and_the_run_tables_key_set_as_logged_ones_do(
    experiment, contributor, upload_file, stored_before
):
    """Charts read rollups and the run table its key sets: an upload keeps both as log_batch does,
    also when some of its points were stored already (only the new ones count)."""
    from tracker.models import ExperimentKey, MetricRollup
    from tracker.services import MetricInput, log_batch

    uploaded, logged = (RunFactory(experiment=experiment, user=contributor) for _ in range(2))
    points = [(step, (step * 7919) % 1013 / 7.0) for step in range(-70, 3000, 3)]
    points[5] = (points[5][0], float("nan"))
    points[9] = (points[9][0], float("inf"))
    rows = "".join(f"val_auc,{step},{value},{1000 + step}\n" for step, value in points)
    metrics = [MetricInput("val_auc", value, step, 1000 + step) for step, value in points]
    if stored_before:
        log_batch(actor=contributor, run=uploaded, metrics=metrics[:stored_before])
    upload = upload_file("key,step,value,timestamp\n" + rows, run=uploaded)
    assert upload.status == "done", upload.error_message
    assert upload.points_inserted == len(points) - stored_before
    for start in range(0, len(metrics), 1000):
        log_batch(actor=contributor, run=logged, metrics=metrics[start : start + 1000])

    def rollups(run):
        fold_all_stale_rollups()  # what logged points left to the fold, on PostgreSQL
        return sorted(
            MetricRollup.objects.filter(run=run).values_list(
                "level", "bucket", "count", "min_value", "min_step", "max_value", "max_step", "odd_step"
            )
        )

    assert rollups(uploaded) == rollups(logged)
    assert ExperimentKey.objects.filter(experiment=experiment, kind="metric", key="val_auc").exists()


# The staging phase spools batches of a few hundred bytes here, so that a file of a few dozen lines
# spans many batches: partial aggregates of one bucket or key then come from several batches.
SMALL_BLOCKS = 256


def _summary_of(run):
    return list(
        MetricSummary.objects.filter(run=run)
        .order_by("key__name")
        .values_list("key__name", "last_value", "last_is_nan", "last_step", "last_timestamp", "min_value",
                     "max_value", "count")
    )  # fmt: skip


def _rollups_of(run):
    from tracker.models import MetricRollup

    fold_all_stale_rollups()  # what logged points left to the fold, on PostgreSQL
    return sorted(
        MetricRollup.objects.filter(run=run).values_list(
            "key__name", "level", "bucket", "count", "min_value", "min_step", "min_timestamp",
            "max_value", "max_step", "max_timestamp", "odd_step", "odd_timestamp", "odd_is_nan",
        )
    )  # fmt: skip


@pytest.mark.parametrize("repeated", [False, True], ids=["all new: one COPY", "a repeated point: exact path"])
def test_summaries_and_rollups_built_while_staging_equal_those_of_logged_points(
    experiment, contributor, upload_file, monkeypatch, repeated
):
    """Across many batches, with ties on step and timestamp, NaN and ±Infinity, a newest point
    that is NaN, and buckets spread over batches (steps out of order): an upload's summaries and
    rollups are those of the same points logged by log_batch. A point the file repeats makes the
    COPY refuse the file; the exact path then stores it once."""
    from tracker.ingest import readers
    from tracker.services import MetricInput, log_batch

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", SMALL_BLOCKS)
    uploaded, logged = (RunFactory(experiment=experiment, user=contributor) for _ in range(2))
    points = []
    for index in range(400):
        step = (index * 37) % 300 - 40  # out of order, negative steps, several points a step
        value = ((index * 7919) % 1013) / 7.0 - 50
        points.append(("loss" if index % 3 else "acc", step, value, 1000 + index % 5))
    points[17] = ("loss", 5, float("nan"), 1003)
    points[18] = ("loss", 5, float("inf"), 1004)  # odd points tied on (step, time) may go either way
    points[19] = ("acc", 7, float("-inf"), 1001)
    points.append(("loss", 500, float("nan"), 9))  # the newest loss point is NaN
    points.append(("acc", 500, 2.0, 9))
    points.append(("acc", 500, 1.0, 8))  # same step, older: not the newest
    points = list(dict.fromkeys(points))  # log_batch drops a batch's repeats; the file holds each once
    rows = [f"{key},{step},{value},{timestamp}\n" for key, step, value, timestamp in points]
    if repeated:
        rows.append(rows[3])
    upload = upload_file("key,step,value,timestamp\n" + "".join(rows), run=uploaded)
    assert upload.status == "done", upload.error_message
    assert (upload.rows_done, upload.points_inserted) == (len(rows), len(points))
    log_batch(
        actor=contributor,
        run=logged,
        metrics=[MetricInput(key, value, step, ts) for key, step, value, ts in points],
    )
    assert MetricPoint.objects.filter(run=uploaded).count() == len(points)
    assert _summary_of(uploaded) == _summary_of(logged)
    assert _rollups_of(uploaded) == _rollups_of(logged)


@pytest.mark.parametrize("bad_line", [2, 11, 12, 21, 31], ids=lambda line: f"line {line}")
def test_an_error_on_any_line_of_a_batch_names_that_line_and_stores_nothing(
    run, upload_file, monkeypatch, bad_line
):
    """Batches of ten lines here (lines 2-11, 12-21, 22-31): an error on a batch's first or last
    line, or on the file's last, names its own line, and nothing of the batches before is stored."""
    from tracker.ingest import readers

    lines = [f"loss,{step:03d},1.5\n" for step in range(30)]  # 13 bytes each
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 13 * 10)
    lines[bad_line - 2] = f"loss,{bad_line - 2:03d},abc\n"
    upload = upload_file("key,step,value\n" + "".join(lines), run=run)
    assert upload.status == "failed"
    assert upload.error_message == f"line {bad_line}, column value: 'abc' is not a number"
    assert MetricPoint.objects.filter(run=run).count() == 0
    assert not MetricSummary.objects.filter(run=run).exists()


def test_a_failure_while_packing_rows_is_not_blamed_on_the_file(run, contributor, monkeypatch):
    """The packing thread's errors (a full disk) reach the task, which lets the next attempt start
    at once, instead of failing the upload as if a line were bad."""
    from tracker.ingest import staging

    def full_disk(self, points):
        raise OSError(28, "No space left on device")

    receipt = uploads.create_upload(
        actor=contributor, content=io.BytesIO(b"key,step,value\nloss,0,1\n"), file_name="m.csv", run=run
    )
    monkeypatch.setattr(staging.Spool, "add", full_disk)
    with pytest.raises(OSError, match="No space left"):
        uploads.ingest_upload(upload_id=receipt.upload.pk)
    upload = BulkUpload.objects.get(pk=receipt.upload.pk)
    assert (upload.status, upload.heartbeat_at) == ("running", None)
    assert MetricPoint.objects.filter(run=run).count() == 0


def test_cells_with_spaces_around_them_are_read_by_the_careful_path(run, upload_file):
    """The fast path casts cells as they are; a batch it cannot take whole (spaces around a
    name or a number, an empty timestamp) goes through the careful path, which trims them."""
    upload = upload_file("key,step,value,timestamp\n loss ,0, 1.5,7\nloss, 1 ,2.5,\n", run=run)
    assert upload.status == "done", upload.error_message
    stored = (
        MetricPoint.objects.filter(run=run)
        .order_by("step")
        .values_list("key__name", "step", "value", "timestamp")
    )
    default = int(upload.created_at.timestamp() * 1000)
    assert list(stored) == [("loss", 0, 1.5, 7), ("loss", 1, 2.5, default)]


def test_a_file_of_only_a_header_is_done_with_no_points(run, upload_file):
    upload = upload_file("key,step,value\n", run=run)
    assert (upload.status, upload.rows_done, upload.points_inserted) == ("done", 0, 0)
    assert not MetricSummary.objects.filter(run=run).exists()


def _rows(count: int) -> bytes:
    return b"key,step,value\n" + b"loss,1,0.5\n" * count


@pytest.mark.parametrize(
    ("content", "file_name"),
    [
        (gzip.compress(_rows(2_000)), "flood.csv.gz"),
        (gzip.compress(b'{"key": "loss", "step": 1, "value": 0.5}\n' * 2_000), "flood.jsonl.gz"),
    ],
    ids=["csv", "jsonl"],
)
def test_a_gzip_upload_that_expands_past_the_limit_fails_naming_it_and_stores_nothing(
    run, upload_file, settings, content, file_name
):
    settings.MAX_UPLOAD_EXPANDED_BYTES = 10_000  # the files hold 22 and 82 kB

    upload = upload_file(content, run=run, file_name=file_name)

    assert upload.status == BulkUpload.Status.FAILED
    assert upload.error_message == (
        "file: expands to more than 10,000 bytes when decompressed, the limit for a compressed "
        "upload (MAX_UPLOAD_EXPANDED_BYTES); split it into smaller files"
    )
    assert (upload.error_line, upload.attempts) == (None, 1)
    assert not MetricPoint.objects.filter(run=run).exists()
    assert not MetricSummary.objects.filter(run=run).exists()


def test_the_expansion_limit_leaves_smaller_gzip_files_and_uncompressed_ones_alone(
    run, upload_file, settings
):
    settings.MAX_UPLOAD_EXPANDED_BYTES = 10_000
    small = b"key,step,value\n" + b"".join(b"loss,%d,0.5\n" % step for step in range(500))  # 7.4 kB
    plain = b"key,step,value\n" + b"".join(b"acc,%d,0.5\n" % step for step in range(2_000))  # 22 kB

    compressed = upload_file(gzip.compress(small), run=run, file_name="small.csv.gz")
    uncompressed = upload_file(plain, run=run, file_name="plain.csv")

    assert (compressed.status, compressed.points_inserted) == ("done", 500)
    assert (uncompressed.status, uncompressed.points_inserted) == ("done", 2_000)
