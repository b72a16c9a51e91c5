"""History that outlives changes: soft deletes keep alias history, requests and reviews; holders
at a moment on the boundaries; lineage; audit events found across renames, old events untouched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import ProtectedError

from accounts.permissions import SYSTEM_READER
from audit.models import AuditEvent
from audit.services import record_event
from audit.verification import verify_chain
from config.exceptions import AlreadyExists, PermissionDenied
from registry.models import AliasHistory, Label, ModelAlias, ModelVersion, RegisteredModel
from registry.selectors import (
    alias_holders_at,
    alias_timeline,
    audit_events_of,
    get_registered_model,
    lineage_of,
    list_model_versions,
    list_registered_models,
)
from registry.services import (
    create_model_version,
    create_registered_model,
    delete_model_version,
    delete_registered_model,
    force_move,
    rename_registered_model,
    request_promotion,
    restore_model_version,
    restore_registered_model,
    review_promotion,
    set_alias,
    transition_stage,
)

pytestmark = pytest.mark.django_db

PRODUCTION = Label.alias("production")


def test_a_deleted_version_is_hidden_but_its_history_stays(contributor, protected_model, trained_versions):
    v1 = trained_versions[0]
    set_alias(actor=contributor, model=protected_model, alias="staging", version=v1)

    delete_model_version(actor=contributor, version=v1)

    assert [v.version for v in list_model_versions(model=protected_model)] == [3, 2]
    assert ModelVersion.all_objects.get(pk=v1.pk).deleted_by == contributor
    assert not ModelAlias.objects.filter(alias="staging").exists()
    holding = AliasHistory.objects.get(name="staging")
    assert (holding.version_id, holding.removed_by) == (v1.pk, contributor)
    assert holding.removed_at is not None
    event = AuditEvent.objects.get(action="model_version.deleted")
    assert event.before["aliases"] == ["staging"]


def test_deleted_version_numbers_are_never_reused(contributor, run, protected_model, trained_versions):
    delete_model_version(actor=contributor, version=trained_versions[2])
    assert create_model_version(actor=contributor, model=protected_model, run=run).version == 4


def test_a_version_restored_after_deletion_is_in_no_stage_as_its_history_says(
    admin, contributor, trained_versions
):
    """Its stage holding ended at the deletion; the version said Archived all the same."""
    version = trained_versions[0]
    transition_stage(actor=contributor, version=version, stage="Archived")
    delete_model_version(actor=contributor, version=version)
    deleted = AuditEvent.objects.get(action="model_version.deleted")
    assert deleted.before["stage"] == "Archived"  # the event keeps what it had
    restored = restore_model_version(actor=admin, version=ModelVersion.all_objects.get(pk=version.pk))
    assert restored.stage == "None"
    holding = AliasHistory.objects.get(version=version, kind="stage", name="Archived")
    assert holding.removed_at is not None


def test_a_deleted_model_hides_its_versions_frees_its_name_and_an_admin_restores_it(
    admin, contributor, reviewer, protected_model, trained_versions, open_request
):
    delete_model_version(actor=contributor, version=trained_versions[0])
    delete_registered_model(actor=admin, model=protected_model)  # it has a policy of its own

    assert list(list_registered_models(user=SYSTEM_READER)) == []
    assert not ModelVersion.objects.exists()
    open_request.refresh_from_db()
    assert (open_request.status, open_request.closed_reason) == (
        "closed",
        "registered model 'digits' was deleted",
    )
    assert open_request.version_id == trained_versions[1].pk  # the request still names its version

    with pytest.raises(PermissionDenied) as error:
        restore_registered_model(actor=contributor, model=protected_model)
    assert str(error.value) == "Restoring a registered model needs the admin role."

    replacement = create_registered_model(actor=contributor, name="digits")
    with pytest.raises(AlreadyExists) as taken:
        restore_registered_model(actor=admin, model=protected_model)
    assert (
        str(taken.value)
        == "name: registered model 'digits' cannot be restored: another model has that name now"
    )

    rename_registered_model(actor=contributor, model=replacement, name="digits-b")
    restore_registered_model(actor=admin, model=protected_model)
    assert get_registered_model(user=SYSTEM_READER, name="digits") == protected_model
    # Only the versions deleted with the model come back; version 1 was deleted before it.
    assert [v.version for v in list_model_versions(model=protected_model)] == [3, 2]
    restore_model_version(actor=admin, version=ModelVersion.all_objects.get(pk=trained_versions[0].pk))
    assert [v.version for v in list_model_versions(model=protected_model)] == [3, 2, 1]


def test_history_rows_are_never_cascade_deleted(admin, protected_model, trained_versions):
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=trained_versions[0], reason="x")
    with pytest.raises(ProtectedError):
        ModelVersion.all_objects.filter(pk=trained_versions[0].pk).delete()
    with pytest.raises(ProtectedError):
        RegisteredModel.all_objects.filter(pk=protected_model.pk).delete()


# Holders at a moment ---------------------------------------------------------------------------


def test_holders_at_a_moment_on_the_boundaries(admin, contributor, protected_model, trained_versions):
    v1, v2, _ = trained_versions
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=v1, reason="first")
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=v2, reason="second")
    first, second = AliasHistory.objects.filter(name="production").order_by("assigned_at", "pk")
    tick = timedelta(microseconds=1)

    def held_at(at):
        return [
            (h.name, h.version.version, h.request.forced)
            for h in alias_holders_at(model=protected_model, at=at)
        ]

    assert held_at(first.assigned_at - tick) == []
    assert held_at(first.assigned_at) == [("production", 1, True)]
    assert held_at(second.assigned_at - tick) == [("production", 1, True)]
    assert first.removed_at == second.assigned_at
    assert held_at(second.assigned_at) == [("production", 2, True)]  # the instant of a move: the new holder
    assert held_at(second.assigned_at + timedelta(days=365)) == [("production", 2, True)]


def test_the_timeline_lists_each_labels_holders_in_time_order(
    admin, contributor, protected_model, trained_versions
):
    v1, v2, v3 = trained_versions
    set_alias(actor=contributor, model=protected_model, alias="staging", version=v3)
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=v1, reason="first")
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=v2, reason="second")
    rows = [(h.name, h.version.version, h.removed_at is None) for h in alias_timeline(model=protected_model)]
    assert rows == [("production", 1, False), ("production", 2, True), ("staging", 3, True)]


# Lineage -------------------------------------------------------------------------------------


def test_lineage_has_the_run_the_requests_with_reviews_and_the_holdings(
    contributor,
    requester,
    reviewer,
    protected_model,
    trained_versions,
    open_request,
    django_assert_num_queries,
):
    review_promotion(actor=reviewer, request=open_request, decision="approve", comment="solid")
    with django_assert_num_queries(4):
        lineage = lineage_of(version=trained_versions[1])
        reviews = [
            (r.reviewer.username, r.decision, r.comment) for q in lineage.requests for r in q.reviews.all()
        ]
        holdings = [(h.name, h.assigned_by.username, h.request_id) for h in lineage.holdings]
    assert (lineage.run, lineage.registered_by) == (trained_versions[1].run, contributor)
    assert [(q.requester, q.status) for q in lineage.requests] == [(requester, "approved")]
    assert reviews == [("rob-reviewer", "approve", "solid")]
    assert holdings == [("production", "rob-reviewer", open_request.pk)]


# Audit history across renames ----------------------------------------------------------------


def test_audit_history_follows_a_model_across_renames_including_events_named_by_name(
    contributor, experiment, run
):
    """Events written before stable ids named the model; a name later reused by another model
    does not pull that model's events in, and no event is rewritten (the chain still verifies)."""
    model_type, version_type = "registry.registeredmodel", "registry.modelversion"
    legacy = [
        record_event(actor=contributor, action="registered_model.created", object_type=model_type,
                     object_id="alpha", after={"name": "alpha"}),
        record_event(actor=contributor, action="model_version.created", object_type=version_type,
                     object_id="alpha/1", after={"version": 1}),
        record_event(actor=contributor, action="registered_model.renamed", object_type=model_type,
                     object_id="beta", before={"name": "alpha"}, after={"name": "beta"}),
        record_event(actor=contributor, action="model_alias.set", object_type=model_type,
                     object_id="beta", after={"alias": "staging", "version": 1}),
    ]  # fmt: skip
    # As stored (SQLite seals each event as it is written; PostgreSQL's sealer comes later).
    legacy_hashes = [AuditEvent.objects.get(pk=e.pk).hash for e in legacy]
    # The rows as the migration found them.
    model = RegisteredModel.objects.create(name="beta")
    version = ModelVersion.objects.create(model=model, version=1, run=run, source="s")
    other = create_registered_model(actor=contributor, name="alpha")  # the old name, reused
    rename_registered_model(actor=contributor, model=model, name="gamma")
    set_alias(actor=contributor, model=model, alias="staging", version=version)

    model_events = list(audit_events_of(model=model).values_list("action", "object_id"))
    assert model_events == [
        ("registered_model.created", "alpha"),
        ("registered_model.renamed", "beta"),
        ("model_alias.set", "beta"),
        ("registered_model.renamed", f"id:{model.pk}"),
        ("model_alias.set", f"id:{model.pk}"),
    ]
    assert [e.object_id for e in audit_events_of(version=version)] == ["alpha/1"]
    assert list(audit_events_of(model=other).values_list("action", flat=True)) == ["registered_model.created"]
    renamed = AuditEvent.objects.filter(action="registered_model.renamed").last()
    assert (renamed.before, renamed.after) == ({"name": "beta"}, {"model": "gamma", "name": "gamma"})
    assert [AuditEvent.objects.get(pk=e.pk).hash for e in legacy] == legacy_hashes
    assert verify_chain().broken is None


def test_new_events_name_the_version_by_id_with_its_names_in_the_data(
    admin, requester, protected_model, trained_versions
):
    request = request_promotion(
        actor=requester, version=trained_versions[0], label=PRODUCTION, justification="j"
    )
    rename_registered_model(actor=admin, model=protected_model, name="digits-v2")  # its policy: an admin
    event = AuditEvent.objects.get(action="promotion.requested")
    assert event.object_id == f"id:{trained_versions[0].pk}"
    assert (event.after["model"], event.after["version"], event.after["request"]) == ("digits", 1, request.pk)
    actions = [e.action for e in audit_events_of(version=trained_versions[0])]
    assert actions == ["model_version.created", "promotion.requested"]


def test_deleted_versions_are_not_counted_in_the_model_list(contributor, protected_model, trained_versions):
    delete_model_version(actor=contributor, version=trained_versions[0])
    assert [(m.name, m.version_count) for m in list_registered_models(user=SYSTEM_READER)] == [("digits", 2)]
