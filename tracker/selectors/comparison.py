"""Comparing runs side by side: the runs with their data, their metrics' latest values, a diff of
params, tags, datasets, code, environment and artifacts, and group bands (mean with min-max) of a
metric over a common step grid."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from config.exceptions import InvalidInput, NotFound
from tracker.models import Artifact, Run
from tracker.permissions import require_runs_readable

from .charts import MAX_CHART_RUNS, ChartSeries
from .previews import image_type
from .runs import MetricValue, RunData, run_data

MIN_COMPARED_RUNS = 2
MAX_COMPARED_ARTIFACTS = 200  # paths; a run with thousands of files lists the first ones
MISSING = None  # a key a run does not have, shown as "—" in the diff


@dataclass(frozen=True)
class DiffRow:
    """One row of the diff table: a value per run (None where the run lacks the key)."""

    section: str  # "param", "tag", "dataset", "code", "env"
    key: str
    values: list[str | None]
    differs: bool


@dataclass(frozen=True)
class MetricCell:
    """A run's summary of one metric (None where the run logged none); `mark` is "highest" or
    "lowest" where its latest value is the runs' highest or lowest and the runs differ."""

    metric: MetricValue | None
    mark: str = ""


@dataclass(frozen=True)
class MetricRow:
    key: str
    cells: list[MetricCell]
    differs: bool


@dataclass(frozen=True)
class ArtifactCell:
    run: Run
    file: Artifact | None  # None where the run has no file at the row's path


@dataclass(frozen=True)
class ArtifactRow:
    """One artifact path across the runs, a cell per run. `differs` when the runs do not all
    hold the same bytes (by sha256) at that path."""

    path: str
    cells: list[ArtifactCell]
    differs: bool

    @property
    def is_image(self) -> bool:
        return image_type(self.path) is not None


@dataclass(frozen=True)
class Comparison:
    runs: list[RunData]
    rows: list[DiffRow]
    metric_rows: list[MetricRow]
    artifact_rows: list[ArtifactRow]
    more_artifacts: bool  # paths past MAX_COMPARED_ARTIFACTS were left out
    metric_keys: list[str]
    param_keys: list[str]
    dataset_versions_differ: bool
    same_environment_entries: int  # environment entries every run shares (not listed as rows)

    @property
    def varying_param_keys(self) -> list[str]:
        """The params whose value differs between the runs, in key order: the axes worth drawing
        (a param every run shares draws a flat line)."""
        return [row.key for row in self.rows if row.section == "param" and row.differs]

    @property
    def shared_metric_keys(self) -> list[str]:
        """The metrics every run has, in key order: one only some runs logged plots some of them."""
        return [key for key in self.metric_keys if all(key in data.metrics for data in self.runs)]


def compared_runs(*, run_ids: Sequence[str], user: Any, minimum: int = MIN_COMPARED_RUNS) -> list[RunData]:
    """The runs to compare, in the order asked, with their data (five queries); an unknown id is
    a 404, and the page is refused when any run is unreadable."""
    run_ids = list(dict.fromkeys(run_ids))
    if not minimum <= len(run_ids) <= MAX_CHART_RUNS:
        raise InvalidInput(
            f"choose between {minimum} and {MAX_CHART_RUNS} runs, got {len(run_ids)}", field="runs"
        )
    found = {run.uuid: run for run in Run.objects.filter(uuid__in=run_ids).select_related("experiment")}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise NotFound(f"run {missing[0]!r} does not exist", field="runs")
    require_runs_readable(user, list(found.values()), action="Comparing runs")
    return run_data([found[run_id] for run_id in run_ids])


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested environment as dotted keys ("packages.torch" → "2.3.0"), to diff line by line."""
    if isinstance(value, Mapping):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "(value)": str(value)}


def _row(section: str, key: str, values: list[str | None]) -> DiffRow:
    return DiffRow(section, key, values, differs=len(set(values)) > 1)


def _metric_row(key: str, runs: Sequence[RunData]) -> MetricRow:
    """Which direction is better depends on the metric (loss or accuracy), so both ends are
    marked, in words as well as in colour; NaN and a run without the key take part in neither."""
    metrics = [data.metrics.get(key) for data in runs]
    latest = [m.value if m is not None and not m.is_nan else None for m in metrics]
    finite = [value for value in latest if value is not None and math.isfinite(value)]
    high, low = (max(finite), min(finite)) if finite else (None, None)
    marked = len(finite) >= MIN_COMPARED_RUNS and high != low

    def mark(value: float | None) -> str:
        if not marked or value is None:
            return ""
        return "highest" if value == high else "lowest" if value == low else ""

    shown = {(m.is_nan, m.value) if m is not None else None for m in metrics}
    return MetricRow(
        key, [MetricCell(m, mark(value)) for m, value in zip(metrics, latest, strict=True)], len(shown) > 1
    )


def _artifact_rows(runs: Sequence[RunData]) -> tuple[list[ArtifactRow], bool]:
    """The runs' artifacts by path, in path order, in one query; at most MAX_COMPARED_ARTIFACTS
    paths (whether more were left out is the second value)."""
    position = {data.run.pk: index for index, data in enumerate(runs)}
    by_path: dict[str, list[Artifact | None]] = {}
    artifacts = Artifact.objects.filter(run_id__in=position).only("run_id", "path", "size", "sha256")
    # The first MAX_COMPARED_ARTIFACTS paths hold at most that many rows per run; one row more
    # shows whether another path follows.
    limit = MAX_COMPARED_ARTIFACTS * len(runs) + 1
    for artifact in artifacts.order_by("path", "run_id")[:limit]:
        files = by_path.get(artifact.path)
        if files is None:
            if len(by_path) == MAX_COMPARED_ARTIFACTS:
                return _path_rows(by_path, runs), True
            files = by_path[artifact.path] = [None] * len(runs)
        assert artifact.run_id is not None  # a run's artifacts, by the filter
        files[position[artifact.run_id]] = artifact
    return _path_rows(by_path, runs), False


def _path_rows(by_path: dict[str, list[Artifact | None]], runs: Sequence[RunData]) -> list[ArtifactRow]:
    return [
        ArtifactRow(
            path,
            [ArtifactCell(data.run, file) for data, file in zip(runs, files, strict=True)],
            differs=len({file.sha256 if file is not None else None for file in files}) > 1,
        )
        for path, files in by_path.items()
    ]


def _dataset_label(data: RunData, name: str, context: str) -> str | None:
    for dataset in data.datasets:
        if dataset.name == name and dataset.context == context:
            return f"{dataset.version or '—'} · {dataset.digest[:12]}"
    return MISSING


def compare_runs(*, run_ids: Sequence[str], user: Any) -> Comparison:
    """What the compare page shows besides its charts, read in a fixed number of queries (the
    runs' data, then their artifacts)."""
    runs = compared_runs(run_ids=run_ids, user=user)
    param_keys = sorted({key for data in runs for key in data.params})
    tag_keys = sorted({key for data in runs for key in data.tags})
    rows = [_row("param", key, [data.params.get(key) for data in runs]) for key in param_keys]
    rows += [_row("tag", key, [data.tags.get(key) for data in runs]) for key in tag_keys]
    datasets = sorted({(d.name, d.context) for data in runs for d in data.datasets})
    versions_differ = False
    for name, context in datasets:
        row = _row(
            "dataset",
            f"{name} ({context})" if context else name,
            [_dataset_label(r, name, context) for r in runs],
        )
        versions = {
            d.version or d.digest
            for data in runs
            for d in data.datasets
            if (d.name, d.context) == (name, context)
        }
        versions_differ = versions_differ or len(versions) > 1 or row.differs
        rows.append(row)
    rows.append(_row("code", "code commit", [data.run.code_commit or MISSING for data in runs]))
    # A full environment (a pip freeze) is hundreds of entries that mostly agree: only the ones
    # that differ become rows, and the page counts the rest.
    environments = [flatten(data.run.environment or {}) for data in runs]
    environment_keys = sorted({key for environment in environments for key in environment})
    environment_rows = [_row("env", key, [env.get(key) for env in environments]) for key in environment_keys]
    rows += [row for row in environment_rows if row.differs]
    metric_keys = sorted({key for data in runs for key in data.metrics})
    artifact_rows, more_artifacts = _artifact_rows(runs)
    return Comparison(
        runs=runs,
        rows=rows,
        metric_rows=[_metric_row(key, runs) for key in metric_keys],
        artifact_rows=artifact_rows,
        more_artifacts=more_artifacts,
        metric_keys=metric_keys,
        param_keys=param_keys,
        dataset_versions_differ=versions_differ,
        same_environment_entries=sum(not row.differs for row in environment_rows),
    )


@dataclass(frozen=True)
class GroupBand:
    """A group's mean line with its min-max band, on a step grid common to the group's runs."""

    key: str
    label: str
    run_ids: list[str]
    steps: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


def group_bands(
    *, series: Sequence[ChartSeries], group_of: Mapping[str, str], grid_points: int = 300
) -> list[GroupBand]:
    """Runs grouped by a label (a param's value): per key and group, the mean, min and max of the
    runs' curves, each linearly interpolated onto one grid over the steps the group covers.
    A run counts only between its own first and last finite point, so a short run does not
    drag a long group's mean to a constant."""
    members: dict[tuple[str, str], list[ChartSeries]] = {}
    for item in series:
        members.setdefault((item.key, group_of.get(item.run_id, "")), []).append(item)
    bands: list[GroupBand] = []
    for (key, label), group in sorted(members.items()):
        curves = []
        for item in group:
            finite = [(s, v) for s, v in zip(item.steps, item.values, strict=True) if math.isfinite(v)]
            if finite:
                points = np.asarray(finite, dtype=np.float64)
                curves.append((item.run_id, points[:, 0], points[:, 1]))
        if not curves:
            continue
        first = min(steps[0] for _, steps, _ in curves)
        last = max(steps[-1] for _, steps, _ in curves)
        grid = np.unique(np.round(np.linspace(first, last, num=grid_points)))
        stacked = np.full((len(curves), len(grid)), np.nan)
        for row, (_, steps, values) in enumerate(curves):
            inside = (grid >= steps[0]) & (grid <= steps[-1])
            stacked[row, inside] = np.interp(grid[inside], steps, values)
        covered = ~np.all(np.isnan(stacked), axis=0)
        grid, stacked = grid[covered], stacked[:, covered]
        bands.append(
            GroupBand(
                key=key,
                label=label,
                run_ids=[run_id for run_id, _, _ in curves],
                steps=[int(step) for step in grid],
                mean=np.nanmean(stacked, axis=0).tolist(),
                low=np.nanmin(stacked, axis=0).tolist(),
                high=np.nanmax(stacked, axis=0).tolist(),
            )
        )
    return bands
