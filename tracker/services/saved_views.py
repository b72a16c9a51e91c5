"""Saved run-table views: a name for a view's URL query, per experiment, shared with the team."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.db import transaction

from audit.services import record_event
from config.exceptions import Conflict, InvalidInput, PermissionDenied
from tracker import search
from tracker.models import Experiment, Lifecycle, SavedView
from tracker.permissions import Level, can_change_saved_view, require_experiment_permission
from tracker.validation import validate_text

MAX_VIEW_NAME_LENGTH = 200
MAX_VIEW_QUERY_LENGTH = 20_000


def _saver(view: SavedView) -> str:
    return view.created_by.get_username() if view.created_by else "someone"


def save_view(*, actor: Any, experiment: Experiment, name: str, query: str) -> SavedView:
    """Create the named view, or replace the query of the actor's own view of that name (a
    manager of the experiment may replace anyone's)."""
    require_experiment_permission(actor, experiment, Level.EDIT, action="Saving a view")
    name = validate_text(name, field="name", max_length=MAX_VIEW_NAME_LENGTH, allow_empty=False).strip()
    query = validate_text(query, field="query", max_length=MAX_VIEW_QUERY_LENGTH).lstrip("?")
    if experiment.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"experiment {experiment.pk} is deleted", field="experiment_id")
    state = parse_qs(query)
    if "page_token" in state:  # a token is one page of one search: a view opens on its first page
        raise InvalidInput("a view starts on its first page: leave out page_token", field="query")
    try:  # a view is shared: one that opens on an error would be broken for the whole team
        for text in state.get("filter", []):
            search.parse_filter(text)
        search.parse_order_by(state.get("order_by", []))
    except InvalidInput as error:
        raise InvalidInput(f"it cannot be used: {error.message}", field="query") from None
    with transaction.atomic():
        # Locked so that two people saving the same name at once replace it one after the other.
        view = SavedView.objects.select_for_update().filter(experiment=experiment, name=name).first()
        if view is not None and not can_change_saved_view(actor, view):
            raise Conflict(f"{name!r} is {_saver(view)}'s view: save yours under another name", field="name")
        before = {"query": view.query} if view else None
        if view is None:
            view = SavedView.objects.create(experiment=experiment, name=name, query=query, created_by=actor)
        elif view.query != query:
            view.query = query
            view.save(update_fields=["query", "updated_at"])
        record_event(
            actor=actor,
            action="saved_view.saved",
            target=view,
            before=before,
            after={"experiment": experiment.pk, "name": name, "query": query},
        )
    return view


def delete_view(*, actor: Any, view: SavedView) -> None:
    """Remove a saved view; the audit event keeps its name and query."""
    require_experiment_permission(actor, view.experiment, Level.EDIT, action="Deleting a saved view")
    if not can_change_saved_view(actor, view):
        raise PermissionDenied(
            f"{view.name!r} is {_saver(view)}'s view: deleting it needs MANAGE on the experiment"
        )
    with transaction.atomic():
        record_event(
            actor=actor,
            action="saved_view.deleted",
            target=view,
            before={"experiment": view.experiment_id, "name": view.name, "query": view.query},
        )
        view.delete()
