"""Checkpoints and chain checks, run by a Celery worker (on a beat schedule or on demand)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured

from config.exceptions import Conflict

from . import sealing, services
from .models import AuditVerification

logger = logging.getLogger(__name__)


@shared_task(name="audit.seal_events")
def seal_events() -> int:
    """Seal the events committed since the last run (beat, every AUDIT_SEAL_INTERVAL_SECONDS)."""
    return sealing.seal_events().sealed


@shared_task(name="audit.make_checkpoint")
def make_checkpoint() -> int | None:
    """Sign the chain head (scheduled, and enqueued on commit after every applied promotion)."""
    try:
        checkpoint = services.make_checkpoint()
    except (Conflict, OSError, ImproperlyConfigured) as error:
        # Raising would fail the request that enqueued this when tasks run eagerly, after its
        # change committed. A break is stored as a failed check (the audit page shows it); a
        # copy or key problem is logged as an error, and the next scheduled run tries again.
        logger.error("audit checkpoint not made: %s", error)
        return None
    return checkpoint.pk if checkpoint is not None else None


@shared_task(name="audit.verify_chain")
def verify_audit_chain(verification_id: int | None = None, full: bool = False) -> int:
    """Run a queued check, or a scheduled one (incremental unless `full`) when given no id."""
    if verification_id is None:
        return services.check_chain(full=full).pk
    verification = AuditVerification.objects.get(pk=verification_id)
    return services.run_verification(verification=verification).pk
