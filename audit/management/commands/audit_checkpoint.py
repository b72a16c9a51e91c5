from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoint_format import CheckpointFormatError
from audit.services import make_checkpoint
from config.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Sign the audit chain's head now, and copy the checkpoint outside the database."

    def handle(self, *args, **options):
        try:
            checkpoint = make_checkpoint()
        except ApplicationError as error:
            raise CommandError(str(error)) from None
        except (OSError, ImproperlyConfigured, CheckpointFormatError) as error:
            raise CommandError(f"No checkpoint made: {error}") from None
        if checkpoint is None:
            self.stdout.write("Nothing new to sign: the newest checkpoint already covers the chain head.")
            return
        self.stdout.write(
            f"Checkpoint {checkpoint.pk} signed the chain head #{checkpoint.sequence} "
            f"({checkpoint.hash[:16]}…) with key {checkpoint.key_id}."
        )
