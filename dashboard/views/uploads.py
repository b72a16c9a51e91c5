"""Bulk uploads in the browser: the form, the list per experiment, one upload, and its status JSON."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import Role, role_of
from config.exceptions import ApplicationError, PermissionDenied
from tracker import selectors
from tracker.models import BulkUpload
from tracker.selectors.uploads import get_upload, list_uploads
from tracker.services.uploads import create_upload

from ..access import viewer_required


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, JSON Lines, Parquet or a TensorBoard event file; .gz for compressed text."
    )
    run_id = forms.CharField(required=False, max_length=32, label="Run id", help_text="Every row goes to it.")
    experiment_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    create_runs = forms.BooleanField(required=False, label="Create runs named in a run_name column")
    file_format = forms.ChoiceField(
        required=False, label="Format", choices=[("", "from the file name"), *BulkUpload.Format.choices]
    )


def _polls(uploads: list[BulkUpload]) -> list[dict]:
    """The uploads whose progress the page follows, with the URL it asks."""
    active = (BulkUpload.Status.QUEUED, BulkUpload.Status.RUNNING)
    return [
        {"id": upload.pk, "url": reverse("dashboard:upload-status", args=[upload.pk])}
        for upload in uploads
        if upload.status in active
    ]


def _status(upload: BulkUpload) -> dict:
    """What the page's poll needs to move the bar and finish the row."""
    return {
        "id": upload.pk,
        "status": upload.status,
        "bytes_done": upload.bytes_done,
        "size_bytes": upload.size_bytes,
        "rows_done": upload.rows_done,
        "points_inserted": upload.points_inserted,
        "duration_seconds": upload.duration_seconds,
        "error": upload.error_message,
    }


@require_GET
@viewer_required
def upload_list(request: HttpRequest) -> HttpResponse:
    """Past uploads, of one experiment when `?experiment=` names it."""
    experiment_id = request.GET.get("experiment", "")
    experiment = (
        selectors.get_experiment(user=request.user, experiment_id=experiment_id) if experiment_id else None
    )
    uploads = list_uploads(user=request.user, experiment=experiment, limit=100)
    context = {
        "experiment": experiment,
        "uploads": uploads,
        "experiments": selectors.list_experiments(user=request.user),
        "polls": _polls(uploads),
        "can_upload": role_of(request.user) >= Role.CONTRIBUTOR,
    }
    return render(request, "dashboard/uploads.html", context)


@require_http_methods(["GET", "POST"])
@viewer_required
def upload_new(request: HttpRequest) -> HttpResponse:
    """The upload form; a stored file goes to its own page, where its progress shows."""
    initial = {"run_id": request.GET.get("run", ""), "experiment_id": request.GET.get("experiment") or None}
    form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
    run = experiment = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = selectors.get_run(user=request.user, run_id=data["run_id"]) if data["run_id"] else None
            if data["experiment_id"] is not None and run is None:
                experiment = selectors.get_experiment(user=request.user, experiment_id=data["experiment_id"])
            receipt = create_upload(
                actor=request.user,
                content=data["file"],
                file_name=data["file"].name,
                format=data["file_format"],
                run=run,
                experiment=experiment,
                create_runs=data["create_runs"],
            )
        except PermissionDenied:
            raise  # who is asking, not what they typed: the 403 page (viewer_required)
        except ApplicationError as error:
            form.add_error(None, str(error))
        else:
            return redirect("dashboard:upload-detail", upload_id=receipt.upload.pk)
    experiment_id = form["experiment_id"].value()
    context = {
        "form": form,
        # A viewer reads why instead of filling in a form the service would refuse.
        "can_upload": role_of(request.user) >= Role.CONTRIBUTOR,
        "experiment": selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        if experiment_id
        else None,
    }
    return render(request, "dashboard/uploads_new.html", context, status=400 if form.errors else 200)


@require_GET
@viewer_required
def upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    upload = get_upload(upload_id=upload_id, user=request.user)
    return render(request, "dashboard/uploads_detail.html", {"upload": upload, "polls": _polls([upload])})


@require_GET
@viewer_required
def upload_status(request: HttpRequest, upload_id: int) -> JsonResponse:
    return JsonResponse(_status(get_upload(upload_id=upload_id, user=request.user)))
