"""Who may read, change and manage an experiment, and so its runs, logged models and uploads.

MLflow's model: a run (and everything logged to it) carries its experiment's permission. EDIT
writes (start, log, tag, rename), MANAGE also deletes, restores and grants; READ only reads.
Every tracker service calls one of the `require_*` functions, so all paths refuse alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from accounts.permissions import (
    SYSTEM_READER,
    GrantKind,
    Level,
    closes_any,
    delete_grant,
    get_grant,
    level_of,
    levels_of,
    list_grants,
    readable_q,
    reads_everything,
    require_level,
    set_grant,
)
from audit.visibility import show_readable
from tracker.models import BulkUpload, Experiment, ExperimentPermission, LoggedModel, Run, SavedView

__all__ = [
    "EXPERIMENT_GRANTS",
    "Level",
    "delete_experiment_permission",
    "experiment_level",
    "get_experiment_permission",
    "list_experiment_permissions",
    "readable_experiment_ids",
    "readable_experiments",
    "readable_experiments_q",
    "require_experiment_permission",
    "require_experiments_readable",
    "require_run_permission",
    "require_run_readable",
    "require_runs_readable",
    "set_experiment_permission",
]


def experiment_level(user: Any, experiment: Experiment) -> Level:
    return level_of(user, experiment)


def require_experiment_permission(user: Any, experiment: Experiment, level: Level, *, action: str) -> None:
    """Raise PERMISSION_DENIED unless the user holds `level` on the experiment (roles included)."""
    require_level(user, experiment, level, action=action)


def can_change_saved_view(user: Any, view: SavedView) -> bool:
    """A shared view is replaced or deleted by whoever saved it, or by a manager of its
    experiment: saving under a taken name must not silently swap a colleague's view."""
    level = experiment_level(user, view.experiment)
    return level >= Level.MANAGE or (level >= Level.EDIT and view.created_by_id == user.pk)


def require_run_permission(user: Any, run: Run | LoggedModel, level: Level, *, action: str) -> None:
    """A run (or a logged model, or an artifact of either) carries its experiment's permission.

    The experiment is not fetched for the check (a log_batch path stays one query shorter): a
    stand-in with its id answers `level_of`, and a refusal names it by that id.
    """
    experiment = run.experiment if type(run).experiment.is_cached(run) else Experiment(pk=run.experiment_id)
    require_level(user, experiment, level, action=action)


def require_run_readable(user: Any, run: Run | LoggedModel, *, action: str) -> None:
    """Refuse unless the user may read the run's (or logged model's) experiment."""
    if user is not SYSTEM_READER:
        require_run_permission(user, run, Level.READ, action=action)


def require_runs_readable(user: Any, runs: Sequence[Run], *, action: str) -> None:
    """Refuse unless every one of these runs is readable (a page showing several refuses when
    any is not); one query for all of their experiments."""
    if user is SYSTEM_READER:
        return
    ids = list(dict.fromkeys(run.experiment_id for run in runs))
    require_experiments_readable(user, [Experiment(pk=pk) for pk in ids], action=action)


def readable_run_pks(user: Any, runs: Iterable[Run]) -> set[int]:
    """The pks of those runs whose experiment the user may read (one query at most), for a page
    that shows runs reached through something else (a model's versions) and leaves out the
    data of the others."""
    runs = list(runs)
    readable = set(readable_experiment_ids(user, list(dict.fromkeys(run.experiment_id for run in runs))))
    return {run.pk for run in runs if run.experiment_id in readable}


def readable_experiments_q(user: Any, *, path: str = "pk") -> Q:
    """Filter for querysets reaching an experiment through `path` (`experiment_id` on runs)."""
    return readable_q(user, ExperimentPermission, path=path)


def readable_experiments(user: Any, experiments: QuerySet[Experiment] | None = None) -> QuerySet[Experiment]:
    base = experiments if experiments is not None else Experiment.objects.all()
    return base.filter(readable_experiments_q(user))


def readable_experiment_ids(user: Any, experiment_ids: Sequence[int]) -> list[int]:
    """Those of these experiments the user may read, in their order (one query at most)."""
    if reads_everything(user):
        return list(experiment_ids)
    levels = levels_of(user, Experiment, experiment_ids)
    return [pk for pk in experiment_ids if levels[pk] >= Level.READ]


def require_experiments_readable(user: Any, experiments: Sequence[Experiment], *, action: str) -> None:
    """Refuse unless every one of these experiments is readable; one query for all of them."""
    levels = levels_of(user, Experiment, [e.pk for e in experiments])
    for experiment in experiments:
        if levels[experiment.pk] < Level.READ:
            require_level(user, experiment, Level.READ, action=action)  # raises, naming its id


def list_experiment_permissions(*, user: Any, experiment: Experiment) -> QuerySet[ExperimentPermission]:
    """The grants on an experiment; anyone who may read it may see who else may."""
    require_experiment_permission(user, experiment, Level.READ, action="Listing an experiment's permissions")
    return list_grants(obj=experiment)


def get_experiment_permission(*, user: Any, experiment: Experiment, grantee: Any) -> ExperimentPermission:
    require_experiment_permission(user, experiment, Level.READ, action="Reading an experiment permission")
    return get_grant(obj=experiment, user=grantee)  # type: ignore[no-any-return]


def set_experiment_permission(
    *, actor: Any, only: str = "", experiment: Experiment, grantee: Any, level: Level
) -> ExperimentPermission:
    """Create or change a grant; needs MANAGE on the experiment."""
    return set_grant(  # type: ignore[no-any-return]
        actor=actor,
        obj=experiment,
        user=grantee,
        level=level,
        only=only,
        action="Granting an experiment permission",
    )


def delete_experiment_permission(*, actor: Any, experiment: Experiment, grantee: Any) -> None:
    delete_grant(actor=actor, obj=experiment, user=grantee, action="Removing an experiment permission")


EXPERIMENT_GRANTS = GrantKind(
    "experiment",
    list_experiment_permissions,
    get_experiment_permission,
    set_experiment_permission,
    delete_experiment_permission,
)


# Audit events ----------------------------------------------------------------------------------
# An event about an experiment, or about anything that carries an experiment's permission, is
# read with that experiment (audit.visibility; registered in TrackerConfig.ready). When some
# experiment is closed to a user, only the events of objects they may read now are shown: an
# object deleted since, or named the way older events named it, is hidden too (fails closed).


def closes_any_experiment(user: Any) -> bool:
    return closes_any(user, ExperimentPermission)


def _as_text(field: str) -> Cast:
    return Cast(field, CharField())


def _readable_experiment_ids(user: Any) -> QuerySet[Any]:
    return readable_experiments(user).annotate(event_object_id=_as_text("pk")).values("event_object_id")


def _readable_run_ids(user: Any) -> QuerySet[Any]:
    return Run.objects.filter(experiment__in=readable_experiments(user)).values("uuid")


def _readable_logged_model_ids(user: Any) -> QuerySet[Any]:
    return LoggedModel.objects.filter(experiment__in=readable_experiments(user)).values("model_id")


def _readable_saved_view_ids(user: Any) -> QuerySet[Any]:
    views = SavedView.objects.filter(experiment__in=readable_experiments(user))
    return views.annotate(event_object_id=Concat(_as_text("experiment_id"), Value("/"), "name")).values(
        "event_object_id"
    )


def _readable_upload_ids(user: Any) -> QuerySet[Any]:
    readable = readable_experiments(user)
    uploads = BulkUpload.objects.filter(
        Q(experiment__in=readable)
        | Q(run__experiment__in=readable)
        | Q(experiment__isnull=True, run__isnull=True, created_by=user)  # runs named in the file
    )
    return uploads.annotate(event_object_id=_as_text("pk")).values("event_object_id")


def register_audit_visibility() -> None:
    """Tell the audit trail how to find the tracker's objects a user may read."""
    show_readable(
        closes_any_experiment,
        {
            "tracker.experiment": _readable_experiment_ids,
            "tracker.run": _readable_run_ids,
            "tracker.loggedmodel": _readable_logged_model_ids,
            "tracker.savedview": _readable_saved_view_ids,
            "tracker.bulkupload": _readable_upload_ids,
        },
    )
