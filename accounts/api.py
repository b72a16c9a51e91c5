"""`GET /api/v1/me`: the accounts app's one native API view, on the base layer in config/api.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.api import ApiView

from .roles import Role, role_of


class MeApi(ApiView):
    """The authenticated user and the role the server gives them."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        email = serializers.CharField()
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
