"""`manage.py seed_demo`: real training logged through the services, a staged model, demo accounts."""

from __future__ import annotations

import io
import json
import re
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.permissions import SYSTEM_READER
from audit.models import AuditEvent, AuditVerification
from audit.sealing import seal_events
from audit.verification import verify_chain
from registry.models import AliasHistory, PromotionRequest
from registry.selectors import (
    get_model_version,
    get_registered_model,
    get_version_by_alias,
    policy_for,
    review_queue_for,
)
from registry.services import review_promotion
from tracker import selectors
from tracker.demo import training
from tracker.demo.seed import EXPERIMENT_NAME, QUICK_PLAN
from tracker.models import Artifact, Run, RunStatus

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded() -> str:
    return seed("--quick")


def runs_by_name(experiment_name: str = EXPERIMENT_NAME) -> dict[str, Run]:
    experiment = selectors.get_experiment_by_name(user=SYSTEM_READER, name=experiment_name)
    return {run.name: run for run in Run.objects.filter(experiment=experiment)}


def test_seeding_logs_real_per_epoch_curves_whose_validation_accuracy_improves(seeded):
    run = runs_by_name()["mlp-lr0.05-wd0"]
    accuracy = selectors.metric_history(run=run, key="val_accuracy").points
    loss = selectors.metric_history(run=run, key="train_loss").points

    assert [step for step, _, _ in accuracy] == list(range(1, QUICK_PLAN.epochs + 1))
    assert accuracy[-1][2] > accuracy[0][2] + 0.3
    assert loss[-1][2] < loss[0][2] / 2
    assert set(selectors.run_detail(run=run).metrics) == {
        "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_f1",
    }  # fmt: skip


def test_each_run_records_its_params_datasets_code_and_environment(seeded):
    data = selectors.run_detail(run=runs_by_name()["mlp-lr0.2-wd0.01"])
    expected = training.make_dataset("2.1")

    assert data.params == {
        "activation": "tanh",
        "batch_size": "32",
        "epochs": str(QUICK_PLAN.epochs),
        "hidden_units": "32",
        "lr": "0.2",
        "momentum": "0.9",
        "optimizer": "sgd",
        "seed": "7",
        "weight_decay": "0.01",
    }
    assert {(d.name, d.version, d.context, d.digest) for d in data.datasets} == {
        ("three-spirals", "2.1", "training", expected.digest("training")),
        ("three-spirals", "2.1", "validation", expected.digest("validation")),
    }
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", data.run.code_commit)
    assert data.run.source == "tracker.demo.training"
    assert data.run.environment["numpy"] == np.__version__
    assert data.run.status == RunStatus.FINISHED and data.run.end_time is not None


def test_finished_runs_store_their_weights_and_confusion_matrix(seeded):
    run = runs_by_name()["mlp-lr0.2-wd0"]
    weights = np.load(io.BytesIO(selectors.get_artifact(run=run, path="model/weights.npz").file.read()))
    confusion = json.loads(selectors.get_artifact(run=run, path="confusion_matrix.json").file.read())

    assert weights["w1"].shape == (2, QUICK_PLAN.hidden_units)
    assert np.array(confusion["matrix"]).sum() == len(training.make_dataset("2.1").y_val)


def test_the_diverging_run_is_failed_with_its_reason_and_no_model(seeded):
    run = runs_by_name()["mlp-lr2-wd0"]
    data = selectors.run_detail(run=run)

    assert run.status == RunStatus.FAILED
    assert "learning rate is too high" in data.tags["failure_reason"]
    assert not Artifact.objects.filter(run=run).exists()


def test_the_best_run_is_registered_as_version_2_with_the_staging_alias(seeded):
    experiment = selectors.get_experiment_by_name(user=SYSTEM_READER, name=EXPERIMENT_NAME)
    ranked = selectors.search_runs(
        user=SYSTEM_READER,
        experiment_ids=[experiment.pk],
        filter_string="datasets.version = '2.1' and attributes.status = 'FINISHED'",
        order_by=["metrics.val_f1 DESC"],
    )
    model = get_registered_model(user=SYSTEM_READER, name="spiral-classifier")

    assert get_model_version(model=model, version=2).run == ranked.runs[0].run
    assert get_version_by_alias(model=model, alias="staging").version == 2


def test_the_baseline_is_in_production_through_a_reviewed_request(seeded):
    model = get_registered_model(user=SYSTEM_READER, name="spiral-classifier")
    production = get_version_by_alias(model=model, alias="production")
    approved = PromotionRequest.objects.get(status="approved")

    assert (production.version, production.run.name) == (1, "baseline-data-v2.0")
    assert approved.version == production
    assert sorted(approved.reviews.values_list("reviewer__username", flat=True)) == ["admin", "reviewer"]
    assert AliasHistory.objects.get(name="production").request == approved


def test_a_pending_request_waits_for_two_reviewers_who_then_move_production(seeded):
    model = get_registered_model(user=SYSTEM_READER, name="spiral-classifier")
    policy = policy_for(model=model)
    pending = PromotionRequest.objects.get(status="pending")
    users = {u.username: u for u in get_user_model().objects.all()}

    assert (policy.protected_aliases, policy.required_approvals) == (["production"], 2)
    assert [m["key"] for m in policy.key_metrics] == ["val_f1", "val_accuracy", "val_loss"]
    assert (pending.version.version, pending.requester.username, pending.previous_version.version) == (
        2,
        "contributor",
        1,
    )
    assert f"approve request #{pending.pk}" in seeded
    assert [r.pk for r in review_queue_for(user=users["reviewer"])] == [pending.pk]
    assert list(review_queue_for(user=users["contributor"])) == []

    review_promotion(actor=users["reviewer"], request=pending, decision="approve", comment="ok")
    assert get_version_by_alias(model=model, alias="production").version == 1
    review_promotion(actor=users["reviewer2"], request=pending, decision="approve", comment="ok")
    assert get_version_by_alias(model=model, alias="production").version == 2


def test_the_readme_query_finds_some_runs_but_not_all(seeded):
    experiment = selectors.get_experiment_by_name(user=SYSTEM_READER, name=EXPERIMENT_NAME)
    found = selectors.search_runs(
        user=SYSTEM_READER,
        experiment_ids=[experiment.pk],
        filter_string="datasets.version = '2.1' and metrics.val_f1 > 0.85",
    )

    assert 0 < len(found.runs) < Run.objects.filter(experiment=experiment).count()


def test_demo_accounts_have_their_roles_and_the_printed_passwords(seeded):
    printed = dict(re.findall(r"Log in at http://127\.0\.0\.1:8000/ as (\w+) / (\S+)", seeded))
    users = {u.username: u for u in get_user_model().objects.filter(username__in=printed)}

    assert set(printed) == {"admin", "contributor", "reviewer", "reviewer2", "viewer"}
    assert all(users[name].check_password(password) for name, password in printed.items())
    assert {name: sorted(users[name].groups.values_list("name", flat=True)) for name in users} == {
        "admin": ["admin"],
        "contributor": ["contributor"],
        "reviewer": ["reviewer"],
        "reviewer2": ["reviewer"],
        "viewer": ["viewer"],
    }
    assert users["admin"].is_superuser and not users["contributor"].is_staff
    assert "python manage.py changepassword admin" in seeded


def test_if_empty_on_a_populated_database_does_nothing(seeded):
    runs_before = Run.objects.count()

    output = seed("--if-empty")

    assert output.startswith("Demo data already present; log in with the users created earlier")
    assert "changepassword admin" in output
    assert Run.objects.count() == runs_before


def test_seeding_again_keeps_the_accounts_and_adds_a_second_sweep_and_version(seeded):
    output = seed("--quick")
    model = get_registered_model(user=SYSTEM_READER, name="spiral-classifier")

    assert "admin: account existed already, password unchanged" in output
    assert "Log in at" not in output
    assert runs_by_name(f"{EXPERIMENT_NAME}-2")
    assert get_version_by_alias(model=model, alias="staging").version == 3
    assert get_version_by_alias(model=model, alias="production").version == 1  # the baseline, once
    assert PromotionRequest.objects.filter(status="pending").count() == 2


def test_the_seed_leaves_the_chain_checked_so_the_pages_show_it_verified(seeded):
    check = AuditVerification.objects.get()
    assert (check.mode, check.status, check.ok, check.requested_by) == ("full", "done", True, None)
    assert check.checked > 100
    assert f"audit chain {check.checked} events checked, intact" in seeded
    assert AuditEvent.objects.filter(action="audit.chain_verified").count() == 1


def test_the_audit_chain_verifies_after_seeding(seeded):
    seal_events()  # what the sealer does within seconds of the seeding's commits
    report = verify_chain()

    assert report.ok
    assert report.checked > 100
