"""Edits from the pages: rename a run, its description (notes) and tags, delete and restore runs
and experiments. Each POST calls the same service the APIs call (contributors and up; the
service checks the role and writes the audit event) and goes back where it came from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.exceptions import ApplicationError, PermissionDenied
from config.inputs import TagInput
from tracker import selectors, services
from tracker.models import Run, RunStatus

from ..access import viewer_required

# MLflow keeps a run's description in this tag; its UI and client read and write it there.
NOTE_TAG = "mlflow.note.content"
# Where training code records why a run failed (the demo's `failure_reason`, common spellings).
FAILURE_TAGS = ("failure_reason", "error", "error_message", "exception")


def failure_reason(*, run: Run, tags: Mapping[str, str]) -> str | None:
    """The reason a FAILED or KILLED run gives in its tags; "" when it recorded none."""
    if run.status not in (RunStatus.FAILED, RunStatus.KILLED):
        return None
    return next((tags[key] for key in FAILURE_TAGS if tags.get(key)), "")


class RenameForm(forms.Form):
    name = forms.CharField(max_length=250)


class NoteForm(forms.Form):
    note = forms.CharField(required=False, max_length=5000, strip=False)


class TagForm(forms.Form):
    key = forms.CharField(max_length=250)
    value = forms.CharField(required=False, max_length=8000, strip=False)


class TagKeyForm(forms.Form):
    key = forms.CharField(max_length=250)


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    return HttpResponseRedirect(target or default)


# action → (form of the POST, the service call given actor, target and cleaned data, message)
Edit = tuple[type[forms.Form] | None, Callable[[Any, Any, dict[str, Any]], object], str]
RUN_EDITS: dict[str, Edit] = {
    "rename": (
        RenameForm,
        lambda user, run, d: services.update_run(actor=user, run=run, name=d["name"]),
        "Run renamed.",
    ),
    "note": (
        NoteForm,
        lambda user, run, d: services.set_tags(actor=user, run=run, tags=[TagInput(NOTE_TAG, d["note"])]),
        "Description saved.",
    ),
    "tag": (
        TagForm,
        lambda user, run, d: services.set_tags(actor=user, run=run, tags=[TagInput(d["key"], d["value"])]),
        "Tag saved.",
    ),
    "untag": (
        TagKeyForm,
        lambda user, run, d: services.delete_tag(actor=user, run=run, key=d["key"]),
        "Tag removed.",
    ),
    "delete": (
        None,
        lambda user, run, d: services.delete_run(actor=user, run=run),
        "Run deleted; it can be restored.",
    ),
    "restore": (None, lambda user, run, d: services.restore_run(actor=user, run=run), "Run restored."),
}
EXPERIMENT_EDITS: dict[str, Edit] = {
    "delete": (
        None,
        lambda user, experiment, d: services.delete_experiment(actor=user, experiment=experiment),
        "Experiment deleted; it can be restored.",
    ),
    "restore": (
        None,
        lambda user, experiment, d: services.restore_experiment(actor=user, experiment=experiment),
        "Experiment restored.",
    ),
}


def _apply(request: HttpRequest, edit: Edit, target: object) -> None:
    """Run the service call for a valid form; its error (naming the field) becomes a page message."""
    form_class, change, done = edit
    data: dict[str, Any] = {}
    if form_class is not None:
        form = form_class(request.POST)
        if not form.is_valid():
            field, errors = next(iter(form.errors.items()))
            messages.error(request, f"{field}: {errors[0]}")
            return
        data = form.cleaned_data
    try:
        change(request.user, target, data)
    except PermissionDenied:
        raise  # a 403 page, as for any page the role does not allow
    except ApplicationError as error:
        messages.error(request, str(error))
        return
    messages.success(request, done)


@require_POST
@viewer_required
def run_edit(request: HttpRequest, run_id: str, action: str) -> HttpResponse:
    run = selectors.get_run(user=request.user, run_id=run_id)
    if action not in RUN_EDITS:
        raise Http404(f"no run action {action!r}")
    _apply(request, RUN_EDITS[action], run)
    return _back(request, reverse("dashboard:run-detail", args=[run.uuid]))


@require_POST
@viewer_required
def experiment_edit(request: HttpRequest, experiment_id: int, action: str) -> HttpResponse:
    experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
    if action not in EXPERIMENT_EDITS:
        raise Http404(f"no experiment action {action!r}")
    _apply(request, EXPERIMENT_EDITS[action], experiment)
    return _back(request, reverse("dashboard:experiment-list"))
