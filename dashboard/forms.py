"""Query-string and POST forms of the dashboard; errors render next to their fields."""

from __future__ import annotations

from django import forms

PAGE_SIZES = (25, 50, 100)
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
