"""`manage.py import_mlflow`: copy a running MLflow server's experiments, runs and registered
models here, through the importers (which write only through the services). Lives in the
registry app because it imports both; tracker's importer alone copies experiments and runs."""

import os
import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.exceptions import ApplicationError
from registry.importers.mlflow import RegistryImporter
from tracker.importers.mlflow import ImportReport, RunImporter
from tracker.importers.mlflow_source import MlflowSource
from tracker.models import BulkUpload

_FINISHED = (BulkUpload.Status.DONE, BulkUpload.Status.FAILED)


class Command(BaseCommand):
    help = (
        "Copy experiments, runs (params, tags, every metric point, datasets, artifacts) and "
        "registered models (versions, aliases) from a running MLflow server. Idempotent: a second "
        "run copies nothing twice. MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD "
        "authenticate to the server, as for the mlflow client."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tracking-uri", required=True, help="The MLflow server's URL.")
        parser.add_argument(
            "--as", dest="as_user", required=True, help="Who imports (needs the contributor role)."
        )
        parser.add_argument(
            "--experiment", nargs="+", default=[], metavar="NAME", help="Only these experiments."
        )
        parser.add_argument(
            "--model",
            nargs="+",
            default=[],
            metavar="NAME",
            help="Only these registered models (a version's run comes with it).",
        )
        parser.add_argument(
            "--include-deleted", action="store_true", help="Copy deleted experiments and runs, deleted."
        )
        parser.add_argument("--skip-registry", action="store_true", help="Copy no registered models.")
        parser.add_argument(
            "--request-promotions",
            action="store_true",
            help="Open a promotion request for each protected alias instead of only warning.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = get_user_model().objects.filter(username=options["as_user"]).first()
        if actor is None:
            raise CommandError(f"No user named {options['as_user']!r}.")
        try:
            source = MlflowSource(
                options["tracking_uri"],
                token=os.environ.get("MLFLOW_TRACKING_TOKEN", ""),
                username=os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
                password=os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
            )
            runs = RunImporter(
                source=source,
                actor=actor,
                include_deleted=options["include_deleted"],
                progress=self._bar,
            )
            if options["experiment"] or not options["model"] or options["skip_registry"]:
                runs.import_experiments(options["experiment"])
            registry = None
            if not options["skip_registry"]:
                registry = RegistryImporter(
                    runs=runs, request_promotions=options["request_promotions"], progress=self._bar
                )
                registry.import_models(options["model"])
            self._wait(runs.report)
            runs.finish()
        except ApplicationError as error:
            raise CommandError(str(error)) from None
        self._summarise(runs.report, registry)

    def _bar(self, items: Iterable[Any], label: str) -> Iterable[Any]:
        return tqdm(items, desc=label, unit="", file=self.stderr._out, leave=False)

    def _wait(self, report: ImportReport) -> None:
        """Until every upload this import queued is ingested (at once when tasks run eagerly)."""
        uploads = report.uploads
        if not uploads:
            return
        with tqdm(
            total=report.points_uploaded, desc="metric points", unit="pt", file=self.stderr._out
        ) as bar:
            while True:
                for upload in uploads:
                    if upload.status not in _FINISHED:
                        upload.refresh_from_db()
                bar.update(sum(upload.rows_done for upload in uploads) - bar.n)
                if all(upload.status in _FINISHED for upload in uploads):
                    break
                time.sleep(0.5)
        for upload in uploads:
            if upload.status == BulkUpload.Status.FAILED:
                report.failures.append(f"upload {upload.pk} of run {upload.run_id}: {upload.error_message}")

    def _summarise(self, report: ImportReport, registry: RegistryImporter | None) -> None:
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        parts = [
            f"{report.experiments_created} experiments",
            f"{report.runs_created} runs ({report.runs_updated} updated)",
            f"{report.params_logged} params",
            f"{report.tags_set} tags",
            f"{report.datasets_logged} datasets",
            f"{report.artifacts_stored} artifacts",
            f"{report.points_uploaded} metric points in {len(report.uploads)} uploads",
        ]
        if registry is not None:
            counts = registry.counts
            parts += [
                f"{counts.models_created} registered models",
                f"{counts.versions_created} versions",
                f"{counts.labels_moved} aliases or stages moved",
                f"{counts.promotions_requested} promotion requests",
            ]
        if report.deleted:
            parts.append(f"{report.deleted} deleted as in MLflow")
        self.stdout.write("Imported " + ", ".join(parts) + ".")
        if report.failures:
            for failure in report.failures:
                self.stderr.write(f"error: {failure}")
            raise CommandError(f"{len(report.failures)} items could not be imported (listed above).")
