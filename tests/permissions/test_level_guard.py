"""The SQL form of the permission rule (`level_guard_sql`), which the one-statement writes check
in the statement itself, against `require_level`, for every role, grant, default and level."""

from __future__ import annotations

import itertools

import pytest

from accounts.permissions import Level, level_guard_params, level_guard_sql, require_level
from accounts.roles import Role
from accounts.services import assign_role
from config.db import execute_committed
from config.exceptions import PermissionDenied, Unauthenticated
from tests.factories import ExperimentFactory, UserFactory
from tracker.models import DEFAULT_EXPERIMENT_ID, Experiment, ExperimentPermission

pytestmark = pytest.mark.usefixtures("postgres_statements")

GRANTS = (None, *Level)  # None: the user holds no grant, so a default applies
_GUARD = (
    f"SELECT array_agg(o.id ORDER BY o.id) FROM {Experiment._meta.db_table} o "
    f"WHERE o.id = ANY(%(ids)s::bigint[]) AND {level_guard_sql(Experiment, target='o.id')}"
)


def _personas() -> list:
    people = []
    for role in Role:
        user = UserFactory(username=f"guard-{role.name.lower()}")
        if role is not Role.NONE:
            assign_role(user=user, role=role)
        people.append(user)
    superuser = UserFactory(username="guard-superuser", is_superuser=True)
    inactive = UserFactory(username="guard-inactive", is_active=False)
    assign_role(user=inactive, role=Role.ADMIN)
    return [*people, superuser, inactive]


def _allowed_by_python(user, experiment, level: Level) -> bool:
    user.__dict__.pop("_labledger_levels", None)
    user.__dict__.pop("_labledger_role", None)
    try:
        require_level(user, experiment, level, action="Testing")
    except (PermissionDenied, Unauthenticated):
        return False
    return True


def _allowed_by_sql(user, experiments, level: Level) -> list[int]:
    user.__dict__.pop("_labledger_levels", None)
    user.__dict__.pop("_labledger_role", None)
    params = level_guard_params(user, Experiment, level)
    if params is None:
        return []
    (found,) = execute_committed(_GUARD, {**params, "ids": [e.pk for e in experiments]})
    return found or []


@pytest.mark.parametrize("default_experiment", ["EDIT", "READ", "NO_PERMISSIONS"])
def test_the_sql_guard_allows_exactly_what_require_level_allows(settings, default_experiment):
    settings.DEFAULT_EXPERIMENT_PERMISSION = default_experiment
    experiments = [Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID), ExperimentFactory(name="guarded")]
    people = _personas()
    for grant in GRANTS:
        ExperimentPermission.objects.all().delete()
        if grant is not None:
            ExperimentPermission.objects.bulk_create(
                ExperimentPermission(user=user, experiment=experiment, level=int(grant))
                for user, experiment in itertools.product(people, experiments)
            )
        for default, level, user in itertools.product(Level, Level, people):
            settings.DEFAULT_PERMISSION = default.name
            expected = [e.pk for e in experiments if _allowed_by_python(user, e, level)]
            assert _allowed_by_sql(user, experiments, level) == expected, (
                f"{user.username}, grant {grant}, default {default.name}, needs {level.name}"
            )


def test_an_anonymous_caller_gets_no_guard_at_all():
    from django.contrib.auth.models import AnonymousUser

    assert level_guard_params(AnonymousUser(), Experiment, Level.READ) is None
    assert level_guard_params(None, Experiment, Level.READ) is None
