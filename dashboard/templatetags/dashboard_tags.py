import json

from django import template

from accounts.roles import Role, role_of
from dashboard.tables import format_duration, format_metric, format_number
from registry.selectors import pending_review_count
from tracker.selectors import MetricValue
from tracker.validation import is_unicode_text

register = template.Library()


@register.simple_tag(takes_context=True)
def current_role(context) -> str:
    """The request user's role name, for the header ("viewer", "admin"…); "" without one."""
    request = context.get("request")
    role = role_of(getattr(request, "user", None))
    return "" if role is Role.NONE else role.group_name


@register.filter
def duration(value) -> str:
    return format_duration(value)


@register.filter
def metric_value(metric: MetricValue) -> str:
    return format_metric(metric)


@register.filter
def number(value) -> str:
    """A bound such as a metric's min or max, as the run table writes numbers ("—" for none,
    "Infinity" rather than Python's "inf")."""
    return format_number(value)


@register.filter
def pretty_json(value) -> str:
    """A JSON document indented with sorted keys (an environment, an audit event's data)."""
    return _readable(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False), value)


@register.filter
def signed(value) -> str:
    """A difference with its sign, so "+0.02" and "-0.02" read at a glance."""
    return "—" if value is None else f"{value:+.4g}"


@register.filter
def compact_json(value) -> str:
    """JSON on one line with sorted keys, for a table cell (an audit event's data)."""
    return _readable(json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False), value)


def _readable(text: str, value) -> str:
    """`text` as written, unless it holds what no page can carry (a lone surrogate stored before
    such text was refused): then with escapes, as JSON spells it."""
    return text if is_unicode_text(text) else json.dumps(value, sort_keys=True)


EVENT_DATA_SHOWN = 240  # characters of an event's data in a table cell; the rest opens below


@register.filter
def event_data(event) -> dict[str, object]:
    """An audit event's data for a table cell: one line (before → after), cut at
    EVENT_DATA_SHOWN characters, and the whole of it indented, to open when it was cut."""
    parts = [
        (name, value)
        for name, value in (("before", event.before), ("after", event.after))
        if value is not None
    ]
    line = " → ".join(compact_json(value) for _, value in parts)
    if len(line) <= EVENT_DATA_SHOWN:
        return {"line": line, "whole": ""}
    whole = "\n".join(f"{name}: {pretty_json(value)}" for name, value in parts)
    return {"line": line[: EVENT_DATA_SHOWN - 1] + "…", "whole": whole}


@register.simple_tag(takes_context=True)
def pending_reviews(context) -> int | None:
    """How many requests wait for the user's review (one query); None for non-reviewers."""
    user = getattr(context.get("request"), "user", None)
    if role_of(user) < Role.REVIEWER:
        return None
    return pending_review_count(user=user)
