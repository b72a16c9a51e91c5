"""`manage.py review_promotion REQUEST_ID --as USERNAME (--approve | --reject) [--comment TEXT]`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from config.exceptions import ApplicationError
from registry.selectors import get_promotion_request
from registry.services import review_promotion


class Command(BaseCommand):
    help = (
        "Approve or reject a promotion request as USERNAME, under the same rules as the pages and "
        "APIs (the requester and the source run's author cannot review it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("request_id", type=int)
        parser.add_argument("--as", dest="username", required=True, help="The reviewer's username.")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--approve", action="store_const", const="approve", dest="decision")
        decision.add_argument("--reject", action="store_const", const="reject", dest="decision")
        parser.add_argument("--comment", default="", help="Required to reject.")

    def handle(self, *args, request_id: int, username: str, decision: str, comment: str, **options):
        reviewer = get_user_model().objects.filter(username=username).first()
        if reviewer is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            request = review_promotion(
                actor=reviewer,
                request=get_promotion_request(request_id=request_id, user=reviewer),
                decision=decision,
                comment=comment,
            )
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Request #{request.pk} is {request.status} ({decision} by {username}).")
