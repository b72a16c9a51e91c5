"""Review pages: the queue of pending promotion requests, and one request beside the version it
would replace, with the approve/reject form."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.exceptions import ApplicationError
from registry import selectors, services
from registry.models import PromotionRequest

from ..access import viewer_required
from ..forms import ReviewForm
from ..registry_pages import review_context, submit


@require_GET
@viewer_required
def review_queue(request: HttpRequest) -> HttpResponse:
    """Pending requests the user may review; below them every open request, so a requester can
    follow theirs. Both oldest first: the request waiting longest leads either list."""
    open_requests = selectors.list_promotion_requests(
        user=request.user, status=PromotionRequest.Status.PENDING
    )
    context = {
        "queue": list(selectors.review_queue_for(user=request.user)),
        "open": list(open_requests.reverse()),
    }
    return render(request, "registry/review_queue.html", context)


def _request_page(request: HttpRequest, request_id: int, form: ReviewForm | None = None, status: int = 200):
    promotion = selectors.get_promotion_request(request_id=request_id, user=request.user)
    context = review_context(promotion=promotion, user=request.user, form=form or ReviewForm())
    return render(request, "registry/request_detail.html", context, status=status)


@require_GET
@viewer_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    return _request_page(request, request_id)


@require_POST
@viewer_required
def request_review(request: HttpRequest, request_id: int) -> HttpResponse:
    """Approve or reject; the service decides who may (never the requester or the run's creator)."""
    promotion = selectors.get_promotion_request(request_id=request_id, user=request.user)
    form = ReviewForm(request.POST)
    reviewed, status = submit(
        form,
        lambda data: services.review_promotion(
            actor=request.user, request=promotion, decision=data["decision"], comment=data["comment"]
        ),
    )
    if reviewed is None:
        return _request_page(request, request_id, form=form, status=status)
    verb = "approved" if form.cleaned_data["decision"] == "approve" else "rejected"
    messages.success(request, f"You {verb} request #{promotion.pk}.")
    return redirect("dashboard:request-detail", request_id=promotion.pk)


@require_POST
@viewer_required
def request_withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    promotion = selectors.get_promotion_request(request_id=request_id, user=request.user)
    try:
        services.withdraw_promotion(actor=request.user, request=promotion)
    except ApplicationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Request #{promotion.pk} was withdrawn.")
    return redirect("dashboard:request-detail", request_id=promotion.pk)
