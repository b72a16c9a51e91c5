"""Registry core: versions point at runs, one function moves aliases and stages, with history."""

import pytest

from audit.models import AuditEvent
from config.exceptions import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from registry.models import AliasHistory, ModelAlias, Stage
from registry.selectors import alias_history, get_version_by_alias
from registry.services import (
    create_model_version,
    create_registered_model,
    delete_alias,
    delete_model_version,
    delete_registered_model,
    rename_registered_model,
    set_alias,
    transition_stage,
)
from tracker.services import start_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(contributor):
    return create_registered_model(actor=contributor, name="digits-classifier")


@pytest.fixture
def versions(contributor, experiment, model):
    runs = [start_run(actor=contributor, experiment=experiment, name=f"r{i}") for i in range(3)]
    return [create_model_version(actor=contributor, model=model, run=r) for r in runs]


def test_version_numbers_count_up_per_model(contributor, versions, experiment):
    assert [v.version for v in versions] == [1, 2, 3]
    other = create_registered_model(actor=contributor, name="other")
    run = start_run(actor=contributor, experiment=experiment)
    assert create_model_version(actor=contributor, model=other, run=run).version == 1


def test_a_version_must_name_its_run(contributor, model):
    with pytest.raises(InvalidInput) as error:
        create_model_version(actor=contributor, model=model, run=None)
    assert str(error.value) == "run_id: a model version must name the run that produced it"


def test_version_source_defaults_to_the_runs_model_folder(versions):
    version = versions[0]
    assert version.source == f"{version.run.artifact_uri}/model"


def test_duplicate_model_names_are_rejected(contributor, model):
    with pytest.raises(AlreadyExists) as error:
        create_registered_model(actor=contributor, name="digits-classifier")
    assert str(error.value) == "name: registered model 'digits-classifier' already exists"


def test_viewer_cannot_register_a_model(viewer):
    with pytest.raises(PermissionDenied):
        create_registered_model(actor=viewer, name="nope")


def test_moving_an_alias_closes_the_previous_holder_in_history(contributor, reviewer, model, versions):
    v1, v2, _ = versions
    set_alias(actor=contributor, model=model, alias="staging", version=v1)
    set_alias(actor=reviewer, model=model, alias="staging", version=v2)
    assert get_version_by_alias(model=model, alias="staging") == v2
    newest, oldest = alias_history(model=model)
    assert (oldest.version, oldest.assigned_by, oldest.removed_by) == (v1, contributor, reviewer)
    assert oldest.removed_at == newest.assigned_at
    assert (newest.version, newest.removed_at) == (v2, None)


def test_setting_an_alias_to_its_current_version_changes_nothing(contributor, model, versions):
    set_alias(actor=contributor, model=model, alias="staging", version=versions[0])
    events = AuditEvent.objects.count()
    set_alias(actor=contributor, model=model, alias="staging", version=versions[0])
    assert AuditEvent.objects.count() == events
    assert AliasHistory.objects.count() == 1


def test_deleting_an_alias_ends_its_history(contributor, model, versions):
    set_alias(actor=contributor, model=model, alias="champion", version=versions[2])
    delete_alias(actor=contributor, model=model, alias="champion")
    assert not ModelAlias.objects.exists()
    assert AliasHistory.objects.get().removed_at is not None
    with pytest.raises(NotFound):
        delete_alias(actor=contributor, model=model, alias="champion")


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "alias: 'latest' is reserved ('latest' and 'v<number>' name versions)"),
        ("v3", "alias: 'v3' is reserved ('latest' and 'v<number>' name versions)"),
        ("prod env", "alias: 'prod env' may only contain letters, digits, '_' and '-'"),
        ("", "alias: must not be empty"),
    ],
)
def test_invalid_aliases_are_rejected(contributor, model, versions, alias, message):
    with pytest.raises(InvalidInput) as error:
        set_alias(actor=contributor, model=model, alias=alias, version=versions[0])
    assert str(error.value) == message


def test_alias_cannot_point_at_another_models_version(contributor, model, versions):
    other = create_registered_model(actor=contributor, name="other")
    with pytest.raises(InvalidInput, match="belongs to another model"):
        set_alias(actor=contributor, model=other, alias="staging", version=versions[0])


def test_stage_transition_can_archive_the_previous_staging_version(contributor, model, versions):
    v1, v2, _ = versions
    transition_stage(actor=contributor, version=v1, stage="staging")
    transition_stage(actor=contributor, version=v2, stage="Staging", archive_existing_versions=True)
    v1.refresh_from_db()
    assert (v1.stage, v2.stage) == (Stage.ARCHIVED, Stage.STAGING)
    kinds = {(h.kind, h.name, h.version.version, h.removed_at is None) for h in AliasHistory.objects.all()}
    assert kinds == {
        ("stage", "Staging", 1, False),
        ("stage", "Archived", 1, True),
        ("stage", "Staging", 2, True),
    }


def test_unknown_stage_is_rejected(contributor, versions):
    with pytest.raises(InvalidInput) as error:
        transition_stage(actor=contributor, version=versions[0], stage="Prod")
    assert str(error.value) == "stage: 'Prod' is not one of None, Staging, Production, Archived"


def test_every_registry_change_is_audited_with_its_actor(contributor, model, versions):
    set_alias(actor=contributor, model=model, alias="staging", version=versions[0])
    rename_registered_model(actor=contributor, model=model, name="digits-v2")
    delete_model_version(actor=contributor, version=versions[2])
    actions = list(AuditEvent.objects.filter(actor=contributor).values_list("action", flat=True))
    assert actions == [
        "registered_model.created",
        "run.started",
        "run.started",
        "run.started",
        "model_version.created",
        "model_version.created",
        "model_version.created",
        "model_alias.set",
        "registered_model.renamed",
        "model_version.deleted",
    ]
    alias_event = AuditEvent.objects.get(action="model_alias.set")
    assert alias_event.object_id == f"id:{model.pk}"
    assert alias_event.after == {
        "model": "digits-classifier",
        "alias": "staging",
        "version": 1,
        "run": versions[0].run.uuid,
    }


def test_deleting_a_model_keeps_its_record_in_the_audit_trail(contributor, model, versions):
    set_alias(actor=contributor, model=model, alias="staging", version=versions[1])
    delete_registered_model(actor=contributor, model=model)
    event = AuditEvent.objects.get(action="registered_model.deleted")
    assert event.before["aliases"] == {"staging": 2}
    assert [v["version"] for v in event.before["versions"]] == [3, 2, 1]
