"""Registry pages: the model list, a model (and its policy), a version (and its promotion
request form), "why this model?", and which version held each alias when."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import Level, level_of
from accounts.roles import Role, role_of
from registry import selectors, services
from registry.models import PromotionRequest
from tracker.permissions import readable_run_pks
from tracker.selectors import list_artifacts, run_detail

from ..access import viewer_required
from ..charts import chart_configs
from ..forms import ForceMoveForm, HolderAtForm, ListForm, PolicyForm, PromotionRequestForm
from ..listing import list_page
from ..registry_pages import (
    audit_trail,
    label_of,
    policy_initial,
    promotion_targets,
    submit,
    timeline_chart,
    version_rows,
)
from .audit import audit_page_url

VERSIONS_SHOWN = 100
# The orders of registry.selectors.MODEL_ORDERS, as the registry page offers them.
MODEL_SORTS = {"name": "Name", "updated": "Recently updated", "versions": "Most versions"}


@require_GET
@viewer_required
def registry(request: HttpRequest) -> HttpResponse:
    form = ListForm(request.GET, orders=MODEL_SORTS, placeholder="Name, description or tag")
    listing = list_page(
        form, lambda text, order: selectors.list_registered_models(user=request.user, text=text, order=order)
    )
    context = {"listing": listing, "models": listing.objects}
    return render(request, "registry/model_list.html", context, status=listing.status)


def _model_page(
    request: HttpRequest, name: str, policy_form: PolicyForm | None = None, status: int = 200
) -> HttpResponse:
    model = selectors.get_registered_model(user=request.user, name=name)
    policy = selectors.policy_for(model=model)
    key_metrics = [metric["key"] for metric in policy.key_metrics]
    is_admin = role_of(request.user) >= Role.ADMIN
    if is_admin and policy_form is None:
        policy_form = PolicyForm(initial=policy_initial(policy))
    context = {
        "model": model,
        "policy": policy,
        "protected": policy.protected_aliases,
        "holders": selectors.alias_holders_at(model=model, at=timezone.now()),
        "key_metric_names": key_metrics,
        # The newest versions only: a model registered from every nightly run has thousands.
        "versions": version_rows(
            versions=selectors.list_model_versions(model=model)[: VERSIONS_SHOWN + 1],
            user=request.user,
            key_metrics=key_metrics,
        ),
        "versions_shown": VERSIONS_SHOWN,
        "pending": list(
            selectors.list_promotion_requests(
                user=request.user, model=model, status=PromotionRequest.Status.PENDING
            )
        ),
        "policy_form": policy_form if is_admin else None,
        "history": audit_trail(model=model),
        "audit_url": audit_page_url(object_type=model._meta.label_lower, object_ids=[model.audit_id]),
    }
    return render(request, "registry/model_detail.html", context, status=status)


@require_GET
@viewer_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _model_page(request, name)


@require_POST
@viewer_required
def model_policy(request: HttpRequest, name: str) -> HttpResponse:
    """An admin changes the model's promotion policy (the service checks the role and audits it)."""
    model = selectors.get_registered_model(user=request.user, name=name)
    form = PolicyForm(request.POST)
    saved, status = submit(
        form, lambda data: services.set_promotion_policy(actor=request.user, model=model, **data)
    )
    if saved is None:
        return _model_page(request, name, policy_form=form, status=status)
    messages.success(request, f"The promotion policy of {model.name} was saved.")
    return redirect("dashboard:model-detail", name=model.name)


def _version_page(
    request: HttpRequest,
    name: str,
    version: int,
    *,
    form: PromotionRequestForm | None = None,
    force_form: ForceMoveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    model = selectors.get_registered_model(user=request.user, name=name)
    found = selectors.get_model_version(model=model, version=version)
    policy = selectors.policy_for(model=model)
    targets = promotion_targets(policy)
    role = role_of(request.user)
    # The form only for whom the service would take it from: a contributor who may edit the model.
    may_request = role >= Role.CONTRIBUTOR and bool(targets) and level_of(request.user, model) >= Level.EDIT
    may_force = role >= Role.ADMIN and bool(targets)
    context = {
        "model": model,
        "version": found,
        "policy": policy,
        "row": version_rows(
            versions=[found], user=request.user, key_metrics=[m["key"] for m in policy.key_metrics]
        )[0],
        "requests": list(
            selectors.list_promotion_requests(user=request.user, model=model, version_id=found.pk)
        ),
        "form": (form or PromotionRequestForm(targets=targets)) if may_request else None,
        "force_form": (force_form or ForceMoveForm(targets=targets, prefix="force")) if may_force else None,
    }
    return render(request, "registry/version_detail.html", context, status=status)


@require_GET
@viewer_required
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    return _version_page(request, name, version)


@require_POST
@viewer_required
def version_request(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """A contributor asks reviewers to move a protected alias (or stage) to this version."""
    model = selectors.get_registered_model(user=request.user, name=name)
    found = selectors.get_model_version(model=model, version=version)
    form = PromotionRequestForm(request.POST, targets=promotion_targets(selectors.policy_for(model=model)))
    opened, status = submit(
        form,
        lambda data: services.request_promotion(
            actor=request.user,
            version=found,
            label=label_of(data["target"]),
            justification=data["justification"],
        ),
    )
    if opened is None:
        return _version_page(request, name, version, form=form, status=status)
    messages.success(request, f"Request #{opened.pk} is waiting for review.")
    return redirect("dashboard:request-detail", request_id=opened.pk)


@require_POST
@viewer_required
def version_force(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Break-glass: an admin moves a protected label now, with a reason recorded for everyone."""
    model = selectors.get_registered_model(user=request.user, name=name)
    found = selectors.get_model_version(model=model, version=version)
    targets = promotion_targets(selectors.policy_for(model=model))
    form = ForceMoveForm(request.POST, targets=targets, prefix="force")
    forced, status = submit(
        form,
        lambda data: services.force_move(
            actor=request.user,
            model=model,
            label=label_of(data["target"]),
            version=found,
            reason=data["reason"],
        ),
    )
    if forced is None:
        return _version_page(request, name, version, force_form=form, status=status)
    messages.warning(
        request, f"Break-glass: {forced.label} now points at v{found.version}; the reason is recorded."
    )
    return redirect("dashboard:version-detail", name=model.name, version=found.version)


@require_GET
@viewer_required
def version_lineage(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Why this model? The evidence behind a version and every decision about it, on one page."""
    model = selectors.get_registered_model(user=request.user, name=name)
    lineage = selectors.lineage_of(version=selectors.get_model_version(model=model, version=version))
    # The decisions are the model's; the evidence is its run's experiment's.
    shown = bool(readable_run_pks(request.user, [lineage.run]))
    data = run_detail(run=lineage.run) if shown else None
    context = {
        "model": model,
        "version": lineage.version,
        "lineage": lineage,
        "run": lineage.run,
        "evidence_hidden": not shown,
        "data": data,
        "artifacts": list(list_artifacts(run=lineage.run)) if shown else [],
        "charts": chart_configs(run=lineage.run, metric_keys=list(data.metrics)) if data else [],
        "history": audit_trail(version=lineage.version),
        "audit_url": audit_page_url(
            object_type=lineage.version._meta.label_lower, object_ids=[lineage.version.audit_id]
        ),
    }
    return render(request, "registry/lineage.html", context)


@require_http_methods(["GET"])
@viewer_required
def model_timeline(request: HttpRequest, name: str) -> HttpResponse:
    """Which version held each alias and stage, as a table and a chart, and at a chosen moment."""
    model = selectors.get_registered_model(user=request.user, name=name)
    history = list(selectors.alias_timeline(model=model))
    form = HolderAtForm(request.GET or None, initial={"at": timezone.now().replace(microsecond=0)})
    holders = None
    if form.is_valid():
        holders = selectors.alias_holders_at(model=model, at=form.cleaned_data["at"])
    context = {
        "model": model,
        "history": history,
        "form": form,
        "holders": holders,
        "chart": timeline_chart(history=history),
    }
    return render(request, "registry/timeline.html", context, status=400 if form.errors else 200)
