"""`manage.py seed_demo [--if-empty] [--quick]`: demo accounts, a real training sweep, a registered model.

`make run` calls it with --if-empty, so an existing database is left alone.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.roles import Role
from config.exceptions import NotFound
from registry.selectors import get_registered_model
from registry.services import create_model_version, create_registered_model, set_alias
from tracker.demo import seed
from tracker.models import RunStatus

MODEL_NAME = "spiral-classifier"
ALIAS = "staging"
RESET_HINT = "Forgot a password? Reset it with: python manage.py changepassword admin"


class Command(BaseCommand):
    help = (
        "Create demo accounts (admin, contributor, reviewer, viewer) with random passwords, train a "
        "small NumPy MLP sweep logged through the tracker services, and register the best run's "
        f"model as {MODEL_NAME!r} with the alias {ALIAS!r}."
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
                "(admin, contributor, reviewer, viewer)."
            )
            self.stdout.write(RESET_HINT)
            return
        started = time.monotonic()
        # All or nothing: a half-seeded database would make the next `--if-empty` skip for good.
        with transaction.atomic():
            accounts = seed.ensure_demo_users()
            actor = next(a.user for a in accounts if a.role is Role.CONTRIBUTOR)
            sweep = seed.run_sweep(actor=actor, plan=seed.QUICK_PLAN if quick else seed.FULL_PLAN)
            best = sweep.best
            version = self._register(actor=actor, best=best)
        self._report(sweep, best, version, accounts, base_url, time.monotonic() - started)

    def _register(self, *, actor, best: seed.RunOutcome):
        """Register the best run as the model's next version (1 on a fresh database) and stage it."""
        try:
            model = get_registered_model(name=MODEL_NAME)
        except NotFound:
            model = create_registered_model(
                actor=actor,
                name=MODEL_NAME,
                description="Classifies points of the three-spirals dataset (demo model).",
            )
        version = create_model_version(
            actor=actor,
            model=model,
            run=best.run,
            source=f"{best.run.artifact_uri}/model",
            description=(
                f"Best run of {best.run.experiment.name}: val_f1 {best.final.val_f1:.3f}, "
                f"val_accuracy {best.final.val_accuracy:.3f}."
            ),
        )
        set_alias(actor=actor, model=model, alias=ALIAS, version=version)
        return version

    def _report(self, sweep, best, version, accounts, base_url: str, seconds: float) -> None:
        failed = [o for o in sweep.outcomes if o.run.status != RunStatus.FINISHED]
        write = self.stdout.write
        write(f"Seeded demo data in {seconds:.1f} s.")
        write(f"  experiment  {sweep.experiment.name}: {len(sweep.outcomes)} runs, {len(failed)} failed")
        write(
            f"  best run    {best.run.name} ({best.run.uuid}): val_f1 {best.final.val_f1:.3f}, "
            f"val_accuracy {best.final.val_accuracy:.3f}"
        )
        write(f"  registered  {version.model.name} version {version.version}, alias {ALIAS!r}")
        write("")
        write("Demo accounts (passwords are shown only now; the database keeps only their hashes):")
        for account in accounts:
            username = account.user.username
            if account.password is None:
                write(f"  {username}: account existed already, password unchanged")
            else:
                write(f"  Log in at {base_url} as {username} / {account.password}")
        write(RESET_HINT)
        write("API token for scripts: python manage.py create_api_token contributor")
