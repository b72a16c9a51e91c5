"""Registered-model permissions: who holds READ, EDIT, MANAGE or NO_PERMISSIONS on a model.

No level here approves a promotion: protected labels still move only through reviews.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.permissions import get_grantee
from config.api import ApiView
from registry import permissions, selectors
from tracker.api.views.permissions import (
    GrantInputSerializer,
    GrantListSerializer,
    GrantSerializer,
    grant_level,
)


class ModelPermissionListApi(ApiView):
    """The grants on a registered model, by user name (anyone who may read it may see them)."""

    @extend_schema(responses=GrantListSerializer)
    def get(self, request, name):
        model = selectors.get_registered_model(user=request.user, name=name)
        grants = permissions.list_model_permissions(user=request.user, model=model)
        return Response(GrantListSerializer({"permissions": grants}).data)


class ModelPermissionGetApi(ApiView):
    """One user's grant on a registered model; 404 when they hold none (they have the default)."""

    @extend_schema(responses=GrantSerializer)
    def get(self, request, name, username):
        model = selectors.get_registered_model(user=request.user, name=name)
        grant = permissions.get_model_permission(
            user=request.user, model=model, grantee=get_grantee(username=username)
        )
        return Response(GrantSerializer(grant).data)


class ModelPermissionSetApi(ApiView):
    """Give a user a level on a registered model (create or change); needs MANAGE. Audited."""

    @extend_schema(request=GrantInputSerializer, responses=GrantSerializer)
    def put(self, request, name, username):
        level = grant_level(request)
        model = selectors.get_registered_model(user=request.user, name=name)
        grant = permissions.set_model_permission(
            actor=request.user, model=model, grantee=get_grantee(username=username), level=level
        )
        return Response(GrantSerializer(grant).data)


class ModelPermissionDeleteApi(ApiView):
    """Remove a user's grant: they fall back to the default; needs MANAGE. Audited."""

    @extend_schema(responses={204: None})
    def delete(self, request, name, username):
        model = selectors.get_registered_model(user=request.user, name=name)
        permissions.delete_model_permission(
            actor=request.user, model=model, grantee=get_grantee(username=username)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
