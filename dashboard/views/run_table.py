"""The run table: filter, sort, choose columns, group, select and page through the runs of one
or several experiments; export the view as CSV; save it under a name for the team."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from config.exceptions import ApplicationError, InvalidInput, NotFound, PermissionDenied
from tracker import search, selectors, services
from tracker.models import Experiment
from tracker.permissions import (
    Level,
    can_change_saved_view,
    experiment_level,
    require_experiment_permission,
    require_experiments_readable,
)
from tracker.selectors.runs import COUNT_LIMIT, count_matching_runs

from ..access import viewer_required
from ..column_picker import PICKER_KEYS_SHOWN, ColumnPicker, column_picker
from ..forms import PAGE_SIZES, ColumnSearchForm, RunTableForm, SavedViewForm, with_defaults_for
from ..group_picker import GROUP_KEY_KINDS, GroupPicker, group_picker
from ..tables import (
    ColumnChoice,
    RunTable,
    cell_text,
    choose_columns,
    constant_columns,
    default_columns_note,
    number_cell,
)
from .audit import history_block

CSV_CHUNK = 1000  # runs read per keyset page while a CSV streams


@require_GET
@viewer_required
def run_table(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
    require_experiment_permission(request.user, experiment, Level.READ, action="Reading an experiment")
    return _render_table(request, [experiment])


@require_GET
@viewer_required
def runs_of_experiments(request: HttpRequest) -> HttpResponse:
    """Runs of several experiments in one table (`?experiments=1&experiments=2`)."""
    try:
        experiments = _experiments_named(request.GET, request.user)
    except InvalidInput as error:
        return render(request, "dashboard/run_table.html", {"fatal_error": str(error)}, status=400)
    return _render_table(request, experiments)


def _experiments_named(query: QueryDict, user: Any) -> list[Experiment]:
    ids = [item for item in query.getlist("experiments") if item.strip()]
    if not ids:
        raise InvalidInput("choose at least one experiment", field="experiments")
    experiments = selectors.get_experiments(experiment_ids=ids)
    require_experiments_readable(user, experiments, action="Reading an experiment")
    return experiments


@dataclass
class TableResult:
    """What the page shows below the filter: one page of runs, or groups; with their notes."""

    key_sets: selectors.KeySets | None = None
    total: int | None = None  # matching runs (capped at COUNT_LIMIT + 1 in the run view)
    page: selectors.RunPage | None = None
    groups: selectors.GroupPage | None = None
    expanded: dict[int, RunTable] = field(default_factory=dict)
    filter_error: ApplicationError | None = None
    counted_filter: str | None = None  # the filter the total counts, when not the form's
    unknown_keys: list[str] = field(default_factory=list)


def _search(experiments: Sequence[Experiment], data: dict[str, Any], *, filter_string: str | None, user: Any):
    return selectors.search_runs(
        user=user,
        experiment_ids=experiments,
        filter_string=filter_string,
        order_by=data["order_by"],
        max_results=data["page_size"],
        page_token=data["page_token"],
        split_metric_sort=True,
    )


def _run_page(
    experiments: Sequence[Experiment], data: dict[str, Any], result: TableResult, user: Any
) -> None:
    """The page of runs; a filter error keeps the table (unfiltered) and the picker on screen."""
    filter_string = data["filter"] or None
    try:
        result.page = _search(experiments, data, filter_string=filter_string, user=user)
    except InvalidInput as error:
        if error.field != "filter":
            raise
        result.filter_error, result.counted_filter = error, ""
        result.page = _search(experiments, {**data, "page_token": None}, filter_string=None, user=user)
        result.key_sets, result.total = result.page.key_sets, result.page.total
        return
    result.key_sets = result.page.key_sets
    # Later pages carry the first page's total in their links; otherwise the page asks for it
    # (run_count) once it is on screen: a selective filter's count costs more than the page.
    result.total = result.page.total if result.page.total is not None else data.get("total")
    result.unknown_keys = selectors.unknown_filter_keys(filter_string=filter_string, key_sets=result.key_sets)


def _render_table(request: HttpRequest, experiments: list[Experiment]) -> HttpResponse:
    form = with_defaults_for(RunTableForm(request.GET), ("page_size", "group_metric"), request)
    result = TableResult()
    several = len(experiments) > 1
    data: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["group_by"]:
                _groups(request, experiments, data, result)
            else:
                _run_page(experiments, data, result, request.user)
        except ApplicationError as error:
            form.add_error(None, str(error))
    page = result.page
    key_sets = result.key_sets or selectors.experiment_key_sets(experiment_ids=[e.pk for e in experiments])
    choices = choose_columns(key_sets=key_sets, chosen=data.get("columns"), several_experiments=several)
    # The picker comes before hide_constant unchecks columns: one hidden for being the same in
    # every run is still chosen, and pressing "Show these columns" must not drop it.
    keys_url = _keys_url(experiments)
    picker = _column_picker(experiments, choices, data.get("find_column", ""), keys_url)
    hidden = set()
    if page is not None and data.get("hide_constant"):
        hidden = constant_columns(page.runs, choices)
        choices = [ColumnChoice(c.kind, c.key, c.shown and c.value not in hidden) for c in choices]
    table = None
    if page is not None and not data.get("group_by"):
        table = RunTable(
            page.runs,
            columns=choices,
            query=request.GET,
            order_by=data["order_by"],
            selected=data["selected"],
        )
    error = result.filter_error
    context = {
        "experiments": experiments,
        "experiment": experiments[0],
        "several": several,
        "form": form,
        "order_by": data.get("order_by", []),
        "sort_keys": _sort_keys(request.GET, data.get("order_by", [])),
        "page": page,
        "total": result.total,
        "total_text": total_text(result.total) if result.total is not None else "",
        "count_url": _count_url(experiments, data, result) if page is not None else "",
        "page_token": data.get("page_token"),
        "page_sizes": PAGE_SIZES,
        "page_size": data.get("page_size", PAGE_SIZES[0]),
        "table": table,
        "picker": picker,
        "group_picker": _group_picker(experiments, key_sets, form, data.get("find_group", ""), keys_url),
        "default_columns_note": default_columns_note(key_sets=key_sets, chosen=data.get("columns")),
        "hidden_constant": sorted(hidden),
        "key_sets": key_sets,
        "selected": data.get("selected", []),
        "group_by": data.get("group_by", []),
        "groups": result.groups,
        "group_rows": _group_rows(request.GET, data, result) if result.groups else [],
        "filter_error": error,
        "caret": _caret(error),
        "unknown_keys": result.unknown_keys,
        "compare_url": _compare_url(),
        "table_url": request.path,
        "export_url": _export_url(request.GET, experiments),
        "saved_views": [
            (view, saved_view_url(view), can_change_saved_view(request.user, view))
            for view in selectors.list_saved_views(experiment_ids=[e.pk for e in experiments])
        ],
        "can_save_view": experiment_level(request.user, experiments[0]) >= Level.EDIT,
        "save_form": SavedViewForm(initial={"query": request.GET.urlencode()}),
        "state": {
            "selected": data.get("selected", []),
            "compare_url": _compare_url(),
            "compare_max": selectors.MAX_CHART_RUNS,  # the compare page's limit
        },
        # One experiment's table shows its audit history; a table of several has no one object.
        "history": None
        if several
        else history_block(object_type="tracker.experiment", object_ids=[str(experiments[0].pk)]),
    }
    status = 400 if form.errors or error else 200
    return render(request, "dashboard/run_table.html", context, status=status)


def total_text(total: int) -> str:
    """The number of matching runs as the page shows it (counts stop past COUNT_LIMIT)."""
    return f"More than {COUNT_LIMIT:,}" if total > COUNT_LIMIT else str(total)


def _count_url(experiments: Sequence[Experiment], data: dict[str, Any], result: TableResult) -> str:
    """Where the page fetches its total when it does not know it (see run_count)."""
    if result.total is not None:
        return ""
    params = QueryDict(mutable=True)
    params.setlist("experiments", [str(e.pk) for e in experiments])
    counted = result.counted_filter if result.counted_filter is not None else data.get("filter", "")
    if counted:
        params["filter"] = counted
    return reverse("dashboard:run-count") + "?" + params.urlencode()


@require_GET
@viewer_required
def run_count(request: HttpRequest) -> JsonResponse:
    """The number of runs a run-table filter matches, which the page loads after it is shown."""
    try:
        experiments = _experiments_named(request.GET, request.user)
        filter_string = request.GET.get("filter") or None
        total = count_matching_runs(
            experiment_ids=experiments, filter_string=filter_string, user=request.user
        )
    except ApplicationError as error:  # a bad filter or experiment id, an unknown experiment
        return JsonResponse({"error": str(error), "field": error.field}, status=error.http_status)
    return JsonResponse({"total": total, "text": total_text(total)})


def _keys_url(experiments: Sequence[Experiment]) -> str:
    """runs/columns.json for these experiments, which the pickers' script searches as one types."""
    params = QueryDict(mutable=True)
    params.setlist("experiments", [str(e.pk) for e in experiments])
    return reverse("dashboard:run-columns") + "?" + params.urlencode()


def _column_picker(
    experiments: Sequence[Experiment], choices: list[ColumnChoice], search: str, url: str
) -> ColumnPicker:
    """The Columns picker; a search submitted without the page's script is answered here."""
    matches = None
    if search:
        ids = [e.pk for e in experiments]
        matches = selectors.find_experiment_keys(experiment_ids=ids, text=search, limit=PICKER_KEYS_SHOWN)
    return column_picker(choices=choices, search=search, matches=matches, url=url)


def _group_picker(
    experiments: Sequence[Experiment], key_sets: selectors.KeySets, form: RunTableForm, search: str, url: str
) -> GroupPicker:
    """The Group picker, holding the grouping the URL asks for (read from the query itself, so an
    error elsewhere in the form does not drop it); a search without the script is answered here."""
    matches = None
    if search:
        ids = [e.pk for e in experiments]
        matches = selectors.find_experiment_keys(
            experiment_ids=ids, text=search, limit=PICKER_KEYS_SHOWN, kinds=GROUP_KEY_KINDS
        )
    params = QueryDict(mutable=True)
    params.setlist("kind", GROUP_KEY_KINDS)
    return group_picker(
        key_sets=key_sets,
        group_by=list(dict.fromkeys(key for key in form.data.getlist("group_by") if key.strip())),
        metric=form["group_metric"].value() or "",
        search=search,
        matches=matches,
        url=url + "&" + params.urlencode(),
    )


@require_GET
@viewer_required
def column_keys(request: HttpRequest) -> JsonResponse:
    """The keys "Find a column" (or the Group picker's "Find") matches, PICKER_KEYS_SHOWN per kind
    at most, as the user types."""
    form = ColumnSearchForm(request.GET)
    try:
        experiments = _experiments_named(request.GET, request.user)
        if not form.is_valid():
            field_name, errors = next(iter(form.errors.items()))
            raise InvalidInput(errors[0], field=field_name)
        found = selectors.find_experiment_keys(
            experiment_ids=[e.pk for e in experiments],
            text=form.cleaned_data["q"],
            limit=PICKER_KEYS_SHOWN,
            kinds=request.GET.getlist("kind") or selectors.KEY_KINDS,
        )
    except ApplicationError as error:  # a bad experiment id or text, an unknown or closed experiment
        return JsonResponse(error.as_dict(), status=error.http_status)
    return JsonResponse(
        {
            "q": form.cleaned_data["q"],
            "limit": PICKER_KEYS_SHOWN,
            "kinds": {kind: {"keys": m.keys, "total": m.total} for kind, m in found.items()},
        }
    )


def _caret(error: ApplicationError | None) -> dict[str, Any] | None:
    """The filter with a caret under the position of a syntax error, line by line."""
    if not isinstance(error, search.FilterSyntaxError):
        return None
    start = error.text.rfind("\n", 0, error.position) + 1
    end = error.text.find("\n", error.position)
    line = error.text[start : None if end < 0 else end]
    return {"line": line, "pad": " " * (error.position - start)}


def _compare_url() -> str:
    """The compare page's address; while that page is not there yet, the path it will have."""
    try:
        return reverse("dashboard:compare")
    except NoReverseMatch:
        return "/compare/"


def _export_url(query: QueryDict, experiments: Sequence[Experiment]) -> str:
    params = query.copy()
    for name in ("page_token", "expand"):
        params.pop(name, None)
    params.setlist("experiments", [str(e.pk) for e in experiments])
    return reverse("dashboard:run-export") + "?" + params.urlencode()


def _sort_keys(query: QueryDict, order_by: list[str]) -> list[dict[str, str]]:
    """The sort keys in order, each with a link that drops it (the rest keep their order)."""
    keys = []
    for index, item in enumerate(order_by):
        params = query.copy()
        params.pop("page_token", None)
        params.setlist("order_by", [other for position, other in enumerate(order_by) if position != index])
        keys.append({"text": item, "remove_url": "?" + params.urlencode()})
    return keys


def _groups(request: HttpRequest, experiments: Sequence[Experiment], data: dict[str, Any], result) -> None:
    """Groups of runs by the chosen params, and the runs of the groups the URL expands.

    No page of ungrouped runs is read: the key sets and the group counts say all the page needs.
    """
    result.key_sets = selectors.experiment_key_sets(experiment_ids=[e.pk for e in experiments])
    filter_string = data["filter"] or None
    try:
        result.groups = _group_page(experiments, data, filter_string, request.user)
        result.unknown_keys = selectors.unknown_filter_keys(
            filter_string=filter_string, key_sets=result.key_sets
        )
    except InvalidInput as error:
        if error.field != "filter":
            raise
        result.filter_error, filter_string = error, None
        result.groups = _group_page(experiments, data, None, request.user)
    if not result.groups.truncated:
        result.total = sum(group.count for group in result.groups.groups)
    expanded = set(data["expand"])
    choices = choose_columns(
        key_sets=result.key_sets, chosen=data["columns"], several_experiments=len(experiments) > 1
    )
    for index, group in enumerate(result.groups.groups):
        if _group_token(group) not in expanded:
            continue
        runs = selectors.search_runs(
            user=request.user,
            experiment_ids=experiments,
            filter_string=selectors.group_filter(
                filter_string=filter_string, group_by=data["group_by"], values=group.values
            ),
            order_by=data["order_by"],
            max_results=data["page_size"],
            with_column_keys=False,
        )
        result.expanded[index] = RunTable(
            runs.runs,
            columns=choices,
            query=request.GET,
            order_by=data["order_by"],
            selected=data["selected"],
        )


def _group_page(
    experiments: Sequence[Experiment], data: dict[str, Any], filter_string: str | None, user: Any
):
    return selectors.group_runs(
        user=user,
        experiment_ids=experiments,
        group_by=data["group_by"],
        filter_string=filter_string,
        metric=data["group_metric"] or None,
    )


def _group_token(group: selectors.RunGroup) -> str:
    return json.dumps(list(group.values), separators=(",", ":"))


PAGING_KEYS = ("page_token", "total")  # where a page is in its table's paging


def _without(query: QueryDict, *names: str) -> QueryDict:
    """A mutable copy of `query` without those parameters."""
    kept = query.copy()
    for name in names:
        kept.pop(name, None)
    return kept


def _group_rows(query: QueryDict, data: dict[str, Any], result: TableResult) -> list[dict[str, Any]]:
    rows = []
    expanded = data["expand"]
    for index, group in enumerate(result.groups.groups):
        token = _group_token(group)
        params = query.copy()
        params.setlist(
            "expand", [t for t in expanded if t != token] if token in expanded else [*expanded, token]
        )
        # The group's runs as a table of their own: the expanded row shows only the first ones.
        alone = _without(query, "group_by", "group_metric", "find_group", "expand", *PAGING_KEYS)
        alone["filter"] = selectors.group_filter(
            filter_string=data["filter"], group_by=data["group_by"], values=group.values
        )
        rows.append(
            {
                "group": group,
                "values": group.values,
                "mean": number_cell(group.mean) if group.mean is not None else "—",
                "min": number_cell(group.min) if group.min is not None else "—",
                "max": number_cell(group.max) if group.max is not None else "—",
                "open": token in expanded,
                "toggle_url": "?" + params.urlencode(),
                "all_url": "?" + alone.urlencode(),
                "table": result.expanded.get(index),
            }
        )
    return rows


@require_GET
@viewer_required
def export_runs(request: HttpRequest) -> HttpResponse:
    """The current view as CSV: every matching run, streamed page by page in constant memory."""
    form = RunTableForm(request.GET)
    try:
        experiments = _experiments_named(request.GET, request.user)
        if not form.is_valid():
            raise InvalidInput(next(iter(form.errors.values()))[0])
        data = form.cleaned_data
        ids = [e.pk for e in experiments]
        key_sets = selectors.experiment_key_sets(experiment_ids=ids)
        search.parse_order_by(data["order_by"])
        search.parse_filter(data["filter"] or None)  # errors now, as a 400, not mid-stream
    except (NotFound, PermissionDenied):
        raise  # the 404 and 403 pages, as the run table answers the same experiments
    except ApplicationError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    choices = [
        c
        for c in choose_columns(
            key_sets=key_sets, chosen=data["columns"], several_experiments=len(ids) > 1, keys_shown=None
        )
        if c.shown
    ]
    runs = selectors.iter_runs(
        user=request.user,
        experiment_ids=ids,
        filter_string=data["filter"] or None,
        order_by=data["order_by"],
        chunk_size=CSV_CHUNK,
    )
    response = StreamingHttpResponse(_csv_lines(runs, choices), content_type="text/csv; charset=utf-8")
    name = experiments[0].name if len(experiments) == 1 else "runs"
    response["Content-Disposition"] = f'attachment; filename="{_safe_filename(name)}.csv"'
    return response


class _Line:
    """A file-like object whose write() hands back the line, so csv.writer can feed a generator."""

    def write(self, text: str) -> str:
        return text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run: text that starts like a formula gets a leading quote."""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _csv_lines(runs: Iterator[selectors.RunData], choices: list[ColumnChoice]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(["run_id", "name", *(_header(c) for c in choices)])
    for data in runs:
        yield writer.writerow(
            [data.run.uuid, _cell(data.run.name), *(_cell(cell_text(data, c, exact=True)) for c in choices)]
        )


def _header(choice: ColumnChoice) -> str:
    prefix = {"attr": "", "metric": "metrics.", "metric_min": "metrics_min.", "metric_max": "metrics_max.",
              "param": "params.", "tag": "tags.", "dataset": "datasets."}[choice.kind]  # fmt: skip
    return prefix + choice.key


def _safe_filename(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)[:100] or "runs"


@require_POST
@viewer_required
def save_view(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.get_experiment(user=request.user, experiment_id=experiment_id)
    form = SavedViewForm(request.POST)
    # What the page was showing, less where it was in the paging (a view opens on its first page)
    # and what the Columns and Group pickers were searching for.
    searches = ("find_column", "find_group")
    query = _without(QueryDict(request.POST.get("query", "")), *PAGING_KEYS, *searches).urlencode()
    if form.is_valid():
        try:
            view = services.save_view(
                actor=request.user, experiment=experiment, name=form.cleaned_data["name"], query=query
            )
        except PermissionDenied:
            raise  # a 403 page, as every page answers a refusal
        except ApplicationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Saved the view “{view.name}”.")
            return redirect(saved_view_url(view))
    else:
        for field_name, errors in form.errors.items():
            messages.error(request, f"{field_name}: {errors[0]}")
    return redirect(reverse("dashboard:run-table", args=[experiment.pk]) + ("?" + query if query else ""))


@require_POST
@viewer_required
def delete_saved_view(request: HttpRequest, view_id: int) -> HttpResponse:
    view = selectors.get_saved_view(view_id=view_id)
    experiment = view.experiment
    try:
        services.delete_view(actor=request.user, view=view)
    except PermissionDenied:
        raise  # a 403 page, as every page answers a refusal
    except ApplicationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("dashboard:run-table", experiment.pk)


def saved_view_url(view) -> str:
    """A saved view opens the table it was saved from: one experiment, or several."""
    query = QueryDict(view.query)
    if query.getlist("experiments"):
        return reverse("dashboard:runs") + "?" + view.query
    return reverse("dashboard:run-table", args=[view.experiment_id]) + (
        "?" + view.query if view.query else ""
    )
