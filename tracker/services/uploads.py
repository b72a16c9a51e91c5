"""Bulk uploads: store the file, then ingest it all-or-nothing, exactly once, without stalling writers.

The life of an upload:
1. `create_upload` stores the file with its sha256, creates the row and queues the task on
   commit. The same Idempotency-Key, or the same file for the same target, returns the upload
   that exists (unless that one failed).
2. `ingest_upload` (the task) claims the row with a lease, streams the file batch by batch
   through validation into a spool file (binary COPY rows, plus partial summaries and rollups),
   committing progress as it goes, then in one final transaction COPYs the spool into the point
   table, merges the partials into the summaries and rollups and appends the one audit event,
   taking the audit chain head last.
3. `requeue_stalled_uploads` (Celery beat) queues again an upload whose task vanished: a
   broker restarted without persistence, a worker killed mid-file.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import get_valid_filename

from accounts.roles import Role, require_role
from audit.services import record_event
from config.epoch import to_ms
from config.exceptions import ApplicationError, Conflict, InvalidInput, PermissionDenied
from tracker.ingest import readers, staging
from tracker.ingest.columns import TypedBatch, typed_batch
from tracker.ingest.errors import RowError
from tracker.models import BulkUpload, Experiment, Lifecycle, Run
from tracker.permissions import Level, experiment_level, require_experiment_permission, require_run_permission
from tracker.validation import validate_key, validate_text

from .artifacts import Upload
from .batches import metric_key_ids
from .rollups import hold_off_the_fold
from .runs import ensure_run_writable, start_run

logger = logging.getLogger(__name__)
Status = BulkUpload.Status
Format = BulkUpload.Format
_CHUNK = 1024 * 1024
_PROGRESS_SECONDS = 0.25  # how often staging commits its progress
# File-name endings that tell the format when none is given.
_SUFFIXES = (
    (".csv", Format.CSV),
    (".csv.gz", Format.CSV),
    (".jsonl", Format.JSONL),
    (".jsonl.gz", Format.JSONL),
    (".ndjson", Format.JSONL),
    (".ndjson.gz", Format.JSONL),
    (".parquet", Format.PARQUET),
    (".pq", Format.PARQUET),
)
_READERS: dict[str, Callable[[Callable[[], IO[bytes]]], Iterator[readers.RawBatch]]] = {
    Format.CSV: readers.read_csv,
    Format.JSONL: readers.read_jsonl,
    Format.PARQUET: readers.read_parquet,
    Format.TENSORBOARD: readers.read_tensorboard,
}


@dataclass(frozen=True)
class UploadReceipt:
    upload: BulkUpload
    created: bool  # False: an upload with this key or file existed and is returned instead


def upload_format(*, file_name: str, declared: str = "") -> str:
    """The declared format, or the one the file name ends with."""
    if declared:
        if declared not in _READERS:
            choices = ", ".join(value for value in Format.values)
            raise InvalidInput(f"{declared!r} is not one of {choices}", field="format")
        return declared
    lowered = file_name.lower()
    for suffix, found in _SUFFIXES:
        if lowered.endswith(suffix):
            return found
    if "tfevents" in lowered:
        return Format.TENSORBOARD
    raise InvalidInput(
        f"cannot tell the format of {file_name or 'an unnamed file'!r}; give one of "
        + ", ".join(value for value in Format.values),
        field="format",
    )


def _target_key(*, run: Run | None, experiment: Experiment | None, create_runs: bool) -> str:
    if run is not None:
        return f"run:{run.pk}"
    if experiment is not None:
        return f"experiment:{experiment.pk}" + (":create" if create_runs else "")
    return "any"


def _check_target(
    *, run: Run | None, experiment: Experiment | None, create_runs: bool, file_format: str
) -> None:
    if run is not None and experiment is not None:
        raise InvalidInput("give a run or an experiment, not both", field="experiment_id")
    if run is not None:
        ensure_run_writable(run)
    if experiment is not None and experiment.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"experiment {experiment.pk} is deleted", field="experiment_id")
    if create_runs and experiment is None:
        raise InvalidInput("creating runs needs the experiment to create them in", field="create_runs")
    if file_format == Format.TENSORBOARD and run is None:  # its records name no run
        raise InvalidInput("a TensorBoard event file needs the run its scalars belong to", field="run_id")


def _spool(content: Upload, destination: IO[bytes]) -> tuple[int, str]:
    """Copy the upload to a temporary file as it is hashed: read once, never held in memory."""
    limit = settings.MAX_UPLOAD_BYTES
    sha = hashlib.sha256()
    size = 0
    while chunk := content.read(_CHUNK):
        size += len(chunk)
        if limit and size > limit:
            raise InvalidInput(f"is larger than the limit of {limit:,} bytes", field="file")
        sha.update(chunk)
        destination.write(chunk)
    if size == 0:
        raise InvalidInput("is empty", field="file")
    destination.seek(0)
    return size, sha.hexdigest()


def _existing_upload(*, actor: Any, idempotency_key: str, target_key: str, sha256: str) -> BulkUpload | None:
    if idempotency_key:
        found = BulkUpload.objects.filter(created_by=actor, idempotency_key=idempotency_key).first()
        if found is not None:
            if found.sha256 != sha256 or found.target_key != target_key:
                raise Conflict(
                    f"{idempotency_key!r} was already used for upload {found.pk}, of another file "
                    "or target; use a new key",
                    field="Idempotency-Key",
                )
            return found
    # The same file to the same target, by the same user only: another user's upload is not
    # theirs to learn of, and was checked against the other user's rights, not these.
    same_file = BulkUpload.objects.filter(created_by=actor, target_key=target_key, sha256=sha256)
    return same_file.exclude(status=Status.FAILED).first()


def _stored_file_name(file_name: str, file_format: str) -> str:
    """The file's own name, without folders; one storage cannot use (only dots, or nothing left
    once unsafe characters go) is refused, naming it."""
    if not file_name:
        return f"upload.{file_format}"
    base_name = file_name.replace("\\", "/").rsplit("/", 1)[-1][:200]
    try:
        get_valid_filename(base_name)
    except SuspiciousFileOperation:
        raise InvalidInput(f"{file_name!r} cannot name a stored file", field="file_name") from None
    return base_name


def create_upload(
    *,
    actor: Any,
    content: Upload,
    file_name: str = "",
    format: str = "",
    run: Run | None = None,
    experiment: Experiment | None = None,
    create_runs: bool = False,
    idempotency_key: str = "",
) -> UploadReceipt:
    """Store a metric file and queue its ingestion; a repeated key or file returns the first upload."""
    require_role(actor, Role.CONTRIBUTOR, action="Uploading metrics")
    file_format = upload_format(file_name=file_name, declared=format)
    _check_target(run=run, experiment=experiment, create_runs=create_runs, file_format=file_format)
    if run is not None:
        require_run_permission(actor, run, Level.EDIT, action="Uploading metrics")
    if experiment is not None:
        require_experiment_permission(actor, experiment, Level.EDIT, action="Uploading metrics")
    idempotency_key = validate_text(idempotency_key, field="Idempotency-Key", max_length=255).strip()
    file_name = _stored_file_name(file_name, file_format)
    target_key = _target_key(run=run, experiment=experiment, create_runs=create_runs)
    # A named temporary file: the file-system storage moves it into place instead of copying it.
    with TemporaryUploadedFile(file_name, "application/octet-stream", None, None) as spooled:
        size, sha256 = _spool(content, spooled)
        existing = _existing_upload(
            actor=actor, idempotency_key=idempotency_key, target_key=target_key, sha256=sha256
        )
        if existing is not None:
            return UploadReceipt(existing, created=False)
        upload = BulkUpload(
            run=run,
            experiment=experiment if experiment is not None else (run.experiment if run else None),
            create_runs=create_runs,
            format=file_format,
            file_name=file_name,
            sha256=sha256,
            size_bytes=size,
            target_key=target_key,
            idempotency_key=idempotency_key,
            created_by=actor,
            heartbeat_at=timezone.now(),  # when it was queued, for the sweep
        )
        upload.file.save(file_name, spooled, save=False)  # the file first, then the row
    try:
        with transaction.atomic():
            upload.save()
            transaction.on_commit(partial(_enqueue, upload.pk))
    except IntegrityError:
        # Another request with the same key or file won the race: that upload is the answer.
        upload.file.storage.delete(upload.file.name)
        existing = _existing_upload(
            actor=actor, idempotency_key=idempotency_key, target_key=target_key, sha256=sha256
        )
        if existing is None:
            raise
        return UploadReceipt(existing, created=False)
    return UploadReceipt(upload, created=True)


def run_named(*, actor: Any, experiment: Experiment, name: str) -> Run:
    """The experiment's run of that name, started when there is none (a log directory's run folder)."""
    matches = list(Run.objects.filter(experiment=experiment, name=name, lifecycle=Lifecycle.ACTIVE)[:2])
    if len(matches) > 1:
        raise Conflict(f"several runs are named {name!r} in experiment {experiment.name!r}", field="run_name")
    return matches[0] if matches else start_run(actor=actor, experiment=experiment, name=name)


def _enqueue(upload_id: int) -> None:
    from tracker.tasks import ingest_bulk_upload  # the task module imports the services

    ingest_bulk_upload.delay(upload_id)


class LeaseLost(Exception):
    """Another attempt took the upload over (this one was presumed dead): stop quietly."""


def _lease_expiry() -> Any:
    return timezone.now() - timedelta(seconds=settings.UPLOAD_LEASE_SECONDS)


def _claim(upload_id: int, token: str) -> BulkUpload | None:
    """Take the upload for this attempt, unless it is finished or a live attempt holds it."""
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_lease_expiry())
    )
    claimed = BulkUpload.objects.filter(claimable, pk=upload_id).update(
        status=Status.RUNNING,
        lease_token=token,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        started_at=Coalesce(F("started_at"), now),
        rows_done=0,
        bytes_done=0,
    )
    return (
        BulkUpload.objects.select_related("run", "experiment", "created_by").get(pk=upload_id)
        if claimed
        else None
    )


def _report_progress(upload: BulkUpload, token: str, *, rows: int, position: int) -> None:
    """Committed at once (the task runs in autocommit), so pages and the API see it move."""
    moved = BulkUpload.objects.filter(pk=upload.pk, lease_token=token).update(
        rows_done=rows, bytes_done=min(position, upload.size_bytes), heartbeat_at=timezone.now()
    )
    if not moved:
        raise LeaseLost


class _Names:
    """Ids of the runs and metric keys a file names, resolved once per distinct name."""

    def __init__(self, upload: BulkUpload, run_column: str | None) -> None:
        self.upload = upload
        self.run_column = run_column
        self.runs: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self.runs_created = 0

    def run_ids_named(self) -> set[int]:
        """Every run the file's points go to."""
        if self.run_column:
            return set(self.runs.values())
        assert self.upload.run_id is not None  # a file without a run column goes to the upload's run
        return {self.upload.run_id}

    def key_ids(self, batch: TypedBatch) -> np.ndarray:
        names = batch.keys.dictionary.to_pylist()
        new = [name for name in names if name not in self.keys]
        for name in new:
            try:
                validate_key(name, field="key")
            except InvalidInput as error:
                raise RowError(
                    error.message, location=batch.location_of(batch.keys, name), column="key"
                ) from None
        self.keys.update(metric_key_ids(new))
        lookup = np.array([self.keys[name] for name in names], dtype=np.int32)
        return lookup[batch.keys.indices.to_numpy(zero_copy_only=False)]

    def run_ids(self, batch: TypedBatch) -> np.ndarray:
        upload = self.upload
        if batch.run_refs is None:
            assert upload.run_id is not None
            return np.full(len(batch.steps), upload.run_id, dtype=np.int64)
        names = batch.run_refs.dictionary.to_pylist()
        new = [name for name in names if name not in self.runs]
        if new:
            resolve = self._by_id if self.run_column == "run_id" else self._by_name
            for name, run_id in zip(new, resolve(new, batch), strict=True):
                self.runs[name] = run_id
        lookup = np.array([self.runs[name] for name in names], dtype=np.int64)
        return lookup[batch.run_refs.indices.to_numpy(zero_copy_only=False)]

    def _refuse(self, batch: TypedBatch, name: str, reason: str) -> RowError:
        assert batch.run_refs is not None and self.run_column is not None
        return RowError(reason, location=batch.location_of(batch.run_refs, name), column=self.run_column)

    def _by_id(self, names: list[str], batch: TypedBatch) -> list[int]:
        upload = self.upload
        found = {run.uuid: run for run in Run.objects.filter(uuid__in=names).select_related("experiment")}
        ids = []
        for name in names:
            run = found.get(name)
            if run is None:
                raise self._refuse(batch, name, f"run {name!r} does not exist")
            if run.lifecycle != Lifecycle.ACTIVE:
                raise self._refuse(batch, name, f"run {name!r} is deleted")
            if upload.run is not None and run.pk != upload.run.pk:
                raise self._refuse(batch, name, f"run {name!r} is not the upload's run {upload.run.uuid}")
            if upload.experiment_id is not None and run.experiment_id != upload.experiment_id:
                raise self._refuse(batch, name, f"run {name!r} is not in experiment {upload.experiment_id}")
            if experiment_level(upload.created_by, run.experiment) < Level.EDIT:
                raise self._refuse(batch, name, f"{upload.created_by} may not write to run {name!r}")
            ids.append(run.pk)
        return ids

    def _by_name(self, names: list[str], batch: TypedBatch) -> list[int]:
        upload = self.upload
        experiment = upload.experiment
        assert experiment is not None
        found: dict[str, list[int]] = {}
        for name, run_id in Run.objects.filter(
            experiment=experiment, name__in=names, lifecycle=Lifecycle.ACTIVE
        ).values_list("name", "id"):
            found.setdefault(name, []).append(run_id)
        ids = []
        for name in names:
            matches = found.get(name, [])
            if len(matches) > 1:
                raise self._refuse(
                    batch, name, f"{len(matches)} runs are named {name!r} in experiment {experiment.name!r}"
                )
            if matches:
                ids.append(matches[0])
            elif upload.create_runs:
                # Created now, in its own transaction, so a retried attempt finds it by name; a
                # failed upload leaves such runs empty (see docs/architecture.md).
                try:
                    run = start_run(actor=upload.created_by, experiment=experiment, name=name)
                except InvalidInput as error:
                    raise self._refuse(batch, name, error.message) from None
                self.runs_created += 1
                ids.append(run.pk)
            else:
                raise self._refuse(batch, name, f"no run is named {name!r} in experiment {experiment.name!r}")
        return ids


def _run_column(upload: BulkUpload, columns: dict[str, Any]) -> str | None:
    if "run_id" in columns and "run_name" in columns:
        raise RowError("name runs by run_id or by run_name, not both", location="line 1", column="run_name")
    if "run_name" in columns:
        if upload.experiment_id is None or upload.run_id is not None:
            raise RowError("needs an experiment given with the upload", location="line 1", column="run_name")
        return "run_name"
    if "run_id" in columns:
        return "run_id"
    if upload.run_id is None:
        by_name = " (or run_name, with the experiment given)" if upload.experiment_id is not None else ""
        raise RowError(
            f"is missing; give a run with the upload or name runs in the file by run_id{by_name}",
            location="line 1",
            column="run_id",
        )
    return None


class _Packer:
    """Packs validated batches into the spool on a helper thread while the main thread parses the
    next ones (numpy and file writes release the GIL). The queue is short: memory stays bounded."""

    def __init__(self, spool: staging.Spool) -> None:
        self.spool = spool
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._queue: queue.Queue[staging.Points | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="upload-packer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (points := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the main thread raises at its next put
            started = time.perf_counter()
            try:
                self.spool.add(points)
            except BaseException as error:  # handed to the main thread, which raises it
                self.error = error
            self.seconds += time.perf_counter() - started

    def put(self, points: staging.Points) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(points)

    def close(self) -> None:
        """Wait until every batch is packed; raise what packing raised."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _stage(upload: BulkUpload, token: str, spool: staging.Spool, timings: dict[str, float]) -> _Names | None:
    """Read, validate and spool every row; return the runs and keys it named (None: no rows)."""
    read = _READERS.get(upload.format)
    if read is None:
        raise InvalidInput(f"{upload.format!r} files are not supported yet", field="format")
    experiment = upload.run.experiment if upload.run is not None else upload.experiment
    if experiment is not None and experiment.lifecycle != Lifecycle.ACTIVE:  # it took its runs along
        raise InvalidInput(
            f"experiment {experiment.pk} was deleted while the file waited", field="experiment_id"
        )
    default_timestamp = to_ms(upload.created_at)  # a retry yields the same points
    names: _Names | None = None
    rows = 0
    reported = 0.0
    packer = _Packer(spool)
    try:
        batches = read(partial(upload.file.storage.open, upload.file.name, "rb"))
        while True:
            started = time.perf_counter()
            raw = next(batches, None)
            parsed = time.perf_counter()
            timings["parse"] += parsed - started
            if raw is None:
                break
            if names is None:
                names = _Names(upload, _run_column(upload, raw.columns))
            batch = typed_batch(raw, run_column=names.run_column, default_timestamp=default_timestamp)
            points = staging.Points(
                run_ids=names.run_ids(batch),
                key_ids=names.key_ids(batch),
                steps=batch.steps,
                timestamps=batch.timestamps,
                values=batch.values,
                is_nan=batch.is_nan,
            )
            timings["validate"] += time.perf_counter() - parsed
            packer.put(points)
            rows += len(batch.steps)
            # Committed a few times a second rather than per batch: progress moves just as visibly.
            if time.perf_counter() - reported > _PROGRESS_SECONDS:
                _report_progress(upload, token, rows=rows, position=raw.bytes_read)
                reported = time.perf_counter()
    finally:
        started = time.perf_counter()
        packer.close()
        timings["pack_wait"] += time.perf_counter() - started
        timings["pack"] += packer.seconds
    _report_progress(upload, token, rows=rows, position=upload.size_bytes)
    return names


def _require_still_writable(upload: BulkUpload, run_ids: Collection[int]) -> None:
    """The runs the file fills, checked again as the final transaction starts: a run or
    experiment deleted, a grant or role withdrawn, while the file waited or was read fails the
    upload, as it would fail a log-batch sent then. No row is locked for it: the final
    transaction would hold such locks through the COPY, and a `log_param` or `set_terminated`
    on the run would wait for all of it."""
    uploader = None
    if upload.created_by_id is not None:  # read afresh: its role and levels may have changed
        uploader = User.objects.filter(pk=upload.created_by_id).first()
    if uploader is None:
        raise PermissionDenied("the account that sent the file was removed", field="file")
    runs = Run.objects.select_related("experiment").filter(pk__in=run_ids).order_by("pk")
    for run in runs:
        if run.experiment.lifecycle != Lifecycle.ACTIVE:  # first: its deletion takes the runs along
            raise InvalidInput(
                f"experiment {run.experiment_id} was deleted while the file was read", field="experiment_id"
            )
        if run.lifecycle != Lifecycle.ACTIVE:
            raise InvalidInput(f"run {run.uuid} was deleted while the file was read", field="run_id")
        if experiment_level(uploader, run.experiment) < Level.EDIT:
            raise PermissionDenied(f"{uploader} may no longer write to run {run.uuid}", field="run_id")


def _finish(
    upload: BulkUpload,
    token: str,
    spool: staging.Spool,
    table: str,
    *,
    names: _Names | None,
    timings: dict[str, float],
) -> None:
    """The final transaction: the points by one COPY, the summary and rollup merges, the status,
    and the audit chain head taken last, so that other writers never wait for the COPY."""
    rows = spool.rows
    runs_created = names.runs_created if names else 0
    with transaction.atomic():
        # Lock the row: the sweep skips locked rows, and a second attempt waits here, then sees DONE.
        held = (
            BulkUpload.objects.select_for_update(no_key=True)
            .filter(pk=upload.pk, lease_token=token, status=Status.RUNNING)
            .exists()
        )
        if not held:
            raise LeaseLost
        if names is not None:
            _require_still_writable(upload, names.run_ids_named())
        hold_off_the_fold()  # its rollup merges add to buckets a fold would overwrite
        inserted = staging.move_spooled_points(spool, name=table, timings=timings)
        started = time.perf_counter()
        BulkUpload.objects.filter(pk=upload.pk).update(
            status=Status.DONE,
            rows_done=rows,
            bytes_done=upload.size_bytes,
            points_inserted=inserted,
            runs_created=runs_created,
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
            lease_token="",
        )
        # Last: the chain head's lock is held only from here to COMMIT.
        record_event(
            actor=upload.created_by,
            action="upload.ingested",
            target=upload,
            after={
                "file": upload.file_name,
                "sha256": upload.sha256,
                "rows": rows,
                "points_inserted": inserted,
                "runs_created": runs_created,
                "run": upload.run.uuid if upload.run else None,
                "experiment": upload.experiment_id,
            },
        )
    timings["audit_commit"] += time.perf_counter() - started


def _fail(upload: BulkUpload, token: str, error: ApplicationError) -> None:
    line = error.line if isinstance(error, RowError) else None
    column = error.column if isinstance(error, RowError) else (error.field or "")
    BulkUpload.objects.filter(pk=upload.pk, lease_token=token).update(
        status=Status.FAILED,
        error_message=str(error)[:2000],
        error_line=line,
        error_column=column[:100],
        finished_at=timezone.now(),
        lease_token="",
    )


def ingest_upload(*, upload_id: int) -> BulkUpload:
    """Ingest a stored upload, all-or-nothing; for a finished upload (a retry) it changes nothing."""
    token = secrets.token_hex(16)
    upload = _claim(upload_id, token)
    if upload is None:
        return BulkUpload.objects.get(pk=upload_id)
    table = staging.staging_table_name(upload_id=upload.pk, attempt=upload.attempts)
    timings: dict[str, float] = defaultdict(float)
    spool = staging.Spool(partials=connection.vendor == "postgresql")
    try:
        staging.drop_staging_tables(upload_id=upload.pk, below_attempt=upload.attempts)
        started = time.perf_counter()
        names = _stage(upload, token, spool, timings)
        staged = time.perf_counter()
        _finish(upload, token, spool, table, names=names, timings=timings)
        # One line that shows where the time went (pack runs beside parse, on its own thread).
        logger.info(
            "upload %s: %s rows, staged in %.1f s, final transaction %.1f s (%s)",
            upload.pk, spool.rows, staged - started, time.perf_counter() - staged,
            " ".join(f"{phase}={seconds:.2f}s" for phase, seconds in timings.items()),
        )  # fmt: skip
    except ApplicationError as error:
        _fail(upload, token, error)
    except LeaseLost:
        pass
    except Exception as error:
        if upload.attempts >= settings.UPLOAD_MAX_ATTEMPTS:
            # However it fails, an upload is not retried forever: the user sees why it stopped.
            reason = f"ingesting stopped after {upload.attempts} attempts; the last failed with {error!r}"
            _fail(upload, token, InvalidInput(reason[:1500], field="file"))
        else:
            # Not the file's fault (the database went away): let the next attempt start at once.
            BulkUpload.objects.filter(pk=upload.pk, lease_token=token).update(heartbeat_at=None)
        raise
    finally:
        spool.close()
    return BulkUpload.objects.get(pk=upload_id)


def requeue_stalled_uploads() -> list[int]:
    """Queue again the uploads whose task vanished (queued or running, no heartbeat for a lease)."""
    with transaction.atomic():
        # SKIP LOCKED: an upload in its final transaction holds its row and is not stalled.
        stalled = list(
            BulkUpload.objects.select_for_update(skip_locked=True)
            .filter(status__in=[Status.QUEUED, Status.RUNNING])
            .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_lease_expiry()))
            .values_list("pk", "status")
        )
        # A queued upload counts as queued again from now; a running one stays stale, so that the
        # new task may claim it.
        queued = [pk for pk, status in stalled if status == Status.QUEUED]
        BulkUpload.objects.filter(pk__in=queued).update(heartbeat_at=timezone.now())
        for pk, _ in stalled:
            transaction.on_commit(partial(_enqueue, pk))
    return [pk for pk, _ in stalled]
