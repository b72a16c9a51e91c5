"""What the registry and review pages show, composed from the registry's, tracker's and audit's
selectors, and `submit`, the one way their forms reach a service."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, AuditVerification
from audit.selectors import latest_verification
from config.exceptions import ApplicationError, PermissionDenied
from registry import selectors
from registry.models import (
    AliasHistory,
    Label,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Review,
    Stage,
)
from tracker.permissions import readable_run_pks
from tracker.selectors import MetricValue, RunData, run_data

from .comparison import compare_runs

T = TypeVar("T")


@dataclass(frozen=True)
class VersionRow:
    """A version with its source run's data: the model page's row, the version page's facts."""

    version: ModelVersion
    data: RunData
    key_metrics: list[tuple[str, MetricValue | None]] = field(default_factory=list)
    # The source run lives in an experiment the user may not read: its data stays out.
    evidence_hidden: bool = False

    @property
    def dataset_versions(self) -> list[str]:
        return sorted({f"{d.name} {d.version}".strip() for d in self.data.datasets})


def version_rows(
    *, versions: Iterable[ModelVersion], user: Any, key_metrics: Sequence[str] = ()
) -> list[VersionRow]:
    """Versions with their runs' params, metrics and datasets, in four queries whatever their
    number (plus one for the runs' experiments' READ); an unreadable run's data stays out:
    READ on a model opens its versions, not the experiments their runs were logged to (MLflow
    keeps the two apart too)."""
    versions = list(versions)
    shown = readable_run_pks(user, [v.run for v in versions])
    data = {row.run.pk: row for row in run_data([v.run for v in versions if v.run.pk in shown])}
    rows = []
    for version in versions:
        run = data.get(version.run.pk) or RunData(run=version.run)
        rows.append(
            VersionRow(
                version=version,
                data=run,
                key_metrics=[(key, run.metrics.get(key)) for key in key_metrics],
                evidence_hidden=version.run.pk not in shown,
            )
        )
    return rows


def timeline_chart(*, history: Sequence[AliasHistory]) -> dict[str, object]:
    """The alias/stage history as bars for timeline.js: one row per label, one bar per holder."""
    now = timezone.now()
    bars = [
        {
            "label": f"{row.get_kind_display()}: {row.name}",
            "version": row.version.version,
            "start": row.assigned_at.isoformat(),
            "end": (row.removed_at or now).isoformat(),
            "current": row.removed_at is None,
            "by": row.assigned_by.get_username() if row.assigned_by else "",
            "forced": bool(row.request and row.request.forced),
        }
        for row in sorted(history, key=lambda row: (row.kind, row.name, row.assigned_at))
    ]
    return {"bars": bars}


def promotion_targets(policy: PromotionPolicy) -> list[tuple[str, str]]:
    """The labels a request can name: the protected aliases, and the Production stage with
    `production` (the policy protects the legacy stage together with the alias)."""
    targets = [(f"alias:{name}", f"alias {name}") for name in policy.protected_aliases]
    if policy.protects(Label.stage(Stage.PRODUCTION)):
        targets.append((f"stage:{Stage.PRODUCTION}", f"stage {Stage.PRODUCTION} (legacy)"))
    return targets


def label_of(target: str) -> Label:
    """The label a form's `target` choice names ("alias:production", "stage:Production")."""
    kind, _, name = target.partition(":")
    return Label(kind, name)


def policy_initial(policy: PromotionPolicy) -> dict[str, object]:
    """The policy as the admin's form shows it."""
    return {
        "protected_aliases": ", ".join(policy.protected_aliases),
        "required_approvals": policy.required_approvals,
        "review_role": policy.review_role,
        "key_metrics": "\n".join(f"{m['key']} {m.get('goal', 'max')}" for m in policy.key_metrics),
    }


def _add_service_error(form: forms.Form, error: ApplicationError) -> int:
    """A service's refusal beside the field it names, or above the form (naming its field) when
    the form has no such field; returns the page's status. Refusing who asks is not about what
    they typed: that stays the 403 page (viewer_required), which names the reason."""
    if isinstance(error, PermissionDenied):
        raise error
    if error.field in form.fields:
        form.add_error(error.field, error.message)
    else:
        form.add_error(None, str(error))
    return error.http_status


def _focus_first_error(form: forms.Form) -> None:
    """The page comes back with the cursor in the field to fix (or the form's first field), so a
    keyboard user, and the scroll position, land at the error rather than the page's top."""
    name = next((name for name in form.fields if name in form.errors), next(iter(form.fields)))
    form.fields[name].widget.attrs["autofocus"] = True


def submit(form: forms.Form, action: Callable[[dict[str, Any]], T]) -> tuple[T | None, int]:
    """Validate a posted form and call its service with the cleaned data: the service's result,
    or None and the status to show the form again with its errors."""
    result, status = None, 400
    if form.is_valid():
        try:
            return action(form.cleaned_data), 200
        except ApplicationError as error:
            status = _add_service_error(form, error)
    _focus_first_error(form)
    return result, status


AUDIT_EVENTS_SHOWN = 50


@dataclass(frozen=True)
class AuditTrail:
    """A model's or version's newest audit events (across renames), and the newest check of the
    chain: events up to its `through_sequence` are covered by it."""

    events: list[AuditEvent]
    more: bool
    verification: AuditVerification | None

    @property
    def unchecked(self) -> int:
        """How many of the shown events came after the last check (so it says nothing of them)."""
        through = self.verification.through_sequence if self.verification else 0
        return sum(event.sequence > through for event in self.events)

    @property
    def unsealed(self) -> int:
        """How many of the shown events the sealer has not linked into the chain yet."""
        return sum(not event.is_sealed for event in self.events)


def audit_trail(*, model: RegisteredModel | None = None, version: ModelVersion | None = None) -> AuditTrail:
    """Found by the registry's rename-aware filter (events before stable ids name the model by
    the name it had then), shown by the audit app's history include."""
    events = list(
        selectors.audit_events_of(model=model, version=version).order_by("-sequence")[
            : AUDIT_EVENTS_SHOWN + 1
        ]
    )
    return AuditTrail(
        events=events[:AUDIT_EVENTS_SHOWN],
        more=len(events) > AUDIT_EVENTS_SHOWN,
        verification=latest_verification(),
    )


CURVES_SHOWN = 4


def _curves(
    candidate: RunData, current: RunData | None, key_metrics: Sequence[str]
) -> list[dict[str, object]]:
    """Charts for review.js: the key metrics first, then other metrics both runs logged."""
    shared = [key for key in candidate.metrics if current is None or key in current.metrics]
    keys = [key for key in key_metrics if key in candidate.metrics]
    keys += [key for key in shared if key not in keys]
    runs = [("candidate", candidate)] + ([("current", current)] if current is not None else [])
    return [
        {
            "elementId": f"review-curve-{index}",
            "key": key,
            "traces": [
                {
                    "role": role,
                    "name": f"{role}: {data.run.name or data.run.uuid}",
                    "seriesUrl": reverse("dashboard:chart-series")
                    + "?"
                    + urlencode({"runs": data.run.uuid, "keys": key}),
                }
                for role, data in runs
                if key in data.metrics
            ],
        }
        for index, key in enumerate(keys[:CURVES_SHOWN])
    ]


def review_context(*, promotion: PromotionRequest, user: User, form: forms.Form) -> dict[str, object]:
    """Everything the request page shows: the candidate beside the version it would replace (the
    label's holder now while pending, the recorded previous holder once decided), the reviews,
    and the form, or why this user gets none."""
    policy = selectors.policy_for(model=promotion.model)
    pending = promotion.status == PromotionRequest.Status.PENDING
    if pending:
        current_version = selectors.label_holder(model=promotion.model, label=promotion.label)
    else:
        current_version = promotion.previous_version
    versions = [promotion.version] + ([current_version] if current_version is not None else [])
    key_metrics = [metric["key"] for metric in policy.key_metrics]
    rows = version_rows(versions=versions, user=user, key_metrics=key_metrics)
    candidate, current = rows[0], rows[1] if len(rows) > 1 else None
    hidden = [row for row in rows if row.evidence_hidden]
    verdict = selectors.can_review(user=user, request=promotion)
    reviews = list(promotion.reviews.all())
    return {
        "req": promotion,
        "policy": policy,
        "approvals": sum(review.decision == Review.Decision.APPROVE for review in reviews),
        "candidate": candidate,
        "current": current,
        # Evidence side by side only when the user may read both runs (a half comparison would
        # mislead a reviewer); the page says whose experiment is closed to them instead.
        "evidence_hidden": list(dict.fromkeys(row.version.run.experiment.name for row in hidden)),
        "comparison": None
        if hidden
        else compare_runs(
            candidate=candidate.data,
            current=current.data if current else None,
            key_metrics=policy.key_metrics,
        ),
        "curves": [] if hidden else _curves(candidate.data, current.data if current else None, key_metrics),
        "reviews": reviews,
        "review_form": form if verdict.allowed else None,
        "cannot_review": f"You cannot review this request: {verdict.reason}." if pending else "",
        "can_withdraw": pending and promotion.requester_id == user.pk,
    }
