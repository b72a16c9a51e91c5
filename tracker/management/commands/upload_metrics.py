import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.permissions import SYSTEM_READER
from config.exceptions import ApplicationError
from tracker import selectors
from tracker.models import BulkUpload
from tracker.services.uploads import create_upload, run_named


class Command(BaseCommand):
    help = (
        "Upload a metric file (CSV, JSON Lines, Parquet; gzip allowed) for a worker to ingest; "
        "--wait shows its progress until it is done."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--user", required=True, help="Who uploads (needs the contributor role).")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--run", help="Every row goes to this run (its 32-hex id).")
        target.add_argument("--experiment", help="Rows name runs inside this experiment (by name).")
        parser.add_argument(
            "--create-runs", action="store_true", help="Create runs named in a run_name column."
        )
        parser.add_argument("--format", default="", choices=["", *BulkUpload.Format.values])
        parser.add_argument("--idempotency-key", default="")
        parser.add_argument("--wait", action="store_true", help="Show progress until the upload finishes.")

    def handle(
        self, *args, file, user, run, experiment, create_runs, format, idempotency_key, wait, **options
    ):
        actor = get_user_model().objects.filter(username=user).first()
        if actor is None:
            raise CommandError(f"No user named {user!r}.")
        try:
            if file.is_dir():
                self._upload_log_directory(file, actor=actor, experiment=experiment, wait=wait)
                return
            if not file.is_file():
                raise CommandError(f"{file} is not a file or a log directory.")
            with file.open("rb") as content:
                receipt = create_upload(
                    actor=actor,
                    content=content,
                    file_name=file.name,
                    format=format,
                    run=selectors.get_run(user=SYSTEM_READER, run_id=run) if run else None,
                    experiment=selectors.get_experiment_by_name(user=SYSTEM_READER, name=experiment)
                    if experiment
                    else None,
                    create_runs=create_runs,
                    idempotency_key=idempotency_key,
                )
        except ApplicationError as error:
            raise CommandError(str(error)) from None
        self._follow(receipt, wait=wait)

    def _upload_log_directory(self, root: Path, *, actor, experiment: str | None, wait: bool) -> None:
        """A TensorBoard log directory: each folder holding event files is a run of that name."""
        if not experiment:
            raise CommandError("A log directory needs --experiment: each run folder becomes a run in it.")
        target = selectors.get_experiment_by_name(user=SYSTEM_READER, name=experiment)
        event_files = sorted(path for path in root.rglob("*tfevents*") if path.is_file())
        if not event_files:
            raise CommandError(f"{root} holds no TensorBoard event files.")
        for path in event_files:
            folder = path.parent.relative_to(root).as_posix()
            run = run_named(actor=actor, experiment=target, name=root.name if folder == "." else folder)
            self.stdout.write(f"{path.relative_to(root)} → run {run.name} ({run.uuid})")
            with path.open("rb") as content:
                receipt = create_upload(
                    actor=actor,
                    content=content,
                    file_name=path.name,
                    format=BulkUpload.Format.TENSORBOARD,
                    run=run,
                )
            self._follow(receipt, wait=wait)

    def _follow(self, receipt, *, wait: bool) -> None:
        upload = receipt.upload
        verb = "Queued" if receipt.created else "Already uploaded as"
        self.stdout.write(
            f"{verb} upload {upload.pk} ({upload.size_bytes:,} bytes, sha256 {upload.sha256[:12]}…)"
        )
        if wait:
            upload = self._wait(upload)
        self._report(upload)

    def _wait(self, upload: BulkUpload) -> BulkUpload:
        with tqdm(total=upload.size_bytes, unit="B", unit_scale=True, file=self.stderr._out) as bar:
            while True:
                upload.refresh_from_db()
                bar.update(upload.bytes_done - bar.n)
                bar.set_postfix(rows=f"{upload.rows_done:,}", status=upload.status)
                if upload.status in (BulkUpload.Status.DONE, BulkUpload.Status.FAILED):
                    return upload
                time.sleep(0.5)

    def _report(self, upload: BulkUpload) -> None:
        if upload.status == BulkUpload.Status.FAILED:
            raise CommandError(f"Upload {upload.pk} failed: {upload.error_message}")
        if upload.status == BulkUpload.Status.DONE:
            self.stdout.write(
                f"Upload {upload.pk} done: {upload.rows_done:,} rows, {upload.points_inserted:,} new points"
                + (f", {upload.runs_created} runs created" if upload.runs_created else "")
                + (f" in {upload.duration_seconds:.1f} s" if upload.duration_seconds is not None else "")
            )
