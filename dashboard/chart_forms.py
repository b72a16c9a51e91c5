"""Query-string forms of the chart-data endpoint and the compare page; the whole view state
lives in the URL (repeatable `runs` and `keys`), so a link reproduces it."""

from __future__ import annotations

import math
import re

from django import forms

from tracker.selectors import MAX_CHART_KEYS, MAX_CHART_POINTS, MAX_CHART_RUNS, MIN_CHART_POINTS

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
X_AXES = (("step", "Step"), ("wall", "Wall time"), ("relative", "Time since start"))
STEP_BOUND = 9.2e18  # steps are int64; a window beyond them means "to the end"


class ListField(forms.Field):
    """A repeatable query parameter (`?runs=a&runs=b`), de-duplicated, order kept."""

    widget = forms.MultipleHiddenInput

    def __init__(
        self, *, max_items: int, item_max_length: int = 250, pattern: re.Pattern | None = None, **kwargs
    ):
        self.max_items, self.item_max_length, self.pattern = max_items, item_max_length, pattern
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:
        items = [item.strip() for item in (value or []) if isinstance(item, str) and item.strip()]
        return list(dict.fromkeys(items))

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > self.max_items:
            raise forms.ValidationError(f"at most {self.max_items} values, got {len(value)}")
        for item in value:
            if len(item) > self.item_max_length:
                raise forms.ValidationError(
                    f"{item[:40]!r}… is longer than {self.item_max_length} characters"
                )
            if self.pattern is not None and not self.pattern.match(item):
                raise forms.ValidationError(f"{item[:40]!r} is not a 32-character hexadecimal run id")


class StepField(forms.FloatField):
    def validate(self, value) -> None:
        super().validate(value)
        if value is not None and not math.isfinite(value):
            raise forms.ValidationError("Enter a number.")


class ChartQueryForm(forms.Form):
    """Which series to read: runs and keys, the chart's width in points, a zoom window, new points only."""

    runs = ListField(max_items=MAX_CHART_RUNS, pattern=RUN_ID)
    keys = ListField(max_items=MAX_CHART_KEYS)
    max_points = forms.IntegerField(required=False, min_value=MIN_CHART_POINTS, max_value=MAX_CHART_POINTS)
    x_min = StepField(required=False, min_value=-STEP_BOUND, max_value=STEP_BOUND)
    x_max = StepField(required=False, min_value=-STEP_BOUND, max_value=STEP_BOUND)
    after_step = forms.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    group_by = forms.CharField(required=False, max_length=250)

    def clean(self):
        cleaned = super().clean()
        lo, hi = cleaned.get("x_min"), cleaned.get("x_max")
        if (lo is None) != (hi is None) and not self.errors:
            raise forms.ValidationError("x_min and x_max must be given together")
        if lo is not None and hi is not None and lo > hi:
            raise forms.ValidationError("x_min must not be greater than x_max")
        return cleaned

    @property
    def x_range(self) -> tuple[float, float] | None:
        lo, hi = self.cleaned_data.get("x_min"), self.cleaned_data.get("x_max")
        return None if lo is None or hi is None else (lo, hi)


class ImportanceQueryForm(forms.Form):
    """The runs whose params are weighed, and the metric they are weighed against."""

    runs = ListField(max_items=MAX_CHART_RUNS, pattern=RUN_ID)
    metric = forms.CharField(max_length=250)


class CompareForm(forms.Form):
    """The compare page's state: runs, chosen metric keys, x-axis, smoothing, log scale, grouping,
    the parallel-coordinates axes, the scatter's axes and the parameter importance's metric."""

    runs = ListField(max_items=MAX_CHART_RUNS, pattern=RUN_ID)
    keys = ListField(max_items=MAX_CHART_KEYS, required=False)
    x = forms.ChoiceField(choices=X_AXES, required=False)
    smoothing = forms.FloatField(required=False, min_value=0, max_value=0.99)
    log = forms.BooleanField(required=False)
    group_by = forms.CharField(required=False, max_length=250)
    pc = ListField(max_items=12, required=False)
    pc_metric = forms.CharField(required=False, max_length=250)
    sx = forms.CharField(required=False, max_length=260)
    sy = forms.CharField(required=False, max_length=250)
    im = forms.CharField(required=False, max_length=250)  # the parameter importance's metric
