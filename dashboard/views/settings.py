"""The user's settings: API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import list_api_tokens
from accounts.services import create_api_token, revoke_api_token

from ..access import viewer_required
from ..forms import TokenCreateForm


@never_cache  # the answer may hold a new token: out of caches and the back/forward cache
@require_http_methods(["GET", "POST"])
@viewer_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """API tokens: a new token's plain text is shown in this one response and never again."""
    form = TokenCreateForm(request.POST or None)
    new_token = raw_token = None
    if request.method == "POST" and form.is_valid():
        new_token, raw_token = create_api_token(user=request.user, name=form.cleaned_data["name"])
        form = TokenCreateForm()
    context = {
        "form": form,
        "new_token": new_token,
        "raw_token": raw_token,
        "tokens": list_api_tokens(user=request.user),
    }
    return render(request, "dashboard/settings.html", context, status=400 if form.errors else 200)


@require_POST
@viewer_required
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = revoke_api_token(user=request.user, token_id=token_id)
    messages.success(request, f"Token “{token.name}” was revoked.")
    return redirect("dashboard:settings")
