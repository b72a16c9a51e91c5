"""One page of a searchable list (experiments, registered models): the form's state, the page
of objects and the links to the pages beside it, each keeping the search and the order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict

from config.listing import LIST_PAGE_SIZE

from .forms import ListForm


def _pages(count: int) -> int:
    return max(1, -(-count // LIST_PAGE_SIZE))


@dataclass(frozen=True)
class ListPage:
    form: ListForm
    refused: bool = False  # the form's errors say why; nothing was searched
    objects: list[Any] = field(default_factory=list)
    number: int = 1
    count: int = 0  # objects on all pages

    @property
    def status(self) -> int:
        return 400 if self.refused else 200

    @property
    def searched(self) -> bool:
        return bool(self.form.data.get("q", "").strip())

    @property
    def pages(self) -> int:
        return _pages(self.count)

    @property
    def first_shown(self) -> int:
        return (self.number - 1) * LIST_PAGE_SIZE + 1 if self.objects else 0

    @property
    def last_shown(self) -> int:
        return (self.number - 1) * LIST_PAGE_SIZE + len(self.objects)

    @property
    def previous_query(self) -> str:
        return _query(self.form.data, self.number - 1) if self.number > 1 else ""

    @property
    def next_query(self) -> str:
        return _query(self.form.data, self.number + 1) if self.number < self.pages else ""


def _query(data: QueryDict, page: int) -> str:
    """The list's query string with another page number: the search and the order kept."""
    query = data.copy()
    query["page"] = str(page)
    return query.urlencode()


def _page_of(objects: QuerySet, number: int) -> tuple[list[Any], int, int]:
    """(the page's objects, its number, the total). A list that fits on its first page is
    counted by fetching it, so the common case costs no COUNT query; a page past the end is the
    last one."""
    start = (number - 1) * LIST_PAGE_SIZE
    rows = list(objects[start : start + LIST_PAGE_SIZE + 1])  # one more: is there a next page?
    if number == 1 and len(rows) <= LIST_PAGE_SIZE:
        return rows, 1, len(rows)
    count = objects.count()
    if not rows and count:  # past the end
        number = _pages(count)
        start = (number - 1) * LIST_PAGE_SIZE
        rows = list(objects[start : start + LIST_PAGE_SIZE])
    return rows[:LIST_PAGE_SIZE], number, count


def list_page(form: ListForm, search: Callable[[str, str], QuerySet]) -> ListPage:
    """The page the form asks for of `search(text, order)`. A refused form searches nothing."""
    if not form.is_valid():
        return ListPage(form=form, refused=True)
    state = form.cleaned_data
    objects, number, count = _page_of(search(state["q"], state["sort"]), state["page"] or 1)
    return ListPage(form=form, objects=objects, number=number, count=count)
