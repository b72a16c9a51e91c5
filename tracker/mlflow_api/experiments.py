"""MLflow endpoints: experiments (create, read, search, rename, tag, delete, restore)."""

from __future__ import annotations

from typing import Any

from config.exceptions import AlreadyExists, NotFound
from config.inputs import TagInput
from tracker import selectors, services
from tracker.models import Experiment

from . import wire
from .protocol import Call, Endpoint, in_mlflow_words, omit_empty

# search_experiments' page size when the client names none (MLflow's SEARCH_MAX_RESULTS_DEFAULT).
DEFAULT_MAX_RESULTS = 1000


def _experiment(call: Call) -> Experiment:
    experiment_id = call.string("experiment_id", required=True)
    with in_mlflow_words(NotFound, "experiment_id", f"No Experiment with id={experiment_id} exists"):
        return selectors.get_experiment(user=call.user, experiment_id=experiment_id)


def get_experiment_by_name(call: Call) -> dict[str, Any]:
    name = call.string("experiment_name", required=True)
    with in_mlflow_words(NotFound, "experiment_name", f"Could not find experiment with name '{name}'"):
        return {"experiment": wire.experiment(selectors.get_experiment_by_name(user=call.user, name=name))}


def create_experiment(call: Call) -> dict[str, Any]:
    name = call.string("name", required=True)
    with in_mlflow_words(AlreadyExists, "name", f"Experiment(name={name}) already exists."):
        experiment = services.create_experiment(
            actor=call.user,
            name=name,
            artifact_location=call.string("artifact_location"),
            tags=wire.tag_inputs(call),
        )
    return {"experiment_id": str(experiment.pk)}


def get_experiment(call: Call) -> dict[str, Any]:
    return {"experiment": wire.experiment(_experiment(call))}


def search_experiments(call: Call) -> dict[str, Any]:
    page = selectors.search_experiments(
        user=call.user,
        filter_string=call.string("filter") or None,
        order_by=call.strings("order_by"),
        max_results=call.integer("max_results", default=DEFAULT_MAX_RESULTS),
        page_token=call.string("page_token") or None,
        lifecycle=wire.lifecycle_filter(call, "view_type"),
    )
    return omit_empty(
        {
            "experiments": [wire.experiment(experiment) for experiment in page.experiments],
            "next_page_token": page.next_page_token,
        }
    )


def update_experiment(call: Call) -> dict[str, Any]:
    experiment = _experiment(call)
    new_name = call.optional_string("new_name")
    if new_name is not None:
        with in_mlflow_words(AlreadyExists, "name", f"Experiment(name={new_name}) already exists."):
            services.update_experiment(actor=call.user, experiment=experiment, name=new_name)
    return {}


def delete_experiment(call: Call) -> dict[str, Any]:
    services.delete_experiment(actor=call.user, experiment=_experiment(call))
    return {}


def restore_experiment(call: Call) -> dict[str, Any]:
    services.restore_experiment(actor=call.user, experiment=_experiment(call))
    return {}


def set_experiment_tag(call: Call) -> dict[str, Any]:
    tag = TagInput(call.string("key", required=True), call.string("value"))
    services.set_experiment_tag(actor=call.user, experiment=_experiment(call), tag=tag)
    return {}


def delete_experiment_tag(call: Call) -> dict[str, Any]:
    key = call.string("key", required=True)
    services.delete_experiment_tag(actor=call.user, experiment=_experiment(call), key=key)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "experiments/get-by-name", get_experiment_by_name),
    Endpoint("POST", "experiments/create", create_experiment),
    Endpoint("GET", "experiments/get", get_experiment),
    Endpoint("POST", "experiments/search", search_experiments),
    Endpoint("GET", "experiments/search", search_experiments),
    Endpoint("POST", "experiments/update", update_experiment),
    Endpoint("POST", "experiments/delete", delete_experiment),
    Endpoint("POST", "experiments/restore", restore_experiment),
    Endpoint("POST", "experiments/set-experiment-tag", set_experiment_tag),
    Endpoint("POST", "experiments/delete-experiment-tag", delete_experiment_tag),
]
