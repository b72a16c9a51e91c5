"""Experiment permissions: who holds READ, EDIT, MANAGE or NO_PERMISSIONS on an experiment.

Registered-model permissions (registry.api.views) reuse the serializers here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.permissions import LEVEL_NAMES, get_grantee, parse_level
from config.api import ApiView
from tracker import permissions, selectors


class GrantSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    permission = serializers.CharField(source="level_name")
    updated_at = serializers.DateTimeField()


class GrantListSerializer(serializers.Serializer):
    permissions = GrantSerializer(many=True)


class GrantInputSerializer(serializers.Serializer):
    permission = serializers.ChoiceField(choices=list(LEVEL_NAMES))


def grant_level(request: Any) -> Any:
    body = GrantInputSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return parse_level(body.validated_data["permission"])


class ExperimentPermissionListApi(ApiView):
    """The grants on an experiment, by user name (anyone who may read it may see them)."""

    @extend_schema(responses=GrantListSerializer)
    def get(self, request, experiment_id):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        grants = permissions.list_experiment_permissions(user=request.user, experiment=experiment)
        return Response(GrantListSerializer({"permissions": grants}).data)


class ExperimentPermissionGetApi(ApiView):
    """One user's grant on an experiment; 404 when they hold none (they have the default)."""

    @extend_schema(responses=GrantSerializer)
    def get(self, request, experiment_id, username):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        grant = permissions.get_experiment_permission(
            user=request.user, experiment=experiment, grantee=get_grantee(username=username)
        )
        return Response(GrantSerializer(grant).data)


class ExperimentPermissionSetApi(ApiView):
    """Give a user a level on an experiment (create or change); needs MANAGE. Audited."""

    @extend_schema(request=GrantInputSerializer, responses=GrantSerializer)
    def put(self, request, experiment_id, username):
        level = grant_level(request)
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        grant = permissions.set_experiment_permission(
            actor=request.user, experiment=experiment, grantee=get_grantee(username=username), level=level
        )
        return Response(GrantSerializer(grant).data)


class ExperimentPermissionDeleteApi(ApiView):
    """Remove a user's grant: they fall back to the default; needs MANAGE. Audited."""

    @extend_schema(responses={204: None})
    def delete(self, request, experiment_id, username):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        permissions.delete_experiment_permission(
            actor=request.user, experiment=experiment, grantee=get_grantee(username=username)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
