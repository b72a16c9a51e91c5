"""`manage.py seed_demo [--if-empty] [--quick]`: demo accounts, a real training sweep, a registered
model whose `production` alias needs two approvals, and one promotion request waiting for them.

`make run` calls it with --if-empty, so an existing database is left alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.permissions import SYSTEM_READER
from audit.models import AuditVerification
from audit.services import check_chain
from config.exceptions import NotFound
from registry.models import Label, ModelVersion, PromotionRequest, RegisteredModel
from registry.selectors import get_registered_model, label_holder
from registry.services import (
    create_model_version,
    create_registered_model,
    request_promotion,
    review_promotion,
    set_alias,
    set_promotion_policy,
)
from tracker.demo import seed
from tracker.models import RunStatus

MODEL_NAME = "spiral-classifier"
ALIAS = "staging"
PRODUCTION = Label.alias("production")
REQUIRED_APPROVALS = 2
KEY_METRICS = [
    {"key": "val_f1", "goal": "max"},
    {"key": "val_accuracy", "goal": "max"},
    {"key": "val_loss", "goal": "min"},
]
RESET_HINT = "Forgot a password? Reset it with: python manage.py changepassword admin"


@dataclass(frozen=True)
class Registered:
    """What the seed put in the registry, for its report."""

    model: RegisteredModel
    candidate: ModelVersion
    production: ModelVersion | None
    pending: PromotionRequest


class Command(BaseCommand):
    help = (
        "Create demo accounts (admin, contributor, reviewer, reviewer2, viewer) with random "
        "passwords, train a small NumPy MLP sweep logged through the tracker services, and register "
        f"it as {MODEL_NAME!r}: the baseline in production (approved by two reviewers), the best "
        f"run with the alias {ALIAS!r} and a pending request to promote it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the database already holds a run."
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="A 2 x 2 grid of 25 epochs, plus the baseline and the diverging run (for tests).",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000/", help="Where the printed log-in lines point."
        )

    def handle(self, *args, if_empty: bool, quick: bool, base_url: str, **options):
        if if_empty and seed.demo_data_present():
            self.stdout.write(
                "Demo data already present; log in with the users created earlier "
                "(admin, contributor, reviewer, reviewer2, viewer)."
            )
            self.stdout.write(RESET_HINT)
            return
        started = time.monotonic()
        # All or nothing: a half-seeded database would make the next `--if-empty` skip for good.
        with transaction.atomic():
            accounts = seed.ensure_demo_users()
            users = {a.user.username: a.user for a in accounts}
            sweep = seed.run_sweep(
                actor=users["contributor"], plan=seed.QUICK_PLAN if quick else seed.FULL_PLAN
            )
            registered = self._register(users=users, sweep=sweep)
        # The pages then show the chain as checked, as a deployment's hourly check would have;
        # the first scheduled check comes an hour after the worker starts.
        check = check_chain(full=True)
        self._report(sweep, registered, check, accounts, base_url, time.monotonic() - started)

    def _register(self, *, users, sweep: seed.SweepResult) -> Registered:
        """The model with its policy; on a fresh database the baseline goes to production through a
        reviewed request; the best run becomes the next version, staged, with a request waiting."""
        contributor = users["contributor"]
        try:
            model = get_registered_model(user=SYSTEM_READER, name=MODEL_NAME)
        except NotFound:
            model = create_registered_model(
                actor=contributor,
                name=MODEL_NAME,
                description="Classifies points of the three-spirals dataset (demo model).",
            )
        set_promotion_policy(
            actor=users["admin"],
            model=model,
            protected_aliases=[PRODUCTION.name],
            required_approvals=REQUIRED_APPROVALS,
            key_metrics=KEY_METRICS,
        )
        baseline = sweep.baseline
        if label_holder(model=model, label=PRODUCTION) is None and baseline is not None:
            self._promote_baseline(users=users, model=model, baseline=baseline)
        best = sweep.best
        candidate = create_model_version(
            actor=contributor,
            model=model,
            run=best.run,
            source=f"{best.run.artifact_uri}/model",
            description=(
                f"Best run of {best.run.experiment.name}: val_f1 {best.final.val_f1:.3f}, "
                f"val_accuracy {best.final.val_accuracy:.3f}."
            ),
        )
        set_alias(actor=contributor, model=model, alias=ALIAS, version=candidate)
        production = label_holder(model=model, label=PRODUCTION)
        pending = request_promotion(
            actor=contributor,
            version=candidate,
            label=PRODUCTION,
            justification=(
                f"Best of the sweep on three-spirals {seed.CURRENT_DATA_VERSION}: val_f1 "
                f"{best.final.val_f1:.3f}. It has passed staging checks."
            ),
        )
        return Registered(model=model, candidate=candidate, production=production, pending=pending)

    def _promote_baseline(self, *, users, model: RegisteredModel, baseline: seed.RunOutcome) -> None:
        version = create_model_version(
            actor=users["contributor"],
            model=model,
            run=baseline.run,
            source=f"{baseline.run.artifact_uri}/model",
            description=(
                f"Baseline on three-spirals {baseline.spec.data_version}: val_f1 {baseline.final.val_f1:.3f}."
            ),
        )
        request = request_promotion(
            actor=users["contributor"],
            version=version,
            label=PRODUCTION,
            justification="A first model to serve while the sweep on the new data runs.",
        )
        review_promotion(
            actor=users["reviewer"], request=request, decision="approve", comment="Fine as a start."
        )
        review_promotion(
            actor=users["admin"],
            request=request,
            decision="approve",
            comment="Approved for the first deployment.",
        )

    def _report(
        self, sweep, registered: Registered, check: AuditVerification, accounts, base_url: str, seconds: float
    ) -> None:
        failed = [o for o in sweep.outcomes if o.run.status != RunStatus.FINISHED]
        best = sweep.best
        write = self.stdout.write
        write(f"Seeded demo data in {seconds:.1f} s.")
        write(f"  experiment  {sweep.experiment.name}: {len(sweep.outcomes)} runs, {len(failed)} failed")
        write(
            f"  best run    {best.run.name} ({best.run.uuid}): val_f1 {best.final.val_f1:.3f}, "
            f"val_accuracy {best.final.val_accuracy:.3f}"
        )
        write(
            f"  registered  {registered.model.name} version {registered.candidate.version}, alias {ALIAS!r}"
        )
        if registered.production is not None:
            write(f"  production  version {registered.production.version} (reviewed and approved)")
        write(
            f"  pending     request #{registered.pending.pk}: version {registered.candidate.version} → "
            f"production, by contributor; needs {REQUIRED_APPROVALS} approvals"
        )
        verdict = "intact" if check.ok else f"broken at event #{check.broken_sequence}: {check.reason}"
        write(f"  audit chain {check.checked} events checked, {verdict}")
        write("")
        write("Demo accounts (passwords are shown only now; the database keeps only their hashes):")
        for account in accounts:
            username = account.user.username
            if account.password is None:
                write(f"  {username}: account existed already, password unchanged")
            else:
                write(f"  Log in at {base_url} as {username} / {account.password}")
        write(RESET_HINT)
        write(
            f"Try a review: log in as reviewer, open Reviews, approve request #{registered.pending.pk}; "
            "then as reviewer2. After the second approval production moves; the version's "
            "'Why this model?' page shows the whole trail."
        )
        write("API token for scripts: python manage.py create_api_token contributor")
