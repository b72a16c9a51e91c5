"""Failed-login throttling (django-axes): what a locked-out client sees, and the audit of each lockout.

django-axes counts failed password checks per username and client address, for the login page,
the admin login and Basic credentials on the MLflow API alike (all go through `authenticate()`
with the request). After LOGIN_FAILURE_LIMIT failures that pair is refused for
LOGIN_COOLOFF_MINUTES, even with the right password; `manage.py unlock_login USER` lifts it early.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.services import record_event

# The events of account security: a lockout names the address that tried and the account it
# tried, an unlock which account was under attack. Only admins read them (audit.visibility).
ACCOUNT_SECURITY_ACTIONS = ("user.login_locked_out", "user.login_unlocked")

# Paths whose adapters answer a lockout themselves, in their own error format.
_API_PREFIXES = ("/api/", "/ajax-api/")


def lockout_message(username: str) -> str:
    minutes = settings.LOGIN_COOLOFF_MINUTES
    return (
        f"Too many failed logins for {username!r} from this address: try again in {minutes} minute"
        f"{'' if minutes == 1 else 's'}, or ask an administrator to unlock it."
    )


def is_locked_out(request: HttpRequest) -> bool:
    """Whether the last authenticate() on this request was refused, or just caused, a lockout."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login form again, saying why, with 429 Too Many Requests.

    API responses are left as their adapter wrote them (an MLflow or DRF error naming the lockout).
    """
    if request.path.startswith(_API_PREFIXES) and original_response is not None:
        return original_response
    username = str((credentials or {}).get("username") or request.POST.get("username", ""))
    context = {"form": AuthenticationForm(request), "locked_out": lockout_message(username)}
    return render(request, "registration/login.html", context, status=429)


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def audit_lockout(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """Record the failure that locks a username out, once per lockout.

    django-axes also sends this signal for each attempt refused during a lockout; those are not
    recorded, or anyone could fill the audit chain by retrying a wrong password.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None or failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return
    with transaction.atomic():
        record_event(
            actor=None,
            action="user.login_locked_out",
            object_type="auth.user",
            object_id=username or "",
            after={
                "ip_address": ip_address,
                "path": request.path,
                "failures": failures,
                "cooloff_minutes": settings.LOGIN_COOLOFF_MINUTES,
            },
        )


def unlock_login(*, username: str, actor: Any = None) -> int:
    """Forget the failed logins of `username` (from every address); audited when any existed.

    Returns how many failure records were removed. `actor` is None for the command line.
    """
    with transaction.atomic():
        removed = reset(username=username)
        if removed:
            record_event(
                actor=actor,
                action="user.login_unlocked",
                object_type="auth.user",
                object_id=username,
                after={"attempts_removed": removed},
            )
    return removed
