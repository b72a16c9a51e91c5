"""Version numbers come from the model's counter (`RegisteredModel.last_version`), raised by the
statement that numbers a version: never reused, never below a version already stored."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from config.exceptions import NotFound
from registry import selectors
from registry.models import ModelVersion, RegisteredModel
from registry.services import (
    create_model_version,
    create_model_version_from,
    create_registered_model,
    delete_model_version,
)
from tests.factories import ModelVersionFactory
from tracker.selectors import get_run_ref


@pytest.fixture
def model(contributor):
    return create_registered_model(actor=contributor, name="counted")


def _counter(model: RegisteredModel) -> int:
    return RegisteredModel.all_objects.values_list("last_version", flat=True).get(pk=model.pk)


def _by_name(actor, model, run) -> ModelVersion:
    def find():
        found_model = selectors.get_registered_model(user=actor, name=model.name)
        return found_model, get_run_ref(run_id=run.uuid, user=actor), None

    return create_model_version_from(actor=actor, model_name=model.name, run_id=run.uuid, find=find)


@pytest.mark.parametrize("register", [create_model_version, _by_name], ids=["checked", "by-name"])
def test_numbers_follow_the_counter_and_a_deleted_versions_number_is_not_reused(
    contributor, run, model, register
):
    def new() -> ModelVersion:
        if register is create_model_version:
            return create_model_version(actor=contributor, model=model, run=run)
        return _by_name(contributor, model, run)

    first, second = new(), new()
    delete_model_version(actor=contributor, version=second)
    third = new()

    assert (first.version, second.version, third.version) == (1, 2, 3)
    assert _counter(model) == 3


@pytest.mark.parametrize("register", [create_model_version, _by_name], ids=["checked", "by-name"])
def test_a_version_stored_without_the_counter_is_never_numbered_over(contributor, run, model, register):
    """Rows written straight to the table (fixtures, data from before the counter) leave it
    behind: the next number still follows the highest version stored."""
    ModelVersionFactory(model=model, run=run, version=7)
    assert _counter(model) == 0

    if register is create_model_version:
        version = create_model_version(actor=contributor, model=model, run=run)
    else:
        version = _by_name(contributor, model, run)

    assert version.version == 8 and _counter(model) == 8


def test_an_imported_number_raises_the_counter_and_a_lower_one_leaves_it(contributor, run, model):
    create_model_version(actor=contributor, model=model, run=run, number=5)
    create_model_version(actor=contributor, model=model, run=run, number=2)
    assert _counter(model) == 5
    assert create_model_version(actor=contributor, model=model, run=run).version == 6


def test_a_model_deleted_since_it_was_found_gets_no_version(contributor, run, model):
    RegisteredModel.objects.filter(pk=model.pk).update(deleted_at=timezone.now())
    events = AuditEvent.objects.count()

    with pytest.raises(NotFound, match="registered model 'counted' does not exist"):
        create_model_version(actor=contributor, model=model, run=run)

    assert not ModelVersion.all_objects.filter(model=model).exists()
    assert AuditEvent.objects.count() == events and _counter(model) == 0


def test_the_migration_counts_the_versions_already_stored(contributor, run, model):
    other = create_registered_model(actor=contributor, name="empty")
    versions = [create_model_version(actor=contributor, model=model, run=run) for _ in range(3)]
    delete_model_version(actor=contributor, version=versions[-1])  # its number still counts
    RegisteredModel.all_objects.update(last_version=0)

    migration = importlib.import_module("registry.migrations.0005_registered_model_last_version")
    migration.count_existing_versions(apps, None)

    assert (_counter(model), _counter(other)) == (3, 0)


@pytest.mark.django_db
def test_a_version_writes_one_index_entry_for_its_model():
    """The unique (model, version) index serves lookups by model; no second index repeats it
    (migration registry/0006), so a registration maintains one entry for its model, not two."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ModelVersion._meta.db_table)
    leading_with_model = {
        name: found["columns"]
        for name, found in constraints.items()
        if found["index"] or found["unique"]
        if found["columns"] and found["columns"][0] == "model_id"
    }
    assert leading_with_model == {"model_version_unique": ["model_id", "version"]}
