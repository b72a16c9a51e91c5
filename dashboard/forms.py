"""Query-string and POST forms of the dashboard; errors render next to their fields."""

from __future__ import annotations

import re

from django import forms

PAGE_SIZES = (25, 50, 100)
RUN_ID = re.compile(r"[0-9a-f]{32}")
MAX_SELECTED = 100  # the compare page draws at most 100 runs
DEFAULT_MAX_POINTS = 1200


class RunTableForm(forms.Form):
    """The run table's state: everything lives in the URL so a view can be shared."""

    filter = forms.CharField(
        required=False,
        max_length=10_000,
        widget=forms.TextInput(
            attrs={
                "placeholder": "e.g. params.lr = '0.001' and metrics.val_f1 > 0.85",
                "spellcheck": "false",
                "autocomplete": "off",
                "class": "filter-input",
            }
        ),
    )
    page_size = forms.TypedChoiceField(
        required=False,
        choices=[(size, size) for size in PAGE_SIZES],
        coerce=int,
        empty_value=PAGE_SIZES[0],
    )
    group_metric = forms.CharField(required=False, max_length=250)
    total = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)  # from page 1
    hide_constant = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        data = self.data
        cleaned["order_by"] = [item for item in data.getlist("order_by") if item.strip()]
        cleaned["columns"] = data.getlist("columns") if "columns_set" in data else None
        cleaned["group_by"] = list(dict.fromkeys(key for key in data.getlist("group_by") if key.strip()))
        cleaned["expand"] = data.getlist("expand")
        cleaned["page_token"] = data.get("page_token") or None
        selected = list(dict.fromkeys(data.getlist("selected")))
        for run_id in selected:
            if not RUN_ID.fullmatch(run_id):
                self.add_error(None, f"selected: {run_id[:40]!r} is not a run id (32 hexadecimal digits)")
        if len(selected) > MAX_SELECTED:
            self.add_error(None, f"selected: at most {MAX_SELECTED} runs at once, not {len(selected)}")
        cleaned["selected"] = [run_id for run_id in selected if RUN_ID.fullmatch(run_id)][:MAX_SELECTED]
        return cleaned


class SavedViewForm(forms.Form):
    """Save the run table's current view (its query string) under a name, for the whole team."""

    name = forms.CharField(
        max_length=200, widget=forms.TextInput(attrs={"placeholder": "View name", "autocomplete": "off"})
    )
    query = forms.CharField(required=False, max_length=20_000, widget=forms.HiddenInput)


class SeriesQueryForm(forms.Form):
    max_points = forms.IntegerField(required=False, min_value=10, max_value=20_000)
    x_min = forms.FloatField(required=False)
    x_max = forms.FloatField(required=False)

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


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. laptop training scripts", "autocomplete": "off"}),
    )
