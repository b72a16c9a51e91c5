"""What the dashboard's lists of named things (experiments, registered models) share: a text
search over name, description and tags, a choice of order, and pages of a fixed size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db.models import Exists, Expression, Model, OuterRef, Q, QuerySet

LIST_PAGE_SIZE = 50
Orders = Mapping[str, Sequence[str | Expression]]  # an order's name: its ORDER BY terms


def containing_text(queryset: QuerySet, text: str, *, tag_model: type[Model], owner: str) -> QuerySet:
    """The objects whose name or description contains `text`, or one of whose tags does in its
    key or value, ignoring case. A tag is matched through EXISTS, so an object with two matching
    tags is listed once and the caller's counts are not multiplied."""
    text = text.strip()
    if not text:
        return queryset
    tagged = tag_model._default_manager.filter(
        Q(key__icontains=text) | Q(value__icontains=text), **{owner: OuterRef("pk")}
    )
    return queryset.filter(Q(name__icontains=text) | Q(description__icontains=text) | Exists(tagged))


def ordered(queryset: QuerySet, order: str, orders: Orders) -> QuerySet:
    """`queryset` in the named order, the first of `orders` when the name is not one of them;
    every order ends on a unique field, so pages never overlap."""
    return queryset.order_by(*orders.get(order, next(iter(orders.values()))))
