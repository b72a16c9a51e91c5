from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_format import CheckpointFormatError
from audit.sealing import seal_events
from audit.verification import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the whole audit chain against its signed checkpoints (in the database and the "
        "checkpoint file); exits non-zero at the first position that does not hold."
    )

    def handle(self, *args, **options):
        try:
            seal_events()  # cover every event committed before the check
            report = verify_chain()
        except (CheckpointFormatError, OSError, ImproperlyConfigured) as error:
            raise CommandError(f"Could not check the audit chain: {error}") from None
        if not report.ok:
            broken = report.broken
            raise CommandError(
                f"Audit chain broken at event #{broken.sequence}: {broken.reason} "
                f"({report.checked} events verified before it)."
            )
        self.stdout.write(
            f"Audit chain intact: {report.checked} events verified. "
            f"Signed checkpoints matched: {report.checkpoints_checked}."
            + (f" Unsealed (committed during the check): {report.unsealed}." if report.unsealed else "")
        )
