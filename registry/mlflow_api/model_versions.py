"""MLflow's model-versions/* endpoints: register a run's model, read, search, tag, stage."""

from __future__ import annotations

from typing import Any

from config.inputs import TagInput
from registry import selectors, services
from registry.models import ModelVersion
from tracker.mlflow_api.protocol import Call, Endpoint, absent_is_fine, omit_empty
from tracker.mlflow_api.wire import tag_inputs

from . import wire
from .registered_models import not_found_in_mlflow_words, registered_model, version_not_found_in_mlflow_words


def _version(call: Call) -> ModelVersion:
    model = registered_model(call.user, call.string("name", required=True))
    number = call.integer("version", required=True)
    with version_not_found_in_mlflow_words(model.name, number):
        return selectors.get_model_version(model=model, version=number)


def _shown(user: Any, version: ModelVersion) -> dict[str, Any]:
    record = selectors.model_version_record(name=version.model.name, version=version.version, user=user)
    return {"model_version": wire.model_version(record)}


def create_model_version(call: Call) -> dict[str, Any]:
    name, source, tags = call.string("name", required=True), call.string("source"), tag_inputs(call)
    run_id, model_id = call.string("run_id"), call.string("model_id")
    run_link, description = call.string("run_link"), call.string("description")

    def found() -> tuple[Any, Any, Any]:
        model = registered_model(call.user, name)  # the model first, as MLflow answers
        origin = selectors.version_origin(run_id=run_id, model_id=model_id, source=source, user=call.user)
        return model, origin.run, origin.logged_model

    version = services.create_model_version_from(
        actor=call.caller,
        model_name=name,
        run_id=selectors.run_named_alone(run_id=run_id, model_id=model_id, source=source),
        find=found,
        source=source,
        run_link=run_link,
        description=description,
        tags=tags,
    )
    return {"model_version": wire.model_version(selectors.new_version_record(version=version, tags=tags))}


def get_model_version(call: Call) -> dict[str, Any]:
    name, number = call.string("name", required=True), call.integer("version", required=True)
    with not_found_in_mlflow_words(name), version_not_found_in_mlflow_words(name, number):
        record = selectors.model_version_record(user=call.user, name=name, version=number)
    return {"model_version": wire.model_version(record)}


def search_model_versions(call: Call) -> dict[str, Any]:
    page = selectors.search_model_versions(
        user=call.user,
        filter_string=call.string("filter"),
        order_by=call.strings("order_by"),
        page_token=call.string("page_token"),
        max_results=call.integer("max_results"),
    )
    return omit_empty(
        {
            "model_versions": [wire.model_version(record) for record in page.items],
            "next_page_token": page.next_page_token,
        }
    )


def update_model_version(call: Call) -> dict[str, Any]:
    # As in MLflow, the description sent replaces the old one; none sent clears it.
    description = call.string("description")
    version = services.update_model_version(actor=call.user, version=_version(call), description=description)
    return _shown(call.user, version)


def delete_model_version(call: Call) -> dict[str, Any]:
    with wire.protected_label_denied():
        services.delete_model_version(actor=call.user, version=_version(call))
    return {}


def get_download_uri(call: Call) -> dict[str, Any]:
    return {"artifact_uri": selectors.download_uri(version=_version(call))}


def set_model_version_tag(call: Call) -> dict[str, Any]:
    tag = TagInput(key=call.string("key", required=True), value=call.string("value"))
    services.set_model_version_tag(actor=call.user, version=_version(call), tag=tag)
    return {}


def delete_model_version_tag(call: Call) -> dict[str, Any]:
    key, version = call.string("key", required=True), _version(call)
    with absent_is_fine("key"):
        services.delete_model_version_tag(actor=call.user, version=version, key=key)
    return {}


def transition_stage(call: Call) -> dict[str, Any]:
    stage, archive = call.string("stage", required=True), call.boolean("archive_existing_versions")
    version = services.transition_stage(
        actor=call.user, version=_version(call), stage=stage, archive_existing_versions=archive
    )
    return _shown(call.user, version)


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "model-versions/create", create_model_version, checks_token=True),
    Endpoint("GET", "model-versions/get", get_model_version),
    Endpoint("GET", "model-versions/search", search_model_versions),
    Endpoint("PATCH", "model-versions/update", update_model_version),
    Endpoint("DELETE", "model-versions/delete", delete_model_version),
    Endpoint("GET", "model-versions/get-download-uri", get_download_uri),
    Endpoint("POST", "model-versions/set-tag", set_model_version_tag),
    Endpoint("DELETE", "model-versions/delete-tag", delete_model_version_tag),
    Endpoint("POST", "model-versions/transition-stage", transition_stage),
]
