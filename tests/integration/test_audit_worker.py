"""Checkpoints and chain checks run by a real Celery worker, through Redis, on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.checkpoint_format import parse_checkpoint
from audit.checkpoints import trusted_keys
from audit.models import AuditCheckpoint, AuditVerification
from audit.tasks import make_checkpoint
from tests.integration.conftest import wait_for
from tracker.services import create_experiment

pytestmark = pytest.mark.services


@pytest.fixture
def audit_files(settings, tmp_path):
    """The worker (started after this) signs with the test's key and appends to this file."""
    checkpoint_file = tmp_path / "outside" / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_FILE = str(checkpoint_file)
    trusted_keys()  # make sure the key file exists before the worker starts
    return checkpoint_file


def _worker_log(worker) -> str:
    worker.terminate()
    return worker.communicate(timeout=20)[0][-4000:]


def test_a_checkpoint_enqueued_on_commit_is_signed_by_the_worker(
    contributor, audit_files, celery_worker_process, real_broker
):
    with transaction.atomic():
        create_experiment(actor=contributor, name="promoted")
        # What the registry does after an applied promotion.
        transaction.on_commit(make_checkpoint.delay)

    checkpoint = wait_for(lambda: AuditCheckpoint.objects.first())
    if checkpoint is None:
        pytest.fail(
            f"the worker made no checkpoint within 60 s; its log:\n{_worker_log(celery_worker_process)}"
        )

    [line] = audit_files.read_text().splitlines()
    assert line == checkpoint.document
    signed = parse_checkpoint(line)
    assert signed.signature_problem(trusted_keys()) is None
    assert signed.main_head.sequence == checkpoint.sequence


def test_a_check_asked_for_through_the_api_runs_on_the_worker_and_is_then_served(
    contributor, api_client_for, audit_files, celery_worker_process, real_broker
):
    create_experiment(actor=contributor, name="audited")
    client = api_client_for(contributor)

    queued = client.post("/api/v1/audit/verify", {"full": True}, format="json").json()
    done = wait_for(
        lambda: AuditVerification.objects.filter(
            pk=queued["id"], status=AuditVerification.Status.DONE
        ).first()
    )
    if done is None:
        pytest.fail(
            f"the worker did not finish the check within 60 s; its log:\n{_worker_log(celery_worker_process)}"
        )
    body = client.get("/api/v1/audit/verify").json()

    assert (body["id"], body["ok"], body["mode"], body["broken"]) == (queued["id"], True, "full", None)
    assert body["checked"] == body["through_sequence"] > 0
