from django.core.management.base import BaseCommand

from accounts.lockouts import unlock_login


class Command(BaseCommand):
    help = "Lift the failed-login lockout of USERNAME (from every address) before its cool-off ends."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        removed = unlock_login(username=username)
        if removed:
            self.stdout.write(f"{username} may log in again ({removed} failed-login record(s) removed).")
        else:
            self.stdout.write(f"{username} had no failed logins recorded; nothing to unlock.")
