from django import template

from accounts.roles import Role, role_of
from dashboard.tables import format_duration, format_metric
from tracker.selectors import MetricValue

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
    """A bound such as a metric's min or max: six significant digits, "—" when there is none."""
    return "—" if value is None else f"{value:.6g}"
