"""Copying experiments and runs from a running MLflow server, idempotently.

Runs keep their MLflow id, so a run already here is found by it; an experiment carries the tag
`IMPORT_TAG` (its MLflow page's URL) and is found by it, else by its name. What is already
here is compared and only the difference is written: new params, changed tags, new datasets,
files missing or of another size, a status that moved. Every metric point of a run goes through
the bulk path: one Parquet file per run, uploaded with `create_upload`, whose "same file for the
same target" rule makes a second import of unchanged history a no-op (and the point table's
key drops any point stored before). Deletions wait until the uploads are ingested
(`finish`): a deleted run accepts no upload.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from accounts.roles import Role, require_role
from config.exceptions import ApplicationError
from config.inputs import TagInput
from tracker import services
from tracker.models import (
    Artifact,
    BulkUpload,
    DatasetInput,
    Experiment,
    ExperimentTag,
    Lifecycle,
    Param,
    Run,
    Tag,
)
from tracker.services.runs import TERMINAL_STATUSES
from tracker.services.uploads import create_upload
from tracker.validation import MAX_PARAMS_PER_BATCH, MAX_TAGS_PER_BATCH

from .mlflow_source import MlflowSource

IMPORT_TAG = "labledger.import.mlflow_experiment"
_DELETED = "deleted"
_POINTS_SCHEMA = pa.schema(
    [("key", pa.string()), ("step", pa.int64()), ("timestamp", pa.int64()), ("value", pa.float64())]
)
T = TypeVar("T")
Progress = Callable[[Iterable[Any], str], Iterable[Any]]


def no_progress(items: Iterable[T], _label: str) -> Iterable[T]:
    """What the importers do for progress unless a command gives them a bar."""
    return items


def _datetime(milliseconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC) if milliseconds else None


def tag_pairs(items: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def named_or_all(
    names: Sequence[str],
    *,
    get: Callable[[str], dict[str, Any]],
    everything: Callable[[], Iterable[dict[str, Any]]],
    what: str,
    failures: list[str],
) -> list[dict[str, Any]]:
    """The named items (a name MLflow does not know is a failure, the others go on), or all."""
    if not names:
        return list(everything())
    found = []
    for name in names:
        try:
            found.append(get(name))
        except ApplicationError as error:
            failures.append(f"{what} {name!r}: {error}")
    return found


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _points_table(key: str, rows: list[dict[str, Any]]) -> pa.Table:
    """MLflow's JSON gives NaN and infinities as strings, which float() reads."""
    return pa.table(
        {
            "key": [key] * len(rows),
            "step": [int(row.get("step", 0)) for row in rows],
            "timestamp": [int(row.get("timestamp", 0)) for row in rows],
            "value": [float(row.get("value", "NaN")) for row in rows],
        },
        schema=_POINTS_SCHEMA,
    )


@dataclass
class ImportReport:
    """What an import wrote (zero everywhere on a repeated import) and what it could not."""

    experiments_created: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    params_logged: int = 0
    tags_set: int = 0
    datasets_logged: int = 0
    artifacts_stored: int = 0
    uploads: list[BulkUpload] = field(default_factory=list)  # created by this import, to wait for
    points_uploaded: int = 0
    deleted: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class RunImporter:
    """Experiments and runs of one MLflow server, copied for `actor` (a contributor)."""

    def __init__(
        self,
        *,
        source: MlflowSource,
        actor: Any,
        include_deleted: bool = False,
        report: ImportReport | None = None,
        progress: Progress = no_progress,
    ) -> None:
        require_role(actor, Role.CONTRIBUTOR, action="Importing from MLflow")  # before any request
        self.source = source
        self.actor = actor
        self.include_deleted = include_deleted
        self.report = report or ImportReport()
        self.progress = progress
        self._experiments: dict[str, Experiment | None] = {}  # by MLflow experiment id
        self._deletions: list[Run | Experiment] = []

    # Experiments ------------------------------------------------------------------------------

    def import_experiments(self, names: Sequence[str] = ()) -> None:
        """The named experiments (all when none are named) and every run in them."""
        found = named_or_all(
            names,
            get=self.source.experiment_by_name,
            everything=partial(self.source.experiments, include_deleted=self.include_deleted),
            what="experiment",
            failures=self.report.failures,
        )
        for remote in found:
            if remote.get("lifecycle_stage") == _DELETED and not self.include_deleted:
                self.report.warnings.append(
                    f"experiment {remote['name']!r} is deleted in MLflow; --include-deleted copies it"
                )
                continue
            experiment = self.experiment_for(remote)
            if experiment is None:
                continue
            runs = self.source.runs(remote["experiment_id"], include_deleted=self.include_deleted)
            for run in self.progress(runs, f"runs of {remote['name']}"):
                self.import_run(run, experiment)

    def experiment_for(self, remote: dict[str, Any]) -> Experiment | None:
        """The experiment here for an MLflow one: found by its import tag or name, else created."""
        mlflow_id = str(remote["experiment_id"])
        if mlflow_id in self._experiments:
            return self._experiments[mlflow_id]
        try:
            experiment = self._experiment_for(remote)
        except ApplicationError as error:
            self.report.failures.append(f"experiment {remote.get('name')!r}: {error}")
            experiment = None
        self._experiments[mlflow_id] = experiment
        return experiment

    def _experiment_for(self, remote: dict[str, Any]) -> Experiment | None:
        marker = f"{self.source.base}/#/experiments/{remote['experiment_id']}"
        tags = {**tag_pairs(remote.get("tags")), IMPORT_TAG: marker}
        experiment = (
            Experiment.objects.filter(tags__key=IMPORT_TAG, tags__value=marker).first()
            or Experiment.objects.filter(name=remote["name"]).first()
        )
        if experiment is None:
            experiment = services.create_experiment(
                actor=self.actor,
                name=remote["name"],
                tags=[TagInput(key, value) for key, value in tags.items()],
            )
            self.report.experiments_created += 1
        elif experiment.lifecycle != Lifecycle.ACTIVE:
            if remote.get("lifecycle_stage") != _DELETED:
                self.report.warnings.append(
                    f"experiment {experiment.name!r} is deleted here; restore it to import into it"
                )
            return None
        else:
            stored = dict(ExperimentTag.objects.filter(experiment=experiment).values_list("key", "value"))
            for key, value in tags.items():
                if stored.get(key) != value:
                    services.set_experiment_tag(
                        actor=self.actor, experiment=experiment, tag=TagInput(key, value)
                    )
        if remote.get("lifecycle_stage") == _DELETED:
            self._deletions.append(experiment)
        return experiment

    # Runs -------------------------------------------------------------------------------------

    def run_by_id(self, run_id: str) -> Run | None:
        """The run here with that MLflow id, imported (with its experiment) when it is missing:
        a registered version needs its run."""
        found = Run.objects.filter(uuid=run_id).first()
        if found is not None:
            return found
        try:
            remote = self.source.run(run_id)
            experiment = self.experiment_for(self.source.experiment(remote["info"]["experiment_id"]))
        except ApplicationError as error:
            self.report.failures.append(f"run {run_id}: {error}")
            return None
        return self.import_run(remote, experiment) if experiment is not None else None

    def import_run(self, remote: dict[str, Any], experiment: Experiment) -> Run | None:
        run_id = remote["info"]["run_id"]
        try:
            return self._import_run(remote, experiment)
        except ApplicationError as error:
            self.report.failures.append(f"run {run_id}: {error}")
            return None

    def _import_run(self, remote: dict[str, Any], experiment: Experiment) -> Run | None:
        info, data = remote["info"], remote.get("data", {})
        if info.get("lifecycle_stage") == _DELETED and not self.include_deleted:
            return None
        tags = tag_pairs(data.get("tags"))
        run = Run.objects.filter(uuid=info["run_id"]).first()
        if run is not None and run.lifecycle != Lifecycle.ACTIVE:
            return run  # deleted here (by an earlier import, or by someone): left as it is
        if run is None:
            run = self._start(info, tags, experiment)
            tags = {}  # all given to start_run
        else:
            self.report.runs_updated += self._update(run, info)
        self._log_params_and_tags(run, tag_pairs(data.get("params")), tags)
        self._log_datasets(run, remote.get("inputs", {}).get("dataset_inputs", []))
        self._copy_artifacts(run)
        self._upload_metrics(run, [metric["key"] for metric in data.get("metrics", [])])
        if info.get("lifecycle_stage") == _DELETED:
            self._deletions.append(run)
        return run

    def _start(self, info: dict[str, Any], tags: dict[str, str], experiment: Experiment) -> Run:
        parent_id = tags.get("mlflow.parentRunId", "")
        run = services.start_run(
            actor=self.actor,
            experiment=experiment,
            run_id=info["run_id"],
            name=info.get("run_name") or tags.get(services.RUN_NAME_TAG, ""),
            start_time=_datetime(info.get("start_time")),
            status=info.get("status", "FINISHED"),
            tags=[TagInput(key, value) for key, value in tags.items()],
            parent=Run.objects.filter(uuid=parent_id).first() if parent_id else None,
            code_commit=tags.get("mlflow.source.git.commit", ""),
            source=tags.get("mlflow.source.name", ""),
        )
        if end_time := _datetime(info.get("end_time")):
            run = services.update_run(actor=self.actor, run=run, end_time=end_time)
        self.report.runs_created += 1
        return run

    def _update(self, run: Run, info: dict[str, Any]) -> int:
        """A run that went on in MLflow after an earlier import: its status and end time."""
        status, end_time = info.get("status", run.status), _datetime(info.get("end_time"))
        if status == run.status and (end_time is None or end_time == run.end_time):
            return 0
        services.update_run(
            actor=self.actor,
            run=run,
            status=status,
            end_time=end_time if status in TERMINAL_STATUSES else None,
        )
        return 1

    def _log_params_and_tags(self, run: Run, params: dict[str, str], tags: dict[str, str]) -> None:
        stored_params = set(Param.objects.filter(run=run).values_list("key", flat=True))
        new_params = [services.ParamInput(k, v) for k, v in params.items() if k not in stored_params]
        stored_tags = dict(Tag.objects.filter(run=run).values_list("key", "value"))
        new_tags = [TagInput(k, v) for k, v in tags.items() if stored_tags.get(k) != v]
        for params_chunk in _chunks(new_params, MAX_PARAMS_PER_BATCH):
            logged = services.log_params(actor=self.actor, run=run, params=params_chunk)
            self.report.params_logged += logged.params_logged
        for tags_chunk in _chunks(new_tags, MAX_TAGS_PER_BATCH):
            self.report.tags_set += services.set_tags(actor=self.actor, run=run, tags=tags_chunk).tags_set

    def _log_datasets(self, run: Run, inputs: list[dict[str, Any]]) -> None:
        stored = set(DatasetInput.objects.filter(run=run).values_list("name", "digest", "context"))
        specs = []
        for item in inputs:
            dataset, pairs = (
                item.get("dataset", {}),
                [(t["key"], t.get("value", "")) for t in item.get("tags", [])],
            )
            context = next((value for key, value in pairs if key == "mlflow.data.context"), "")
            if (dataset.get("name", ""), dataset.get("digest", ""), context) in stored:
                continue
            fields = ("name", "digest", "source_type", "source", "schema", "profile")
            specs.append(
                services.DatasetSpec(
                    context=context, tags=tuple(pairs), **{f: dataset.get(f, "") for f in fields}
                )
            )
        if specs:
            services.log_inputs(actor=self.actor, run=run, datasets=specs)
            self.report.datasets_logged += len(specs)

    def _copy_artifacts(self, run: Run) -> None:
        """Files missing here, or of another size, are downloaded (streamed) and stored."""
        stored = dict(Artifact.objects.filter(run=run).values_list("path", "size"))
        for entry in self.source.artifact_files(run.uuid):
            path, size = entry["path"], entry.get("file_size")
            if path in stored and (size is None or int(size) == stored[path]):
                continue
            with tempfile.TemporaryFile() as spool:
                self.source.download_artifact(run.uuid, path, spool)
                spool.seek(0)
                services.store_artifact(actor=self.actor, owner=run, path=path, content=spool)
            self.report.artifacts_stored += 1

    def _upload_metrics(self, run: Run, keys: list[str]) -> None:
        """Every point of every metric, written page by page into one Parquet file for the run."""
        if not keys:
            return
        points = 0
        with tempfile.TemporaryFile() as spool:
            with pq.ParquetWriter(spool, _POINTS_SCHEMA) as writer:
                for key in sorted(set(keys)):
                    for rows in self.source.metric_history(run.uuid, key):
                        writer.write_table(_points_table(key, rows))
                        points += len(rows)
            spool.seek(0)
            receipt = create_upload(
                actor=self.actor,
                content=spool,
                file_name=f"mlflow-{run.uuid}.parquet",
                format=BulkUpload.Format.PARQUET,
                run=run,
            )
        if receipt.created:
            self.report.uploads.append(receipt.upload)
            self.report.points_uploaded += points

    # Deletions --------------------------------------------------------------------------------

    def finish(self) -> None:
        """Delete what MLflow has deleted: called once the uploads are ingested. An experiment
        comes before its runs, so its deletion takes them along and restoring it here brings
        them all back, as MLflow's restore would."""
        for target in self._deletions:
            target.refresh_from_db()
            if target.lifecycle == Lifecycle.DELETED:
                continue
            if isinstance(target, Run):
                services.delete_run(actor=self.actor, run=target)
            else:
                services.delete_experiment(actor=self.actor, experiment=target)
            self.report.deleted += 1
        self._deletions.clear()
