"""Who may see dashboard pages: a logged-in user holding at least the viewer role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import Role, role_of
from config.exceptions import InvalidInput, NotFound
from config.exceptions import PermissionDenied as DomainPermissionDenied

NO_ROLE_MESSAGE = "Your account has no role yet. Ask an administrator to give you the viewer role."


def viewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Redirect anonymous users to the login page; answer 403 to users without a role.

    Domain errors raised while the page is built become Django's 404 and 403 pages here, and a
    bad value in the address (`?experiment=abc`) a 400 page naming the field, so views stay three
    lines: parse, call the selector or service, render.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if role_of(request.user) < Role.VIEWER:
            raise PermissionDenied(NO_ROLE_MESSAGE)
        try:
            return view(request, *args, **kwargs)
        except NotFound as error:
            raise Http404(str(error)) from error
        except DomainPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except InvalidInput as error:
            return render(request, "dashboard/bad_request.html", {"exception": str(error)}, status=400)

    return login_required(wrapped)
