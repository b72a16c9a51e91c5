"""Experiment permissions: who holds READ, EDIT, MANAGE or NO_PERMISSIONS on an experiment.

The operations are accounts.api's, shared with registered models; these name the experiment's.
"""

from __future__ import annotations

from accounts.api import GrantDeleteApi, GrantGetApi, GrantListApi, GrantSetApi
from tracker import selectors
from tracker.permissions import EXPERIMENT_GRANTS


class ExperimentPermissionListApi(GrantListApi):
    """The grants on an experiment, by user name (anyone who may read it may see them)."""

    grants, find = EXPERIMENT_GRANTS, selectors.get_experiment


class ExperimentPermissionGetApi(GrantGetApi):
    """One user's grant on an experiment; 404 when they hold none (they have the default)."""

    grants, find = EXPERIMENT_GRANTS, selectors.get_experiment


class ExperimentPermissionSetApi(GrantSetApi):
    """Give a user a level on an experiment (create or change); needs MANAGE. Audited."""

    grants, find = EXPERIMENT_GRANTS, selectors.get_experiment


class ExperimentPermissionDeleteApi(GrantDeleteApi):
    """Remove a user's grant: they fall back to the default; needs MANAGE. Audited."""

    grants, find = EXPERIMENT_GRANTS, selectors.get_experiment
