"""MLflow's registered-models/* endpoints: models, their tags and aliases, latest versions."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from config.exceptions import AlreadyExists, InvalidInput, NotFound
from config.inputs import TagInput
from registry import selectors, services
from tracker.mlflow_api.protocol import Call, Endpoint, absent_is_fine, in_mlflow_words, omit_empty, worded
from tracker.mlflow_api.wire import tag_inputs

from . import wire


def not_found_in_mlflow_words(name: str) -> AbstractContextManager[None]:
    return in_mlflow_words(NotFound, "name", f"Registered Model with name={name} not found")


def registered_model(user: Any, name: str) -> Any:
    with not_found_in_mlflow_words(name):
        return selectors.get_registered_model(user=user, name=name)


def _model(call: Call) -> Any:
    return registered_model(call.user, call.string("name", required=True))


def _shown(user: Any, name: str) -> dict[str, Any]:
    with not_found_in_mlflow_words(name):
        record = selectors.registered_model_record(name=name, user=user)
    return {"registered_model": wire.registered_model(record)}


def create_registered_model(call: Call) -> dict[str, Any]:
    name = call.string("name", required=True)
    with in_mlflow_words(AlreadyExists, "name", f"Registered Model (name={name}) already exists."):
        model = services.create_registered_model(
            actor=call.user, name=name, description=call.string("description"), tags=tag_inputs(call)
        )
    return _shown(call.user, model.name)


def get_registered_model(call: Call) -> dict[str, Any]:
    return _shown(call.user, call.string("name", required=True))


def search_registered_models(call: Call) -> dict[str, Any]:
    page = selectors.search_registered_models(
        user=call.user,
        filter_string=call.string("filter"),
        order_by=call.strings("order_by"),
        page_token=call.string("page_token"),
        max_results=call.integer("max_results"),
    )
    return omit_empty(
        {
            "registered_models": [wire.registered_model(record) for record in page.items],
            "next_page_token": page.next_page_token,
        }
    )


def update_registered_model(call: Call) -> dict[str, Any]:
    # As in MLflow, the description sent replaces the old one; none sent clears it.
    description = call.string("description")
    model = services.update_registered_model(actor=call.user, model=_model(call), description=description)
    return _shown(call.user, model.name)


def rename_registered_model(call: Call) -> dict[str, Any]:
    new_name, model = call.string("new_name", required=True), _model(call)
    with (
        in_mlflow_words(AlreadyExists, "new_name", f"Registered Model (name={new_name}) already exists."),
        wire.protected_label_denied(),
    ):
        model = services.rename_registered_model(actor=call.user, model=model, name=new_name)
    return _shown(call.user, model.name)


def version_not_found_in_mlflow_words(name: str, number: int) -> AbstractContextManager[None]:
    return in_mlflow_words(NotFound, "version", f"Model Version (name={name}, version={number}) not found")


def delete_registered_model(call: Call) -> dict[str, Any]:
    with wire.protected_label_denied():
        services.delete_registered_model(actor=call.user, model=_model(call))
    return {}


def set_registered_model_tag(call: Call) -> dict[str, Any]:
    tag = TagInput(key=call.string("key", required=True), value=call.string("value"))
    services.set_registered_model_tag(actor=call.user, model=_model(call), tag=tag)
    return {}


def delete_registered_model_tag(call: Call) -> dict[str, Any]:
    key, model = call.string("key", required=True), _model(call)
    with absent_is_fine("key"):
        services.delete_registered_model_tag(actor=call.user, model=model, key=key)
    return {}


def set_alias(call: Call) -> dict[str, Any]:
    alias, number, model = (
        call.string("alias", required=True),
        call.integer("version", required=True),
        _model(call),
    )
    with version_not_found_in_mlflow_words(model.name, number):
        version = selectors.get_model_version(model=model, version=number)
    services.set_alias(actor=call.user, model=model, alias=alias, version=version)
    return {}


def delete_alias(call: Call) -> dict[str, Any]:
    alias, model = call.string("alias", required=True), _model(call)
    with absent_is_fine("alias"):
        services.delete_alias(actor=call.user, model=model, alias=alias)
    return {}


def get_version_by_alias(call: Call) -> dict[str, Any]:
    name, alias = call.string("name", required=True), call.string("alias", required=True)
    try:
        with not_found_in_mlflow_words(name):
            record = selectors.version_record_by_alias(user=call.user, name=name, alias=alias)
    except NotFound as error:
        if error.field != "alias":
            raise
        # MLflow's words and code (400 INVALID_PARAMETER_VALUE), which `models:/name@alias` loaders match.
        raise worded(InvalidInput(f"Registered model alias {alias} not found.", field="alias")) from None
    return {"model_version": wire.model_version(record)}


def get_latest_versions(call: Call) -> dict[str, Any]:
    stages = call.strings("stages")
    records = selectors.latest_versions(model=_model(call), stages=stages)
    return omit_empty({"model_versions": [wire.model_version(record) for record in records]})


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "registered-models/create", create_registered_model),
    Endpoint("GET", "registered-models/get", get_registered_model),
    Endpoint("GET", "registered-models/search", search_registered_models),
    Endpoint("PATCH", "registered-models/update", update_registered_model),
    Endpoint("POST", "registered-models/rename", rename_registered_model),
    Endpoint("DELETE", "registered-models/delete", delete_registered_model),
    Endpoint("POST", "registered-models/set-tag", set_registered_model_tag),
    Endpoint("DELETE", "registered-models/delete-tag", delete_registered_model_tag),
    Endpoint("POST", "registered-models/alias", set_alias),
    Endpoint("GET", "registered-models/alias", get_version_by_alias),
    Endpoint("DELETE", "registered-models/alias", delete_alias),
    Endpoint("POST", "registered-models/get-latest-versions", get_latest_versions),
    Endpoint("GET", "registered-models/get-latest-versions", get_latest_versions),
]
