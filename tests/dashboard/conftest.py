"""Dashboard fixtures: logged-in clients and runs built through the tracker services."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from config.inputs import TagInput
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    finish_run,
    log_batch,
    log_inputs,
    start_run,
    store_artifact,
)

HOSTILE = "<script>alert(1)</script>"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def make_experiment(contributor):
    def make(name: str = "digits-sweep", description: str = ""):
        return create_experiment(actor=contributor, name=name, description=description)

    return make


@pytest.fixture
def make_run(contributor):
    """`make_run(experiment, name, params=..., metrics=..., ...)`: a run logged through the services."""

    def make(
        experiment,
        name: str,
        *,
        params: dict[str, str] | None = None,
        metrics: dict[str, float | list[float]] | None = None,
        tags: dict[str, str] | None = None,
        datasets: list[DatasetSpec] = (),
        artifacts: dict[str, bytes] | None = None,
        minutes: int = 0,
        finished: bool = True,
        **context,
    ):
        run = start_run(
            actor=contributor,
            experiment=experiment,
            name=name,
            start_time=T0 + timedelta(minutes=minutes),
            **context,
        )
        points = []
        for key, values in (metrics or {}).items():
            series = values if isinstance(values, list) else [values]
            points += [MetricInput(key=key, value=v, step=step, timestamp=1) for step, v in enumerate(series)]
        for start in range(0, max(len(points), 1), 1000):  # the batch limit is 1000 metrics
            log_batch(
                actor=contributor,
                run=run,
                metrics=points[start : start + 1000],
                params=[ParamInput(k, v) for k, v in (params or {}).items()] if start == 0 else (),
                tags=[TagInput(k, v) for k, v in (tags or {}).items()] if start == 0 else (),
            )
        if datasets:
            log_inputs(actor=contributor, run=run, datasets=list(datasets))
        for path, content in (artifacts or {}).items():
            store_artifact(actor=contributor, owner=run, path=path, content=io.BytesIO(content))
        if finished:
            run = finish_run(actor=contributor, run=run, end_time=run.start_time + timedelta(seconds=95))
        return run

    return make
