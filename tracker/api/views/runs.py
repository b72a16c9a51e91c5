"""Runs: search, create, read, update, delete and restore; log batches, tags and datasets."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.authentication import ChecksTokenInStatement
from accounts.callers import user_of
from config.api import ApiView, IdField, StrictCharField
from tracker import selectors, services
from tracker.api.serializers import (
    DatasetSerializer,
    EpochMillisField,
    KeyValueSerializer,
    LogBatchRequest,
    RunSerializer,
    tag_inputs,
)
from tracker.api.views.experiments import LIFECYCLE_FILTER
from tracker.models import RunStatus
from tracker.selectors import MAX_RESULTS_LIMIT


class RunPageSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    next_page_token = StrictCharField(
        allow_null=True, help_text="Pass as page_token for the next page; null on the last page."
    )
    param_keys = serializers.ListField(child=StrictCharField())
    metric_keys = serializers.ListField(child=StrictCharField())


class RunSearchFilterSerializer(serializers.Serializer):
    filter = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="MLflow search syntax, e.g. `params.lr = '0.01' and metrics.val_f1 > 0.8`.",
    )
    order_by = serializers.ListField(
        child=StrictCharField(),
        required=False,
        default=list,
        help_text="Repeatable: `metrics.val_f1 DESC`, `params.lr`, `attributes.start_time ASC`.",
    )
    page_token = StrictCharField(required=False, allow_blank=True)
    max_results = serializers.IntegerField(min_value=1, max_value=MAX_RESULTS_LIMIT, default=100)
    lifecycle = serializers.ChoiceField(choices=list(LIFECYCLE_FILTER), default="active")


def _search(experiment_ids: list, query: dict, user: Any) -> dict:
    page = selectors.search_runs(
        user=user,
        experiment_ids=experiment_ids,
        filter_string=query.get("filter") or None,
        order_by=query["order_by"],
        max_results=query["max_results"],
        page_token=query.get("page_token") or None,
        lifecycle=LIFECYCLE_FILTER[query["lifecycle"]],
        split_metric_sort=True,  # pages of large experiments sorted by a metric read the index
    )
    return RunPageSerializer(page).data


class RunListApi(ApiView):
    """One page of runs from one or more experiments, filtered and ordered by the search syntax."""

    error_responses = {404: "An experiment_id names no experiment."}

    class FilterSerializer(RunSearchFilterSerializer):
        experiment_id = serializers.ListField(child=StrictCharField(), min_length=1, help_text="Repeatable.")

    @extend_schema(parameters=[FilterSerializer], responses=RunPageSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(_search(query.validated_data["experiment_id"], query.validated_data, request.user))


class ExperimentRunListApi(ApiView):
    """One page of an experiment's runs, filtered and ordered by the search syntax."""

    @extend_schema(parameters=[RunSearchFilterSerializer], responses=RunPageSerializer)
    def get(self, request, experiment_id):
        query = RunSearchFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        selectors.get_experiment(user=request.user, experiment_id=experiment_id)  # one it may read
        return Response(_search([experiment_id], query.validated_data, request.user))


class RunCreateApi(ApiView):
    """Start a run in an experiment; it belongs to the caller."""

    error_responses = {404: "experiment_id names no experiment."}

    class InputSerializer(serializers.Serializer):
        experiment_id = IdField()
        run_name = StrictCharField(allow_blank=True, trim_whitespace=False, default="")
        start_time = EpochMillisField(required=False, help_text="Defaults to now.")
        status = StrictCharField(default=RunStatus.RUNNING)
        tags = KeyValueSerializer(many=True, default=list)
        parent_run_id = StrictCharField(required=False)
        code_commit = StrictCharField(allow_blank=True, default="")
        source = StrictCharField(allow_blank=True, default="")
        environment = serializers.DictField(default=dict)

    @extend_schema(request=InputSerializer, responses={201: RunSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        experiment = selectors.get_experiment(user=request.user, experiment_id=data["experiment_id"])
        parent = (
            selectors.get_run(user=request.user, run_id=data["parent_run_id"], field="parent_run_id")
            if "parent_run_id" in data
            else None
        )
        run = services.start_run(
            actor=request.user,
            experiment=experiment,
            name=data["run_name"],
            start_time=data.get("start_time"),
            status=data["status"],
            tags=tag_inputs(data["tags"]),
            parent=parent,
            code_commit=data["code_commit"],
            source=data["source"],
            environment=data["environment"],
        )
        detail = selectors.run_detail(run=run)
        return Response(RunSerializer(detail).data, status=status.HTTP_201_CREATED)


class RunGetApi(ApiView):
    """A run with its params, tags, latest metrics and datasets."""

    @extend_schema(responses=RunSerializer)
    def get(self, request, run_id):
        run = selectors.get_run(user=request.user, run_id=run_id)
        return Response(RunSerializer(selectors.run_detail(run=run)).data)


class RunUpdateApi(ApiView):
    """Rename a run or change its status; FINISHED, FAILED or KILLED ends it (now, unless end_time)."""

    class InputSerializer(serializers.Serializer):
        status = StrictCharField(required=False)
        end_time = EpochMillisField(required=False)
        run_name = StrictCharField(trim_whitespace=False, required=False)

        def validate(self, attrs):
            if not attrs:
                raise serializers.ValidationError("give a status, an end_time or a run_name")
            return attrs

    @extend_schema(request=InputSerializer, responses=RunSerializer)
    def patch(self, request, run_id):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = selectors.get_run(user=request.user, run_id=run_id)
        run = services.update_run(
            actor=request.user,
            run=run,
            status=data.get("status"),
            end_time=data.get("end_time"),
            name=data.get("run_name"),
        )
        return Response(RunSerializer(selectors.run_detail(run=run)).data)


class RunDeleteApi(ApiView):
    """Soft-delete a run: hidden from searches, kept with its evidence, restorable."""

    @extend_schema(responses={204: None})
    def delete(self, request, run_id):
        services.delete_run(actor=request.user, run=selectors.get_run(user=request.user, run_id=run_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunRestoreApi(ApiView):
    """Bring a deleted run back."""

    @extend_schema(request=None, responses=RunSerializer)
    def post(self, request, run_id):
        run = services.restore_run(
            actor=request.user, run=selectors.get_run(user=request.user, run_id=run_id)
        )
        return Response(RunSerializer(selectors.run_detail(run=run)).data)


class RunLogBatchApi(ChecksTokenInStatement, ApiView):
    """Log up to 1,000 metric points, 100 params and 100 tags to a run, all or nothing.

    Metric values are numbers or the strings "NaN", "Infinity" and "-Infinity". Sending the
    same batch again stores nothing new: `points_inserted` counts only points not already stored.
    A param already logged with a different value is a 409 that names both values.
    """

    class InputSerializer(serializers.Serializer):
        # Documents the body for the schema; requests are parsed by LogBatchRequest (hot path).
        class MetricSerializer(serializers.Serializer):
            key = StrictCharField()
            value = serializers.JSONField(help_text='A number, or "NaN", "Infinity", "-Infinity".')
            step = serializers.IntegerField(default=0)
            timestamp = serializers.IntegerField(required=False, help_text="ms; defaults to now.")

        metrics = MetricSerializer(many=True, required=False)
        params = KeyValueSerializer(many=True, required=False)
        tags = KeyValueSerializer(many=True, required=False)

    class OutputSerializer(serializers.Serializer):
        run_id = StrictCharField()
        points_received = serializers.IntegerField()
        points_inserted = serializers.IntegerField(help_text="Excludes points that were already stored.")
        params_logged = serializers.IntegerField()
        tags_set = serializers.IntegerField()
        metric_keys = serializers.ListField(child=StrictCharField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, run_id):
        batch = LogBatchRequest.parse(request.data)
        result = services.log_batch_to(
            actor=request.caller,  # a lone point's statement checks a bearer token itself
            run_id=run_id,
            find_run=lambda: selectors.get_run_ref(run_id=run_id, user=user_of(request.caller)),
            **batch.as_kwargs(),
        )
        # The answer is built by hand, not by OutputSerializer (which documents it): every
        # logging call comes here, and the serializer's field copies cost more than the rest.
        return Response(
            {
                "run_id": run_id,
                "points_received": result.points_received,
                "points_inserted": result.points_inserted,
                "params_logged": result.params_logged,
                "tags_set": result.tags_set,
                "metric_keys": list(result.metric_keys),
            }
        )


class RunTagDeleteApi(ApiView):
    """Remove a tag from a run (set tags with log-batch)."""

    @extend_schema(responses={204: None})
    def delete(self, request, run_id, key):
        services.delete_tag(
            actor=request.user, run=selectors.get_run(user=request.user, run_id=run_id), key=key
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunDatasetListApi(ApiView):
    """The datasets a run used."""

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(DatasetSerializer):
            schema = StrictCharField()
            profile = StrictCharField()

        datasets = ItemSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, run_id):
        detail = selectors.run_detail(run=selectors.get_run(user=request.user, run_id=run_id))
        return Response(self.OutputSerializer({"datasets": detail.datasets}).data)


class RunDatasetLogApi(ApiView):
    """Record the datasets a run used; the same (name, digest, context) again changes nothing."""

    class InputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            name = StrictCharField(trim_whitespace=False)
            digest = StrictCharField(trim_whitespace=False)
            version = StrictCharField(allow_blank=True, default="")
            source_type = StrictCharField(allow_blank=True, default="")
            source = StrictCharField(allow_blank=True, default="")
            context = StrictCharField(allow_blank=True, default="", help_text="training, validation…")
            schema = StrictCharField(allow_blank=True, default="")
            profile = StrictCharField(allow_blank=True, default="")

        datasets = ItemSerializer(many=True, allow_empty=False)

    @extend_schema(request=InputSerializer, responses=RunDatasetListApi.OutputSerializer)
    def post(self, request, run_id):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = selectors.get_run(user=request.user, run_id=run_id)
        specs = [services.DatasetSpec(**item) for item in body.validated_data["datasets"]]
        datasets = services.log_inputs(actor=request.user, run=run, datasets=specs)
        return Response(RunDatasetListApi.OutputSerializer({"datasets": datasets}).data)
