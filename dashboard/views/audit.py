"""The audit trail page: the global log (filtered, keyset-paged), its export, the checkpoints
and the latest chain check; plus the per-object history block other pages include."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import Role, role_of
from audit import selectors, services
from audit.export import checkpoint_response, checkpoints_response, export_response, public_key_response
from audit.selectors import EventFilter
from config.exceptions import ApplicationError

from ..access import viewer_required

EVENTS_PER_PAGE = 50
CHECKPOINTS_SHOWN = 10
HISTORY_SHOWN = 20
MAX_OBJECT_IDS = 50
TIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]


class EventFilterForm(forms.Form):
    """The page's filters; times are UTC, as everywhere on the dashboard."""

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=100)
    object_type = forms.CharField(required=False, max_length=50)
    # Repeatable in the URL (an object under each id it had, e.g. a model's name before a
    # rename); the page's text box edits the first.
    object_id = forms.CharField(required=False, max_length=255)
    since = forms.DateTimeField(required=False, input_formats=TIME_FORMATS)
    until = forms.DateTimeField(required=False, input_formats=TIME_FORMATS)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def clean_object_id(self) -> tuple[str, ...]:
        ids = tuple(value.strip() for value in self.data.getlist("object_id") if value.strip())
        if len(ids) > MAX_OBJECT_IDS:
            raise forms.ValidationError(f"at most {MAX_OBJECT_IDS} ids.")
        if any(len(value) > 255 for value in ids):
            raise forms.ValidationError("an id is longer than 255 characters.")
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("since", "until"):  # typed on a page that says UTC: read them as UTC
            if data.get(name) is not None:
                data[name] = data[name].replace(tzinfo=UTC)
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            self.add_error("until", "must be later than since.")
        return data

    def to_filter(self) -> EventFilter:
        data = self.cleaned_data
        return EventFilter(
            actor=data["actor"].strip(),
            action=data["action"].strip(),
            object_type=data["object_type"].strip(),
            object_ids=data["object_id"],
            since=data["since"],
            until=data["until"],
        )

    def query(self, **changes: Any) -> str:
        """The current filters as a query string (without paging), with `changes` applied."""
        values: dict[str, Any] = {name: self.data.get(name, "") for name in self.fields if name != "before"}
        values["object_id"] = [value for value in self.data.getlist("object_id") if value.strip()]
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in ("", None, [])}, doseq=True)


def audit_page_url(*, object_type: str, object_ids: Sequence[str]) -> str:
    """The audit page filtered to one object, under every id it had."""
    query = urlencode({"object_type": object_type, "object_id": list(object_ids)}, doseq=True)
    return f"{reverse('dashboard:audit')}?{query}"


def history_block(*, object_type: str, object_ids: Sequence[str]) -> dict[str, Any]:
    """Context for `audit/_object_history.html`: the newest events and the full-log link."""
    events = selectors.object_history(object_type=object_type, object_ids=object_ids, limit=HISTORY_SHOWN + 1)
    return {
        "events": events[:HISTORY_SHOWN],
        "unsealed": sum(not event.is_sealed for event in events[:HISTORY_SHOWN]),
        "more": len(events) > HISTORY_SHOWN,
        "audit_url": audit_page_url(object_type=object_type, object_ids=object_ids),
    }


@viewer_required
@require_GET
def audit_trail(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET)
    page = None
    pending = selectors.pending_verification()
    if form.is_valid():
        page = selectors.event_page(
            filters=form.to_filter(),
            before=form.cleaned_data["before"],
            limit=EVENTS_PER_PAGE,
            reader=request.user,
        )
    context = {
        "form": form,
        "page": page,
        "filtered": form.is_valid() and not form.to_filter().is_empty,
        "export_query": form.query() if form.is_valid() else "",
        "older_query": form.query(before=page.next_before) if page and page.next_before else "",
        "first_page_query": form.query(),
        "is_first_page": not request.GET.get("before"),
        "verification": selectors.latest_verification(),
        "unsealed": selectors.unsealed_count(),
        "pending": pending,
        # audit.js reloads the page once the queued check has finished.
        "pending_check": {"id": pending.pk, "verifyUrl": reverse("audit-api:verify")} if pending else None,
        "can_check": role_of(request.user) >= Role.CONTRIBUTOR,
        "checkpoints": selectors.list_checkpoints(limit=CHECKPOINTS_SHOWN),
        # The object's other ids ride along unseen when the filter is submitted again.
        "extra_object_ids": request.GET.getlist("object_id")[1:],
    }
    return render(request, "audit/audit_trail.html", context, status=200 if form.is_valid() else 400)


@viewer_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        return HttpResponse(f"{field}: {errors[0]}", status=400, content_type="text/plain; charset=utf-8")
    fmt = request.GET.get("format") or "csv"
    if fmt not in ("csv", "jsonl"):  # as the API refuses it: a silent CSV would surprise a script
        return HttpResponse(
            f"format: {fmt[:40]!r} is not one of csv, jsonl",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    return export_response(filters=form.to_filter(), fmt=fmt, reader=request.user)


@viewer_required
@require_POST
def audit_check(request: HttpRequest) -> HttpResponse:
    try:
        _, queued = services.request_verification(actor=request.user, full=request.POST.get("full") == "1")
    except ApplicationError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            "A check of the chain is queued." if queued else "A check is already queued; it covers this one.",
        )
    return redirect("dashboard:audit")


@viewer_required
@require_GET
def checkpoint_download(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    row = selectors.get_checkpoint(checkpoint_id=checkpoint_id)
    if row is None:
        raise Http404(f"checkpoint {checkpoint_id} does not exist.")
    return checkpoint_response(row)


@viewer_required
@require_GET
def checkpoints_download(request: HttpRequest) -> HttpResponse:
    return checkpoints_response()


@viewer_required
@require_GET
def public_key_download(request: HttpRequest) -> HttpResponse:
    return public_key_response()
