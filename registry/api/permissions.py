"""Registered-model permissions: who holds READ, EDIT, MANAGE or NO_PERMISSIONS on a model.

No level here approves a promotion: protected labels still move only through reviews. The
operations are accounts.api's, shared with experiments; these name the registered model's.
"""

from __future__ import annotations

from accounts.api import GrantDeleteApi, GrantGetApi, GrantListApi, GrantSetApi
from registry import selectors
from registry.permissions import MODEL_GRANTS


class ModelPermissionListApi(GrantListApi):
    """The grants on a registered model, by user name (anyone who may read it may see them)."""

    grants, find = MODEL_GRANTS, selectors.get_registered_model


class ModelPermissionGetApi(GrantGetApi):
    """One user's grant on a registered model; 404 when they hold none (they have the default)."""

    grants, find = MODEL_GRANTS, selectors.get_registered_model


class ModelPermissionSetApi(GrantSetApi):
    """Give a user a level on a registered model (create or change); needs MANAGE. Audited."""

    grants, find = MODEL_GRANTS, selectors.get_registered_model


class ModelPermissionDeleteApi(GrantDeleteApi):
    """Remove a user's grant: they fall back to the default; needs MANAGE. Audited."""

    grants, find = MODEL_GRANTS, selectors.get_registered_model
