import signal
import threading

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
            stop = self._stop_on_signals()
            self.stdout.write(f"Sealing the audit chain every {interval:g} s.")
            self.stdout.flush()
            passes = seal_forever(interval=interval, stop=stop)
            self.stdout.write(f"Stopped after {passes} seals.")
            return
        result = seal_events()
        self.stdout.write(
            f"Sealed {result.sealed} events; the chain head is #{result.head_sequence}; "
            f"{result.unsealed} still unsealed."
        )

    @staticmethod
    def _stop_on_signals() -> threading.Event:
        """SIGTERM (what `docker compose stop` and systemd send) and SIGINT stop the loop once the
        seal in progress has committed, rather than killing it mid-statement. A SIGINT that the
        process was started ignoring (a background job of a shell) stays ignored."""
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, request_stop)
        return stop
