"""Query-string and POST forms of the dashboard; errors render next to their fields."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TypeVar

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from registry.services import WEBHOOK_EVENTS

AnyForm = TypeVar("AnyForm", bound=forms.Form)

PAGE_SIZES = (25, 50, 100)
RUN_ID = re.compile(r"[0-9a-f]{32}")
MAX_SELECTED = 100  # the compare page draws at most 100 runs
COLUMN_SEARCH_LENGTH = 500  # as long as a key may be (ExperimentKey.key)


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
        label="Rows",
        required=False,
        choices=[(size, size) for size in PAGE_SIZES],
        coerce=int,
        empty_value=PAGE_SIZES[0],
    )
    group_metric = forms.CharField(required=False, max_length=250)
    total = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)  # from page 1
    hide_constant = forms.BooleanField(required=False)
    # The Columns picker's "Find a column", when submitted without the page's script.
    find_column = forms.CharField(label="Find a column", required=False, max_length=COLUMN_SEARCH_LENGTH)
    # The Group picker's "Find a param or metric", likewise.
    find_group = forms.CharField(
        label="Find a param or metric", required=False, max_length=COLUMN_SEARCH_LENGTH
    )

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


class ColumnSearchForm(forms.Form):
    """runs/columns.json's query: the text "Find a column" (or the Group picker's "Find") holds;
    the experiments and the kinds (`kind`, repeatable: all four without one) come apart."""

    q = forms.CharField(required=False, max_length=COLUMN_SEARCH_LENGTH)


class SavedViewForm(forms.Form):
    """Save the run table's current view (its query string) under a name, for the whole team."""

    name = forms.CharField(
        max_length=200, widget=forms.TextInput(attrs={"placeholder": "View name", "autocomplete": "off"})
    )
    query = forms.CharField(required=False, max_length=20_000, widget=forms.HiddenInput)


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. laptop training scripts", "autocomplete": "off"}),
    )


class HolderAtForm(forms.Form):
    """A moment to ask "which version held each alias then?" (read in TIME_ZONE, UTC, as pages show)."""

    at = forms.DateTimeField(
        label="At (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"),
    )


class LabelTargetForm(forms.Form):
    """A form whose `target` lists the labels the model's policy protects ("alias:production")."""

    target = forms.ChoiceField(label="Promote to")

    def __init__(self, *args, targets: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        target = self.fields["target"]
        assert isinstance(target, forms.ChoiceField)
        target.choices = targets


class PromotionRequestForm(LabelTargetForm):
    """Ask reviewers to move a protected alias (or the Production stage) to this version."""

    justification = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "Why this version should replace the current one"}
        ),
    )


class ReviewForm(forms.Form):
    """A reviewer's decision; the service insists on a comment for a rejection."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class PolicyForm(forms.Form):
    """A model's promotion policy as an admin edits it: lists are typed as text, one item a line."""

    protected_aliases = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Comma-separated alias names; protecting production protects the Production stage too.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    required_approvals = forms.IntegerField(min_value=1, max_value=20)
    review_role = forms.ChoiceField(choices=[("reviewer", "reviewer role"), ("admin", "admins only")])
    key_metrics = forms.CharField(
        required=False,
        max_length=5000,
        help_text='One metric a line: its key, then "max" (higher is better) or "min".',
        widget=forms.Textarea(
            attrs={"rows": 3, "spellcheck": "false", "placeholder": "val_f1 max\nloss min"}
        ),
    )

    def clean_protected_aliases(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["protected_aliases"].split(",") if name.strip()]

    def clean_key_metrics(self) -> list[dict[str, str]]:
        metrics = []
        for number, line in enumerate(self.cleaned_data["key_metrics"].splitlines(), start=1):
            if not line.strip():
                continue
            key, _, goal = line.strip().rpartition(" ")
            if not key.strip() or goal not in ("max", "min"):
                raise forms.ValidationError(
                    f'line {number}: write the metric key, a space, then "max" or "min"'
                )
            metrics.append({"key": key.strip(), "goal": goal})
        return metrics


class ForceMoveForm(LabelTargetForm):
    """An admin's break-glass move of a protected label, without reviews; the reason is recorded."""

    reason = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why this cannot wait for reviews"}),
    )


class GrantForm(forms.Form):
    """Give a user a permission level on an experiment or a registered model, or remove it."""

    username = forms.CharField(max_length=150, label="User name")
    permission = forms.ChoiceField(
        choices=[(name, name) for name in ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")], required=False
    )
    remove = forms.BooleanField(required=False, widget=forms.HiddenInput)


_LAST_LISTED_PAGE = 2**31  # far past any list, and its OFFSET fits in 64 bits


class ListForm(forms.Form):
    """A list page's state in the URL: the text searched for, the order and the page number.
    `orders` maps each order the list's selector knows to its label; the first is the default."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=250,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", "spellcheck": "false"}),
    )
    sort = forms.ChoiceField(label="Order", required=False)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, orders: dict[str, str], placeholder: str, **kwargs):
        super().__init__(*args, **kwargs)
        sort = self.fields["sort"]
        assert isinstance(sort, forms.ChoiceField)
        sort.choices = list(orders.items())
        self.default_order = next(iter(orders))
        self.fields["q"].widget.attrs["placeholder"] = placeholder

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or self.default_order

    def clean_page(self) -> int | None:
        # A page past the end shows the last one; a number past any list's end is cut down
        # first, since its OFFSET would not fit the database's 64-bit integer.
        page = self.cleaned_data["page"]
        return None if page is None else min(page, _LAST_LISTED_PAGE)


class WebhookForm(forms.Form):
    """A webhook as an admin adds or edits it; the model is typed by name (blank: every model)."""

    name = forms.CharField(max_length=100, help_text="Shown in this list, e.g. the channel it posts to.")
    url = forms.CharField(
        label="Payload URL",
        max_length=2000,
        widget=forms.URLInput(
            attrs={"placeholder": "https://ci.example.org/hooks/lab-ledger", "spellcheck": "false"}
        ),
    )
    model = forms.CharField(
        label="Registered model",
        required=False,
        max_length=250,
        help_text="Only this model's events; leave empty for every model.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    events = forms.MultipleChoiceField(
        choices=list(WEBHOOK_EVENTS.items()), widget=forms.CheckboxSelectMultiple
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)


def with_defaults_for(form: AnyForm, fields: Collection[str], request: HttpRequest) -> AnyForm:
    """The form again with each of `fields` that holds a bad value back at its default, and a
    warning naming it: a display choice (a page size, an x-axis) from an older link or a
    hand-edited URL should not blank the whole page. Other errors stay errors."""
    bad = [name for name in form.errors if name in fields]
    if not bad:
        return form
    data = form.data.copy()
    for name in bad:
        error = form.errors[name][0].rstrip(".")
        messages.warning(request, f"{form[name].label}: {error}. Showing its default instead.")
        data.pop(name, None)
    return type(form)(data)
