"""The accounts app's native API: `GET /api/v1/me`, and the permission operations that every
object kind with grants (experiments, registered models) serves, on the base layer in config/api.py.

Each kind's URLs get four small subclasses of the `Grant*Api` views below, which name the kind's
services (`grants`, an accounts.permissions.GrantKind) and how to find the object from the URL
(`find`, a selector that checks READ): one implementation, parameterised by kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from config.api import ApiView, StrictCharField

from .permissions import LEVEL_NAMES, GrantKind, get_grantee, parse_level
from .roles import Role, role_of


class MeApi(ApiView):
    """The authenticated user and the role the server gives them."""

    class OutputSerializer(serializers.Serializer):
        username = StrictCharField()
        email = StrictCharField()
        role = serializers.ChoiceField(choices=[r.group_name for r in Role if r is not Role.NONE])
        is_superuser = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        user = request.user
        data = {
            "username": user.username,
            "email": user.email,
            "role": role_of(user).group_name,
            "is_superuser": user.is_superuser,
        }
        return Response(self.OutputSerializer(data).data)


# Permission grants ----------------------------------------------------------------------------


class GrantSerializer(serializers.Serializer):
    username = StrictCharField(source="user.username")
    permission = StrictCharField(source="level_name")
    updated_at = serializers.DateTimeField()


class GrantListSerializer(serializers.Serializer):
    permissions = GrantSerializer(many=True)


class GrantInputSerializer(serializers.Serializer):
    permission = serializers.ChoiceField(choices=list(LEVEL_NAMES))


class GrantApi(ApiView):
    """Base of the permission operations on one kind of object (not routed itself)."""

    grants: ClassVar[GrantKind]
    # The kind's selector, called with the user and the URL's keyword arguments (the username
    # aside); it refuses a user who may not read the object.
    find: ClassVar[Callable[..., Any]]

    def target(self, request: Any, path: dict[str, Any]) -> Any:
        return type(self).find(user=request.user, **path)


class GrantListApi(GrantApi):
    @extend_schema(responses=GrantListSerializer)
    def get(self, request, **path):
        grants = self.grants.list(user=request.user, obj=self.target(request, path))
        return Response(GrantListSerializer({"permissions": grants}).data)


class GrantGetApi(GrantApi):
    @extend_schema(responses=GrantSerializer)
    def get(self, request, username, **path):
        obj = self.target(request, path)
        grant = self.grants.get(user=request.user, obj=obj, grantee=get_grantee(username=username))
        return Response(GrantSerializer(grant).data)


class GrantSetApi(GrantApi):
    @extend_schema(request=GrantInputSerializer, responses=GrantSerializer)
    def put(self, request, username, **path):
        body = GrantInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        level = parse_level(body.validated_data["permission"])
        obj = self.target(request, path)
        grant = self.grants.set(
            actor=request.user, obj=obj, grantee=get_grantee(username=username), level=level
        )
        return Response(GrantSerializer(grant).data)


class GrantDeleteApi(GrantApi):
    @extend_schema(responses={204: None})
    def delete(self, request, username, **path):
        obj = self.target(request, path)
        self.grants.delete(actor=request.user, obj=obj, grantee=get_grantee(username=username))
        return Response(status=status.HTTP_204_NO_CONTENT)
