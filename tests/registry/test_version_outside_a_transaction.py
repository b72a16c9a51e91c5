"""A model version registered outside any transaction, as a request makes it, on PostgreSQL:
the model's lock and counter, the numbered insert and the audit event are one statement, a
transaction of its own (registry/services/version_insert.py)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from audit.models import AuditEvent
from audit.sealing import seal_events
from audit.verification import verify_chain
from config.exceptions import PermissionDenied
from registry import selectors
from registry.models import ModelVersion
from registry.services import create_model_version, create_model_version_from, create_registered_model
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import Run
from tracker.selectors import get_run_ref


@pytest.fixture
def model(postgres, contributor):
    return create_registered_model(actor=contributor, name="lone-model")


@pytest.fixture
def lone_run(postgres, contributor):
    return RunFactory(experiment=ExperimentFactory(name="lone"), user=contributor)


def test_a_version_and_its_event_are_committed_together(model, lone_run, contributor):
    assert not connection.in_atomic_block
    version = create_model_version(actor=contributor, model=model, run=lone_run)

    assert connection.connection.info.transaction_status.name == "IDLE"  # committed, not left open
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.version, stored.run_id, stored.created_by_id) == (1, lone_run.pk, contributor.pk)
    event = AuditEvent.objects.get(action="model_version.created")
    assert (event.object_id, event.after["version"]) == (f"id:{version.pk}", 1)
    assert event.after["model"] == "lone-model"
    seal_events()
    assert verify_chain().ok


def test_a_failed_version_writes_nothing_and_leaves_the_connection_usable(model, lone_run, contributor):
    vanished = Run(pk=lone_run.pk + 1000, uuid="0" * 32, experiment_id=lone_run.experiment_id)
    vanished.lifecycle = lone_run.lifecycle
    events_before = AuditEvent.objects.count()
    updated_before = type(model).objects.get(pk=model.pk).updated_at

    with pytest.raises(DatabaseError, match="foreign key"):  # no such run
        create_model_version(actor=contributor, model=model, run=vanished)

    assert connection.connection.info.transaction_status.name == "IDLE"  # rolled back, not aborted
    assert AuditEvent.objects.count() == events_before
    assert not ModelVersion.objects.exists()
    stored_model = type(model).objects.get(pk=model.pk)
    assert (stored_model.updated_at, stored_model.last_version) == (updated_before, 0)  # the UPDATE too
    # and the next version goes through on the same connection, numbered 1
    assert create_model_version(actor=contributor, model=model, run=lone_run).version == 1


def test_a_version_by_name_commits_or_writes_nothing_on_its_own(model, lone_run, contributor, viewer):
    """The statement that finds the model and run itself: a refusal (a viewer finds nothing
    they may write) leaves no transaction open, and the next registration commits."""

    def find_as(user):
        return lambda: (
            selectors.get_registered_model(user=user, name=model.name),
            get_run_ref(run_id=lone_run.uuid, user=user),
            None,
        )

    with pytest.raises(PermissionDenied):
        create_model_version_from(
            actor=viewer, model_name=model.name, run_id=lone_run.uuid, find=find_as(viewer)
        )
    assert connection.connection.info.transaction_status.name == "IDLE"
    assert (
        not ModelVersion.objects.exists()
        and not AuditEvent.objects.filter(action="model_version.created").exists()
    )

    version = create_model_version_from(
        actor=contributor, model_name=model.name, run_id=lone_run.uuid, find=find_as(contributor)
    )
    assert connection.connection.info.transaction_status.name == "IDLE"
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.version, stored.run_id, stored.source) == (
        1,
        lone_run.pk,
        f"{lone_run.artifact_uri}/model",
    )
    assert AuditEvent.objects.get(action="model_version.created").after["version"] == 1
    seal_events()
    assert verify_chain().ok
