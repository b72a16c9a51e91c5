"""The endpoints an MLflow server serves only under /ajax-api/2.0/mlflow/ (its web UI and tools
built on it call them): bulk metric histories, an upload by run id, and the datasets of
experiments. The rest of /ajax-api is the same table as /api/2.0/mlflow/."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse

from config.exceptions import InvalidInput, NotFound
from config.http import declared_body_size
from config.json_values import json_float
from tracker import selectors, services
from tracker.permissions import require_experiments_readable, require_runs_readable

from .artifacts import file_response, safe_path
from .protocol import Call, Endpoint, omit_empty, worded
from .runs import run_ref, valid_run_id

# MLflow's limits (server/handlers.py): bulk histories, the UI's upload, search-datasets.
MAX_BULK_HISTORY_RESULTS = 25_000
MAX_BULK_HISTORY_RUNS = 100
MAX_UI_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_DATASET_SEARCH_EXPERIMENTS = 20


def _refuse(message: str, field: str) -> InvalidInput:
    return worded(InvalidInput(message, field=field))  # type: ignore[return-value]


def get_metric_history_bulk(call: Call) -> dict[str, Any]:
    """One metric's full history for several runs, run by run, capped at MLflow's 25,000 points."""
    run_ids = call.strings("run_id")
    if not run_ids:
        raise _refuse("GetMetricHistoryBulk request must specify at least one run_id.", "run_id")
    if len(run_ids) > MAX_BULK_HISTORY_RUNS:
        raise _refuse(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_HISTORY_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids.",
            "run_id",
        )
    if not call.has("metric_key"):
        raise _refuse("GetMetricHistoryBulk request must specify a metric_key.", "metric_key")
    key = call.string("metric_key")
    wanted = min(
        call.integer("max_results", default=MAX_BULK_HISTORY_RESULTS, minimum=1) or 1,
        MAX_BULK_HISTORY_RESULTS,
    )
    run_ids = [valid_run_id(run_id, "run_id") for run_id in dict.fromkeys(run_ids)]
    found = selectors.find_runs(run_ids=run_ids)
    missing = next((run_id for run_id in run_ids if run_id not in found), None)
    if missing is not None:
        raise worded(NotFound(f"Run '{missing}' not found", field="run_id"))
    runs = [found[run_id] for run_id in run_ids]
    require_runs_readable(call.user, runs, action="Reading metric histories")
    points = selectors.metric_histories(runs=runs, key=key, max_results=wanted)
    metrics = [
        {"key": key, "value": json_float(value), "timestamp": ts, "step": step, "run_id": run_id}
        for run_id, step, ts, value in points
    ]
    return {"metrics": metrics}


def upload_artifact(call: Call) -> HttpResponse:
    """The UI's upload: the body is the file, `run_uuid` and `path` say where it goes."""
    run_id = call.string("run_uuid")
    if not run_id:
        raise _refuse("Request must specify run_uuid.", "run_uuid")
    path = call.string("path")
    if not path:
        raise _refuse("Request must specify path.", "path")
    path = safe_path(path)
    size = declared_body_size(call.request)
    if size is not None and size > MAX_UI_UPLOAD_BYTES:
        raise _refuse("Artifact size is too large. Max size is 10MB.", "body")
    if not size:
        raise _refuse("Request must specify data.", "body")
    services.store_artifact(
        actor=call.user, owner=run_ref(run_id, call.user), path=path, content=call.request, declared_size=size
    )
    return HttpResponse(status=200)


def search_datasets(call: Call) -> dict[str, Any]:
    experiment_ids = call.strings("experiment_ids")
    if not experiment_ids:
        raise _refuse("SearchDatasets request must specify at least one experiment_id.", "experiment_ids")
    if len(experiment_ids) > MAX_DATASET_SEARCH_EXPERIMENTS:
        raise _refuse(
            f"SearchDatasets request cannot specify more than {MAX_DATASET_SEARCH_EXPERIMENTS} "
            f"experiment_ids. Received {len(experiment_ids)} experiment_ids.",
            "experiment_ids",
        )
    experiments = selectors.get_experiments(experiment_ids=experiment_ids)
    require_experiments_readable(call.user, experiments, action="Searching datasets")
    summaries = selectors.dataset_summaries(experiments=experiments)
    return {
        "dataset_summaries": [
            omit_empty(
                {"experiment_id": str(experiment_id), "name": name, "digest": digest, "context": context}
            )
            for experiment_id, name, digest, context in summaries
        ]
    }


def download_logged_model_artifact(call: Call, model_id: str) -> FileResponse:
    model = selectors.get_logged_model(user=call.user, model_id=model_id)
    path = safe_path(call.string("artifact_file_path", required=True))
    return file_response(selectors.get_owned_artifact(owner=model, path=path))


AJAX_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "metrics/get-history-bulk", get_metric_history_bulk),
    Endpoint("POST", "upload-artifact", upload_artifact, raw_body=True),
    Endpoint("POST", "experiments/search-datasets", search_datasets),
    Endpoint("GET", "logged-models/<str:model_id>/artifacts/files", download_logged_model_artifact),
]
