"""Who may read, change and manage an experiment, and so its runs, logged models and uploads.

MLflow's model: a run (and everything logged to it) carries its experiment's permission. EDIT
writes (start, log, tag, rename), MANAGE also deletes, restores and grants; READ only reads.
Every tracker service calls one of the `require_*` functions, so all paths refuse alike.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.permissions import (
    Level,
    delete_grant,
    get_grant,
    level_of,
    list_grants,
    readable_q,
    require_level,
    set_grant,
)
from tracker.models import Experiment, ExperimentPermission, LoggedModel, Run

__all__ = [
    "Level",
    "delete_experiment_permission",
    "experiment_level",
    "get_experiment_permission",
    "list_experiment_permissions",
    "readable_experiments",
    "readable_experiments_q",
    "require_experiment_permission",
    "require_run_permission",
    "set_experiment_permission",
]


def experiment_level(user: Any, experiment: Experiment) -> Level:
    return level_of(user, experiment)


def require_experiment_permission(user: Any, experiment: Experiment, level: Level, *, action: str) -> None:
    """Raise PERMISSION_DENIED unless the user holds `level` on the experiment (roles included)."""
    require_level(user, experiment, level, action=action)


def require_run_permission(user: Any, run: Run | LoggedModel, level: Level, *, action: str) -> None:
    """A run (or a logged model, or an artifact of either) carries its experiment's permission.

    The experiment is not fetched for the check (a log_batch path stays one query shorter): a
    stand-in with its id answers `level_of`, and names it in a refusal.
    """
    experiment = (
        run.experiment
        if type(run).experiment.is_cached(run)
        else Experiment(pk=run.experiment_id, name=str(run.experiment_id))
    )
    require_level(user, experiment, level, action=action)


def readable_experiments_q(user: Any, *, path: str = "pk") -> Q:
    """Filter for querysets reaching an experiment through `path` (`experiment_id` on runs)."""
    return readable_q(user, ExperimentPermission, path=path)


def readable_experiments(user: Any, experiments: QuerySet[Experiment] | None = None) -> QuerySet[Experiment]:
    base = experiments if experiments is not None else Experiment.objects.all()
    return base.filter(readable_experiments_q(user))


def list_experiment_permissions(*, user: Any, experiment: Experiment) -> QuerySet[ExperimentPermission]:
    """The grants on an experiment; anyone who may read it may see who else may."""
    require_experiment_permission(user, experiment, Level.READ, action="Listing an experiment's permissions")
    return list_grants(obj=experiment)


def get_experiment_permission(*, user: Any, experiment: Experiment, grantee: Any) -> ExperimentPermission:
    require_experiment_permission(user, experiment, Level.READ, action="Reading an experiment permission")
    return get_grant(obj=experiment, user=grantee)  # type: ignore[no-any-return]


def set_experiment_permission(
    *, actor: Any, experiment: Experiment, grantee: Any, level: Level
) -> ExperimentPermission:
    """Create or change a grant; needs MANAGE on the experiment."""
    return set_grant(  # type: ignore[no-any-return]
        actor=actor, obj=experiment, user=grantee, level=level, action="Granting an experiment permission"
    )


def delete_experiment_permission(*, actor: Any, experiment: Experiment, grantee: Any) -> None:
    delete_grant(actor=actor, obj=experiment, user=grantee, action="Removing an experiment permission")
