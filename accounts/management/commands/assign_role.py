from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLE_GROUPS
from accounts.services import assign_role


class Command(BaseCommand):
    help = "Give USERNAME a role: viewer, contributor, reviewer or admin."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=sorted(ROLE_GROUPS))

    def handle(self, *args, username, role, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        assign_role(user=user, role=ROLE_GROUPS[role])
        self.stdout.write(f"{username} now has the {role} role.")
