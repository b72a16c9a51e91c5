"""Scheduled chain verification, run by a Celery worker (or beat) away from web requests."""

from celery import shared_task

from .services import record_chain_verification
from .verification import verify_chain


@shared_task(name="audit.verify_chain")
def verify_audit_chain() -> int:
    report = verify_chain()
    broken = report.broken
    event = record_chain_verification(
        checked=report.checked,
        broken_sequence=broken.sequence if broken else None,
        reason=broken.reason if broken else None,
    )
    return event.sequence
