"""A real Celery worker, fed through Redis, works on the real PostgreSQL database."""

import pytest

from audit.models import AuditEvent
from audit.tasks import verify_audit_chain
from tests.integration.conftest import wait_for
from tracker.services import create_experiment

pytestmark = pytest.mark.services


def test_worker_verifies_the_audit_chain_and_records_it(contributor, celery_worker_process, real_broker):
    for name in ("one", "two", "three"):
        create_experiment(actor=contributor, name=name)
    verify_audit_chain.delay()
    event = wait_for(lambda: AuditEvent.objects.filter(action="audit.chain_verified").first())
    if event is None:
        celery_worker_process.terminate()
        output = celery_worker_process.communicate(timeout=20)[0]
        pytest.fail(f"the worker did not run the task within 60 s; its log:\n{output[-4000:]}")
    # The personas' tokens and three experiments came before the check.
    assert event.after == {"checked": event.sequence - 1}
    assert event.actor_name == "system"
