"""Demo accounts and a logged training sweep, written through the services a real client uses.

The sweep goes through `start_run`, `log_batch`, `log_inputs`, `store_artifact` and
`finish_run` exactly as a training script's calls would (one `log_batch` per epoch), so the
demo exercises the same rules and audit events as real traffic.
"""

from __future__ import annotations

import io
import itertools
import json
import platform
import secrets
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.roles import Role
from accounts.services import assign_role
from config.inputs import TagInput
from tracker.models import Experiment, Run, RunStatus
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    finish_run,
    log_batch,
    log_inputs,
    set_tags,
    start_run,
    store_artifact,
)

from . import training

EXPERIMENT_NAME = "spiral-classifier-sweep"
SOURCE = "tracker.demo.training"
CURRENT_DATA_VERSION = "2.1"
DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("contributor", Role.CONTRIBUTOR),
    ("reviewer", Role.REVIEWER),
    ("reviewer2", Role.REVIEWER),  # promotions of the demo model need two approvals
    ("viewer", Role.VIEWER),
)


@dataclass(frozen=True)
class DemoAccount:
    user: Any
    role: Role
    password: str | None  # None: the account existed already and its password was left alone


@dataclass(frozen=True)
class SweepPlan:
    learning_rates: tuple[float, ...]
    weight_decays: tuple[float, ...]
    epochs: int
    hidden_units: int = 32
    batch_size: int = 32
    seed: int = 7
    momentum: float = 0.9
    # One run on the older dataset version and one that diverges: what a real sweep's table holds.
    baseline_data_version: str | None = "2.0"
    diverging_lr: float | None = 2.0


FULL_PLAN = SweepPlan(learning_rates=(0.01, 0.05, 0.2), weight_decays=(0.0, 1e-3, 1e-2), epochs=40)
QUICK_PLAN = SweepPlan(learning_rates=(0.05, 0.2), weight_decays=(0.0, 1e-2), epochs=25)


@dataclass(frozen=True)
class RunSpec:
    name: str
    data_version: str
    lr: float
    weight_decay: float


@dataclass(frozen=True)
class RunOutcome:
    run: Run
    spec: RunSpec
    final: training.EpochMetrics | None

    @property
    def score(self) -> tuple[float, float]:
        """How runs are ranked for registration: validation macro-F1, then accuracy."""
        return (self.final.val_f1, self.final.val_accuracy) if self.final else (-1.0, -1.0)


@dataclass(frozen=True)
class SweepResult:
    experiment: Experiment
    outcomes: list[RunOutcome]

    @property
    def best(self) -> RunOutcome:
        """The best finished run on the current data version: the one worth registering."""
        candidates = [
            o
            for o in self.outcomes
            if o.run.status == RunStatus.FINISHED and o.spec.data_version == CURRENT_DATA_VERSION
        ]
        return max(candidates, key=lambda o: o.score)

    @property
    def baseline(self) -> RunOutcome | None:
        """The finished run on the older data version: what the demo puts in production first."""
        older = [
            o
            for o in self.outcomes
            if o.run.status == RunStatus.FINISHED and o.spec.data_version != CURRENT_DATA_VERSION
        ]
        return max(older, key=lambda o: o.score) if older else None


def demo_data_present() -> bool:
    """Any run at all means someone has used this database: `--if-empty` leaves it alone."""
    return Run.objects.exists()


def ensure_demo_users() -> list[DemoAccount]:
    """Create the four role accounts with fresh random passwords; existing ones keep theirs.

    Passwords are generated here and returned for printing once, so no credential is ever
    committed or written anywhere but as a hash in the database.
    """
    user_model = get_user_model()
    accounts = []
    for username, role in DEMO_USERS:
        user = user_model.objects.filter(username=username).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            create = (
                user_model.objects.create_superuser if role is Role.ADMIN else user_model.objects.create_user
            )
            user = create(username=username, email=f"{username}@example.test", password=password)
        assign_role(user=user, role=role)
        accounts.append(DemoAccount(user=user, role=role, password=password))
    return accounts


def code_commit() -> str:
    """The checked-out commit, so each run names the code that produced it."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def environment() -> dict[str, str]:
    """The versions that decide the numbers, so a rerun elsewhere can be compared fairly."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _free_experiment_name() -> str:
    """The demo name, or the first free `-2`, `-3`… so re-seeding adds a sweep instead of failing."""
    for suffix in itertools.count(1):
        name = EXPERIMENT_NAME if suffix == 1 else f"{EXPERIMENT_NAME}-{suffix}"
        if not Experiment.objects.filter(name=name).exists():
            return name
    raise AssertionError("unreachable")


def run_specs(plan: SweepPlan) -> list[RunSpec]:
    """The grid, plus a baseline on the older data and a run whose learning rate is too high."""
    specs = [
        RunSpec(f"mlp-lr{lr:g}-wd{wd:g}", CURRENT_DATA_VERSION, lr, wd)
        for lr, wd in itertools.product(plan.learning_rates, plan.weight_decays)
    ]
    default_lr = plan.learning_rates[len(plan.learning_rates) // 2]  # the grid's middle value
    if plan.baseline_data_version:
        version = plan.baseline_data_version
        specs.insert(0, RunSpec(f"baseline-data-v{version}", version, default_lr, 0.0))
    if plan.diverging_lr:
        specs.append(
            RunSpec(f"mlp-lr{plan.diverging_lr:g}-wd0", CURRENT_DATA_VERSION, plan.diverging_lr, 0.0)
        )
    return specs


def run_sweep(*, actor: Any, plan: SweepPlan = FULL_PLAN) -> SweepResult:
    """Train every run of the plan and log it as it goes; the experiment gets a fresh name."""
    experiment = create_experiment(
        actor=actor,
        name=_free_experiment_name(),
        description=(
            "Learning rate x weight decay sweep of a one-hidden-layer NumPy MLP on the "
            f"{training.DATASET_NAME} dataset (demo data from real training)."
        ),
        tags=[TagInput("team", "research"), TagInput("project", "spirals")],
    )
    specs = run_specs(plan)
    datasets = {version: training.make_dataset(version) for version in {s.data_version for s in specs}}
    # What start_run records about where each run came from: the same for the whole sweep.
    context = {"code_commit": code_commit(), "source": SOURCE, "environment": environment()}
    outcomes = [
        _train_and_log(
            actor=actor,
            experiment=experiment,
            spec=spec,
            plan=plan,
            data=datasets[spec.data_version],
            context=context,
        )
        for spec in specs
    ]
    return SweepResult(experiment=experiment, outcomes=outcomes)


def _dataset_specs(data: training.Dataset) -> list[DatasetSpec]:
    """One input per split, each pinned by the sha256 of its exact arrays."""
    recipe = data.recipe
    source = (
        f"{SOURCE}.make_dataset(version={data.version!r}): {recipe.samples_per_class} samples per class, "
        f"noise {recipe.noise}, seed {recipe.seed}"
    )
    schema = json.dumps({"features": ["x", "y"], "target": "label", "classes": training.N_CLASSES})
    return [
        DatasetSpec(
            name=data.name,
            digest=data.digest(split),
            version=data.version,
            source_type="code",
            source=source,
            context=split,
            schema=schema,
            profile=json.dumps({"num_rows": len(labels)}),
        )
        for split, labels in (("training", data.y_train), ("validation", data.y_val))
    ]


def _train_and_log(
    *,
    actor: Any,
    experiment: Experiment,
    spec: RunSpec,
    plan: SweepPlan,
    data: training.Dataset,
    context: dict[str, Any],
) -> RunOutcome:
    """One run as a training script would log it: context, params, data, a batch per epoch, files."""
    run = start_run(
        actor=actor,
        experiment=experiment,
        name=spec.name,
        **context,
        tags=[TagInput("team", "research"), TagInput("model_family", "mlp")],
    )
    hyperparameters = {
        "lr": spec.lr,
        "weight_decay": spec.weight_decay,
        "epochs": plan.epochs,
        "hidden_units": plan.hidden_units,
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "optimizer": "sgd",
        "momentum": plan.momentum,
        "activation": "tanh",
    }
    log_batch(actor=actor, run=run, params=[ParamInput(k, str(v)) for k, v in hyperparameters.items()])
    log_inputs(actor=actor, run=run, datasets=_dataset_specs(data))

    model = training.MLP.initial(
        n_in=data.x_train.shape[1], hidden=plan.hidden_units, n_out=training.N_CLASSES, seed=plan.seed
    )
    epochs = training.train(
        model,
        data,
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        epochs=plan.epochs,
        batch_size=plan.batch_size,
        seed=plan.seed,
        momentum=plan.momentum,
    )
    final = None
    try:
        for final in epochs:
            now_ms = int(time.time() * 1000)
            points = [
                MetricInput(k, v, step=final.epoch, timestamp=now_ms) for k, v in final.as_dict().items()
            ]
            log_batch(actor=actor, run=run, metrics=points)
    except training.TrainingDiverged as error:
        set_tags(actor=actor, run=run, tags=[TagInput("failure_reason", str(error))])
        run = finish_run(actor=actor, run=run, status=RunStatus.FAILED)
        return RunOutcome(run=run, spec=spec, final=final)

    _store_model(actor=actor, run=run, model=model, data=data, epoch=final.epoch if final else 0)
    run = finish_run(actor=actor, run=run)
    return RunOutcome(run=run, spec=spec, final=final)


def _store_model(*, actor: Any, run: Run, model: training.MLP, data: training.Dataset, epoch: int) -> None:
    """The weights a model version points at, and the validation confusion matrix behind its score."""
    confusion = {
        "split": "validation",
        "epoch": epoch,
        "labels": [f"spiral-{k}" for k in range(training.N_CLASSES)],
        # Rows are the true class, columns the predicted one.
        "matrix": training.confusion_matrix(data.y_val, model.predict(data.x_val)).tolist(),
    }
    store_artifact(actor=actor, owner=run, path="model/weights.npz", content=io.BytesIO(model.to_npz()))
    store_artifact(
        actor=actor,
        owner=run,
        path="confusion_matrix.json",
        content=io.BytesIO(json.dumps(confusion, indent=2).encode()),
    )
