"""`manage.py purge_deleted_runs --as USERNAME [--older-than-days N] [--dry-run]`."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.exceptions import ApplicationError
from tracker.services import purge_deleted_runs


class Command(BaseCommand):
    help = (
        "Remove for good the runs deleted at least N days ago, with their points and files (what "
        "`mlflow gc` does). Runs a model version, a logged model or an unfinished upload still "
        "names are kept and listed. Each purged run leaves an audit event."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as", dest="username", required=True, help="An admin's username.")
        parser.add_argument("--older-than-days", type=float, default=30.0, help="Default 30.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would go; change nothing.")

    def handle(self, *args, username: str, older_than_days: float, dry_run: bool, **options):
        if older_than_days < 0:
            raise CommandError("--older-than-days must not be negative.")
        actor = get_user_model().objects.filter(username=username).first()
        if actor is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            report = purge_deleted_runs(
                actor=actor, older_than=timedelta(days=older_than_days), dry_run=dry_run
            )
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(
            f"{verb} {len(report.purged)} run(s): {report.points} metric points, {report.files} files."
        )
        for run_id in report.purged:
            self.stdout.write(f"  {run_id}")
        for run_id, reason in report.kept.items():
            self.stdout.write(f"Kept {run_id}: {reason}.")
