"""The audit trail over the API: read-only events in sequence order, and chain verification."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import AuditEvent
from tests.api.api_helpers import error


def test_events_show_each_change_with_its_actor(viewer_api, contributor_api, run):
    contributor_api.patch(f"/api/v1/runs/{run.uuid}", {"run_name": "renamed"}, format="json")
    contributor_api.post(
        f"/api/v1/runs/{run.uuid}/log-batch", {"params": [{"key": "lr", "value": "0.1"}]}, format="json"
    )

    body = viewer_api.get(
        "/api/v1/audit/events", {"object_type": "tracker.run", "object_id": run.uuid}
    ).json()

    assert [(e["action"], e["actor"]) for e in body["events"]] == [
        ("run.updated", "carl-contributor"),
        ("run.batch_logged", "carl-contributor"),
    ]
    renamed = body["events"][0]
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("baseline", "renamed")
    assert body["events"][1]["after"]["params"] == {"lr": "0.1"}
    assert (
        body["events"][1]["previous_hash"] == renamed["hash"]
        or body["events"][1]["sequence"] > renamed["sequence"]
    )
    assert body["next_after_sequence"] is None


def test_events_filter_by_action_and_actor(viewer_api, contributor_api, experiment):
    contributor_api.post("/api/v1/experiments", {"name": "one"}, format="json")
    contributor_api.post("/api/v1/experiments", {"name": "two"}, format="json")

    by_action = viewer_api.get("/api/v1/audit/events", {"action": "experiment.created"}).json()["events"]
    by_actor = viewer_api.get("/api/v1/audit/events", {"actor": "nobody"}).json()["events"]

    assert [e["after"]["name"] for e in by_action] == ["one", "two"]
    assert by_actor == []


def test_events_page_by_sequence(viewer_api, contributor_api, db):
    for index in range(5):
        contributor_api.post("/api/v1/experiments", {"name": f"e{index}"}, format="json")

    seen, after = [], 0
    while after is not None:
        body = viewer_api.get(
            "/api/v1/audit/events", {"action": "experiment.created", "after_sequence": after, "limit": 2}
        ).json()
        seen += [e["after"]["name"] for e in body["events"]]
        after = body["next_after_sequence"]

    assert seen == ["e0", "e1", "e2", "e3", "e4"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 0}, "limit: Ensure this value is greater than or equal to 1."),
        ({"limit": 1001}, "limit: Ensure this value is less than or equal to 1000."),
        ({"after_sequence": -1}, "after_sequence: Ensure this value is greater than or equal to 0."),
        ({"after_sequence": "1e99"}, "after_sequence: A valid integer is required."),
    ],
)
def test_bad_event_query_is_a_400(viewer_api, query, message):
    response = viewer_api.get("/api/v1/audit/events", query)

    assert response.status_code == 400
    assert error(response)["message"] == message


def test_verify_reports_an_intact_chain(viewer_api, contributor_api, db):
    contributor_api.post("/api/v1/experiments", {"name": "audited"}, format="json")

    body = viewer_api.get("/api/v1/audit/verify").json()

    assert body == {"ok": True, "checked": AuditEvent.objects.count(), "broken": None}


def test_verify_names_the_first_edited_event(viewer_api, contributor_api, db):
    contributor_api.post("/api/v1/experiments", {"name": "audited"}, format="json")
    event = AuditEvent.objects.get(action="experiment.created")
    # Tamper below the ORM, as someone with database access would.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", event.pk])

    body = viewer_api.get("/api/v1/audit/verify").json()

    assert body["ok"] is False
    assert body["broken"] == {
        "sequence": event.sequence,
        "reason": "content does not match its hash (edited)",
    }


def test_audit_events_cannot_be_written_through_the_api(contributor_api, db):
    response = contributor_api.post("/api/v1/audit/events", {"action": "forged"}, format="json")

    assert response.status_code == 405
