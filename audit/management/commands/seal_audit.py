from django.conf import settings
from django.core.management.base import BaseCommand

from audit.sealing import seal_events, seal_forever


class Command(BaseCommand):
    help = (
        "Link and hash the audit events committed since the last seal; with --loop, keep doing "
        "it every AUDIT_SEAL_INTERVAL_SECONDS (a sealer process instead of the beat task)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep sealing until stopped")
        parser.add_argument(
            "--interval", type=float, default=None, help="seconds between seals (default: the setting)"
        )

    def handle(self, *args, **options):
        if options["loop"]:
            interval = options["interval"] or settings.AUDIT_SEAL_INTERVAL_SECONDS
            self.stdout.write(f"Sealing the audit chain every {interval:g} s.")
            self.stdout.flush()
            seal_forever(interval=interval)
            return
        result = seal_events()
        self.stdout.write(
            f"Sealed {result.sealed} events; the chain head is #{result.head_sequence}; "
            f"{result.unsealed} still unsealed."
        )
