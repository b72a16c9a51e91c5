"""Experiments: list, create, read, rename or describe, delete and restore."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from config.api import ApiView, StrictCharField
from tracker import selectors, services
from tracker.api.serializers import ExperimentSerializer, KeyValueSerializer, tag_inputs
from tracker.models import Lifecycle

LIFECYCLE_FILTER = {"active": Lifecycle.ACTIVE, "deleted": Lifecycle.DELETED, "all": None}


class ExperimentListApi(ApiView):
    """Experiments with their run count and last activity, by name."""

    class FilterSerializer(serializers.Serializer):
        lifecycle = serializers.ChoiceField(choices=list(LIFECYCLE_FILTER), default="active")

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(ExperimentSerializer):
            run_count = serializers.IntegerField()
            last_activity = serializers.DateTimeField(allow_null=True)

        experiments = ItemSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        experiments = selectors.list_experiments(
            user=request.user, lifecycle=LIFECYCLE_FILTER[filters.validated_data["lifecycle"]]
        )
        return Response(self.OutputSerializer({"experiments": experiments}).data)


class ExperimentCreateApi(ApiView):
    """Create an experiment; its name must be unused, even by a deleted experiment."""

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(trim_whitespace=False)
        description = StrictCharField(allow_blank=True, trim_whitespace=False, default="")
        artifact_location = StrictCharField(allow_blank=True, max_length=1000, default="")
        tags = KeyValueSerializer(many=True, default=list)

    @extend_schema(request=InputSerializer, responses={201: ExperimentSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        experiment = services.create_experiment(
            actor=request.user,
            name=data["name"],
            description=data["description"],
            artifact_location=data["artifact_location"],
            tags=tag_inputs(data["tags"]),
        )
        return Response(ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentGetApi(ApiView):
    """One experiment, deleted or not."""

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request, experiment_id):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        return Response(ExperimentSerializer(experiment).data)


class ExperimentUpdateApi(ApiView):
    """Rename an experiment or change its description (or both)."""

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(trim_whitespace=False, required=False)
        description = StrictCharField(allow_blank=True, trim_whitespace=False, required=False)

        def validate(self, attrs):
            if not attrs:
                raise serializers.ValidationError("give a name, a description or both")
            return attrs

    @extend_schema(request=InputSerializer, responses=ExperimentSerializer)
    def patch(self, request, experiment_id):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        experiment = services.update_experiment(
            actor=request.user,
            experiment=experiment,
            name=data.get("name"),
            description=data.get("description"),
        )
        return Response(ExperimentSerializer(experiment).data)


class ExperimentDeleteApi(ApiView):
    """Soft-delete an experiment: it and its runs leave the lists but can be restored."""

    @extend_schema(responses={204: None})
    def delete(self, request, experiment_id):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        services.delete_experiment(actor=request.user, experiment=experiment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExperimentRestoreApi(ApiView):
    """Bring a deleted experiment back."""

    @extend_schema(request=None, responses=ExperimentSerializer)
    def post(self, request, experiment_id):
        experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
        experiment = services.restore_experiment(actor=request.user, experiment=experiment)
        return Response(ExperimentSerializer(experiment).data)
