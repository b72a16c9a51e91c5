"""Metric series of a run: latest values, full history (paged) and downsampled series for charts.

Metric keys may contain '/', so they sit in the URL as a path; values may be NaN or ±Infinity,
which the JSON renderer spells "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

import dataclasses
import math

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.api import ApiView, StrictCharField
from tracker import selectors
from tracker.api.serializers import MetricNumberField, MetricSummarySerializer
from tracker.selectors import DEFAULT_MAX_POINTS, MAX_RESULTS_LIMIT

# Steps are 64-bit integers; a zoom window beyond them would overflow the database's integers.
_STEP_BOUND = 9.2e18


class RunMetricListApi(ApiView):
    """Every metric a run logged, with its newest value, min, max and point count."""

    class OutputSerializer(serializers.Serializer):
        metrics = MetricSummarySerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, run_id):
        detail = selectors.run_detail(run=selectors.get_run(user=request.user, run_id=run_id))
        return Response(self.OutputSerializer({"metrics": list(detail.metrics.values())}).data)


class MetricHistoryApi(ApiView):
    """Every point of one metric in (step, timestamp) order, paged; an unknown key has no points."""

    class FilterSerializer(serializers.Serializer):
        max_results = serializers.IntegerField(min_value=1, max_value=MAX_RESULTS_LIMIT, default=25_000)
        page_token = StrictCharField(required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        class PointSerializer(serializers.Serializer):
            step = serializers.IntegerField()
            timestamp = serializers.IntegerField()
            value = MetricNumberField()

        key = StrictCharField()
        points = PointSerializer(many=True)
        next_page_token = StrictCharField(allow_null=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, run_id, key):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run = selectors.get_run(user=request.user, run_id=run_id)
        history = selectors.metric_history(
            run=run,
            key=key,
            max_results=query.validated_data["max_results"],
            page_token=query.validated_data.get("page_token") or None,
        )
        # Up to 50,000 points: plain dicts here, PointSerializer documents them.
        points = [{"step": s, "timestamp": t, "value": v} for s, t, v in history.points]
        return Response({"key": history.key, "points": points, "next_page_token": history.next_page_token})


class MetricSeriesApi(ApiView):
    """One metric as chart-ready arrays, thinned on the server to about max_points.

    Downsampling (MinMaxLTTB) keeps the curve's shape and its first and last points;
    `downsampled` says whether points were dropped and `total_points` how many there were.
    `x_min`/`x_max` read only a window of steps, so a zoomed chart can fetch finer data.
    """

    class FilterSerializer(serializers.Serializer):
        max_points = serializers.IntegerField(min_value=10, max_value=20_000, default=DEFAULT_MAX_POINTS)
        x_min = serializers.FloatField(required=False, min_value=-_STEP_BOUND, max_value=_STEP_BOUND)
        x_max = serializers.FloatField(required=False, min_value=-_STEP_BOUND, max_value=_STEP_BOUND)

        def validate(self, attrs):
            if attrs.get("x_min", -math.inf) > attrs.get("x_max", math.inf):
                raise serializers.ValidationError({"x_max": "must not be less than x_min"})
            return attrs

    class OutputSerializer(serializers.Serializer):
        run_id = StrictCharField()
        key = StrictCharField()
        steps = serializers.ListField(child=serializers.IntegerField())
        values = serializers.ListField(child=MetricNumberField())
        total_points = serializers.IntegerField(help_text="Points in the window before downsampling.")
        downsampled = serializers.BooleanField()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, run_id, key):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window = query.validated_data
        x_range = None
        if "x_min" in window or "x_max" in window:
            x_range = (window.get("x_min", -_STEP_BOUND), window.get("x_max", _STEP_BOUND))
        series = selectors.metric_series(
            run=selectors.get_run(user=request.user, run_id=run_id),
            key=key,
            max_points=window["max_points"],
            x_range=x_range,
        )
        return Response(
            {
                "run_id": series.run_id,
                "key": series.key,
                "steps": series.steps,
                # The selector marks NaN as None (a chart gap); the API says "NaN" like everywhere else.
                "values": [math.nan if v is None else v for v in series.values],
                "total_points": series.total_points,
                "downsampled": series.downsampled,
            }
        )


class ChartSeriesApi(ApiView):
    """Many runs' metrics at once, each series reduced in the database to about max_points points.

    Per step bucket the lowest and highest finite points are kept (with their steps), and the
    window's first and last points, then MinMaxLTTB thins what is left, so spikes stay visible.
    Series come back in run-then-key order; `after_step` returns only newer points (live charts).
    """

    error_responses = {404: "A run id names no run."}

    class FilterSerializer(serializers.Serializer):
        run_ids = serializers.ListField(
            child=StrictCharField(max_length=32),
            min_length=1,
            max_length=selectors.MAX_CHART_RUNS,
            help_text="Repeatable.",
        )
        keys = serializers.ListField(
            child=StrictCharField(max_length=250),
            min_length=1,
            max_length=selectors.MAX_CHART_KEYS,
            help_text="Repeatable metric keys.",
        )
        max_points = serializers.IntegerField(
            min_value=selectors.MIN_CHART_POINTS,
            max_value=selectors.MAX_CHART_POINTS,
            default=DEFAULT_MAX_POINTS,
        )
        x_min = serializers.FloatField(required=False, min_value=-_STEP_BOUND, max_value=_STEP_BOUND)
        x_max = serializers.FloatField(required=False, min_value=-_STEP_BOUND, max_value=_STEP_BOUND)
        after_step = serializers.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)

        def validate(self, attrs):
            if attrs.get("x_min", -math.inf) > attrs.get("x_max", math.inf):
                raise serializers.ValidationError({"x_max": "must not be less than x_min"})
            return attrs

    class OutputSerializer(serializers.Serializer):
        class SeriesSerializer(serializers.Serializer):
            run_id = StrictCharField()
            key = StrictCharField()
            steps = serializers.ListField(child=serializers.IntegerField())
            timestamps = serializers.ListField(child=serializers.IntegerField())
            values = serializers.ListField(child=MetricNumberField())
            total_points = serializers.IntegerField(help_text="Points in the window before downsampling.")
            downsampled = serializers.BooleanField()

        series = SeriesSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window = query.validated_data
        x_range = None
        if "x_min" in window or "x_max" in window:
            x_range = (window.get("x_min", -_STEP_BOUND), window.get("x_max", _STEP_BOUND))
        series = selectors.chart_series(
            runs=selectors.get_runs(run_ids=window["run_ids"], user=request.user),
            keys=list(dict.fromkeys(window["keys"])),
            max_points=window["max_points"],
            x_range=x_range,
            after_step=window.get("after_step"),
        )
        # Up to 100 runs by 20 keys of 20,000 points: plain dicts here, SeriesSerializer documents them.
        return Response({"series": [dataclasses.asdict(item) for item in series]})
