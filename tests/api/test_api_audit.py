"""The audit trail over the API: read-only events in sequence order, and chain verification."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection

from audit.checkpoints import public_key_text
from audit.models import AuditEvent, AuditVerification
from audit.offline_verify import verify
from audit.sealing import seal_events
from audit.services import make_checkpoint
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


def _check_now(client, captured, **body):
    """POST a check; the worker task runs when the request's transaction commits (eager here)."""
    with captured(execute=True):
        response = client.post("/api/v1/audit/verify", body, format="json")
    assert response.status_code == 202
    return response.json()


def test_verify_reports_an_intact_chain(viewer_api, contributor_api, db, django_capture_on_commit_callbacks):
    contributor_api.post("/api/v1/experiments", {"name": "audited"}, format="json")
    events_before_check = AuditEvent.objects.count()

    queued = _check_now(contributor_api, django_capture_on_commit_callbacks)
    body = viewer_api.get("/api/v1/audit/verify").json()

    assert (queued["status"], queued["ok"]) == ("pending", None)
    assert (body["id"], body["status"], body["mode"]) == (queued["id"], "done", "incremental")
    assert (body["ok"], body["checked"], body["broken"]) == (True, events_before_check, None)


def test_verify_names_the_first_edited_event(
    viewer_api, contributor_api, db, django_capture_on_commit_callbacks
):
    contributor_api.post("/api/v1/experiments", {"name": "audited"}, format="json")
    seal_events()
    event = AuditEvent.objects.get(action="experiment.created")
    # Tamper below the ORM, as someone with database access would.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", event.pk])

    _check_now(contributor_api, django_capture_on_commit_callbacks, full=True)
    body = viewer_api.get("/api/v1/audit/verify").json()

    assert (body["ok"], body["mode"]) == (False, "full")
    assert body["broken"] == {
        "sequence": event.sequence,
        "reason": "content does not match its hash (edited)",
    }


def test_audit_events_cannot_be_written_through_the_api(contributor_api, db):
    response = contributor_api.post("/api/v1/audit/events", {"action": "forged"}, format="json")

    assert response.status_code == 405


# Search, export, checkpoints and the stored check ------------------------------------------------


def test_verify_answers_from_the_stored_result_without_walking_the_chain(
    viewer_api, contributor_api, db, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    contributor_api.post("/api/v1/experiments", {"name": "audited"}, format="json")
    _check_now(contributor_api, django_capture_on_commit_callbacks)
    # Edited after the check: the stored result still says what the check found, until the next one.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'mallory'")

    with django_assert_max_num_queries(4):
        body = viewer_api.get("/api/v1/audit/verify").json()

    assert body["ok"] is True


def test_verify_before_any_check_is_a_404_saying_how_to_start_one(viewer_api, db):
    response = viewer_api.get("/api/v1/audit/verify")

    assert response.status_code == 404
    assert error(response)["message"] == (
        "no check of the audit chain has finished yet; POST /api/v1/audit/verify to start one."
    )


def test_a_waiting_check_is_shared_rather_than_queued_twice(api_client_for, reviewer, contributor_api, db):
    first = api_client_for(reviewer).post("/api/v1/audit/verify", {}, format="json").json()
    second = contributor_api.post("/api/v1/audit/verify", {}, format="json").json()

    assert first["id"] == second["id"]
    assert AuditVerification.objects.count() == 1


def test_asking_for_a_check_needs_the_contributor_role(viewer_api, anonymous_client, db):
    assert anonymous_client.post("/api/v1/audit/verify", {}, format="json").status_code == 401
    response = viewer_api.post("/api/v1/audit/verify", {}, format="json")

    assert response.status_code == 403
    assert error(response)["message"] == "Checking the audit chain needs the contributor role."
    assert AuditVerification.objects.count() == 0


def test_bad_verify_body_is_a_400_naming_the_field(contributor_api, db):
    response = contributor_api.post("/api/v1/audit/verify", {"full": "perhaps"}, format="json")

    assert response.status_code == 400
    assert error(response)["message"] == "full: Must be a valid boolean."


def _experiments(client, *names):
    """Create experiments and seal their events, as the sealer does within seconds."""
    for name in names:
        assert client.post("/api/v1/experiments", {"name": name}, format="json").status_code == 201
    seal_events()


def test_events_filter_by_date_range_and_several_object_ids(viewer_api, contributor_api, db):
    _experiments(contributor_api, "one", "two", "three")
    created = list(AuditEvent.objects.filter(action="experiment.created").order_by("sequence"))
    ids = [created[0].object_id, created[2].object_id]

    by_ids = viewer_api.get(
        "/api/v1/audit/events", {"object_type": created[0].object_type, "object_id": ids}
    ).json()["events"]
    in_range = viewer_api.get(
        "/api/v1/audit/events",
        {
            "action": "experiment.created",
            "since": created[1].created_at.isoformat(),
            "until": created[2].created_at.isoformat(),
        },
    ).json()["events"]

    assert [e["after"]["name"] for e in by_ids] == ["one", "three"]
    assert [e["after"]["name"] for e in in_range] == ["two"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "yesterday"}, "since: Datetime has wrong format."),
        (
            {"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"},
            "until: must be later than since.",
        ),
        ({"actor": "x" * 151}, "actor: Ensure this field has no more than 150 characters."),
        ({"format": "xlsx"}, 'format: "xlsx" is not a valid choice.'),
    ],
)
def test_bad_export_query_is_a_400_naming_the_field(viewer_api, db, query, message):
    response = viewer_api.get("/api/v1/audit/events/export", query)

    assert response.status_code == 400
    assert error(response)["message"].startswith(message)


def test_the_csv_export_streams_every_matching_event(viewer_api, contributor_api, db):
    _experiments(contributor_api, "=cmd|' /C calc'!A0", "plain")

    response = viewer_api.get("/api/v1/audit/events/export", {"action": "experiment.created"})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["experiment.created", "experiment.created"]
    # A cell a spreadsheet would run as a formula is quoted; the JSON cell carries the name.
    assert json.loads(rows[0]["after"])["name"] == "=cmd|' /C calc'!A0"
    assert json.loads(rows[1]["after"])["name"] == "plain"


def test_a_text_cell_that_looks_like_a_formula_is_quoted_in_the_csv(viewer_api, api_client_for, db):
    from accounts.roles import Role
    from accounts.services import assign_role
    from tests.factories import UserFactory

    hostile = UserFactory(username="=HYPERLINK(1)")
    assign_role(user=hostile, role=Role.CONTRIBUTOR)
    _experiments(api_client_for(hostile), "x")

    response = viewer_api.get("/api/v1/audit/events/export", {"action": "experiment.created"})
    [row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))

    assert row["actor"] == "'=HYPERLINK(1)"


def test_the_jsonl_export_verifies_offline_with_the_checkpoints(viewer_api, contributor_api, db, tmp_path):
    _experiments(contributor_api, "one", "two")
    make_checkpoint()
    _experiments(contributor_api, "three")
    make_checkpoint()

    export = b"".join(viewer_api.get("/api/v1/audit/events/export", {"format": "jsonl"}).streaming_content)
    checkpoints = b"".join(viewer_api.get("/api/v1/audit/checkpoints/download").streaming_content)
    key = viewer_api.get("/api/v1/audit/public-key").content
    (tmp_path / "export.jsonl").write_bytes(export)
    (tmp_path / "checkpoints.jsonl").write_bytes(checkpoints)
    (tmp_path / "key.pub").write_bytes(key)

    status, verdict = verify(
        tmp_path / "export.jsonl", [tmp_path / "key.pub"], [tmp_path / "checkpoints.jsonl"]
    )

    total = AuditEvent.objects.count()
    assert (status, verdict) == (
        0,
        f"INTACT: events #1-#{total} verified ({total}); signed checkpoints matched: 2",
    )


def test_the_export_is_streamed_from_a_cursor_in_constant_queries(
    viewer_api, contributor_api, db, django_assert_max_num_queries
):
    _experiments(contributor_api, *[f"e{i}" for i in range(30)])

    # Two of them ask whether any experiment or model is closed to the viewer (audit.visibility).
    with django_assert_max_num_queries(6):
        response = viewer_api.get("/api/v1/audit/events/export", {"format": "jsonl"})
        lines = b"".join(response.streaming_content).splitlines()

    assert len(lines) == AuditEvent.objects.count()


def test_checkpoints_list_newest_first_with_the_signed_document(
    viewer_api, contributor_api, db, django_assert_max_num_queries
):
    _experiments(contributor_api, "one")
    older = make_checkpoint()
    _experiments(contributor_api, "two")
    newer = make_checkpoint()

    with django_assert_max_num_queries(3):
        body = viewer_api.get("/api/v1/audit/checkpoints").json()

    assert [c["id"] for c in body["checkpoints"]] == [newer.pk, older.pk]
    first = body["checkpoints"][0]
    assert (first["sequence"], first["hash"]) == (newer.sequence, newer.hash)
    assert first["checkpoint"]["payload"]["heads"] == [
        {"chain": "main", "sequence": newer.sequence, "hash": newer.hash}
    ]


def test_one_checkpoint_downloads_as_its_signed_line(viewer_api, contributor_api, db):
    _experiments(contributor_api, "one")
    checkpoint = make_checkpoint()

    response = viewer_api.get(f"/api/v1/audit/checkpoints/{checkpoint.pk}")

    assert response["Content-Disposition"] == f'attachment; filename="audit-checkpoint-{checkpoint.pk}.json"'
    assert b"".join(response.streaming_content).decode() == checkpoint.document + "\n"


def test_an_unknown_checkpoint_is_a_404_naming_it(viewer_api, db):
    response = viewer_api.get("/api/v1/audit/checkpoints/999")

    assert response.status_code == 404
    assert error(response)["message"] == "checkpoint_id: checkpoint 999 does not exist."


def test_the_public_key_downloads_as_pem(viewer_api, db):
    response = viewer_api.get("/api/v1/audit/public-key")

    assert response["Content-Type"] == "application/x-pem-file"
    assert response.content.decode() == public_key_text()
    assert response.content.startswith(b"-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit/events/export",
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/checkpoints/download",
        "/api/v1/audit/public-key",
        "/api/v1/audit/verify",
    ],
)
def test_every_audit_read_needs_the_viewer_role(api_client_for, outsider, anonymous_client, path):
    assert anonymous_client.get(path).status_code == 401
    assert api_client_for(outsider).get(path).status_code == 403


def test_the_schema_lists_the_audit_endpoints_with_their_errors(viewer_api, db):
    schema = viewer_api.get("/api/schema/", {"format": "json"}).json()

    for path in (
        "/api/v1/audit/events/export",
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/checkpoints/{checkpoint_id}",
        "/api/v1/audit/checkpoints/download",
        "/api/v1/audit/public-key",
    ):
        expected = {"200", "400", "401", "403"} | ({"404"} if "{" in path else set())
        assert set(schema["paths"][path]["get"]["responses"]) == expected, path
    verify_path = schema["paths"]["/api/v1/audit/verify"]
    assert "202" in verify_path["post"]["responses"] and "404" in verify_path["get"]["responses"]


def test_a_format_parameter_on_a_json_list_is_ignored_not_a_404(viewer_api, db):
    response = viewer_api.get("/api/v1/audit/events", {"format": "jsonl"})
    assert response.status_code == 200 and "events" in response.json()


def test_the_audit_pages_export_refuses_an_unknown_format_as_the_api_does(client, viewer):
    client.force_login(viewer)
    response = client.get("/audit/export/", {"format": "xml"})
    assert (response.status_code, response.content) == (400, b"format: 'xml' is not one of csv, jsonl")
    assert client.get("/audit/export/", {"format": "jsonl"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "schema_path"),
    [
        ("/api/v1/audit/events/export?format=csv", "/api/v1/audit/events/export"),
        ("/api/v1/audit/events/export?format=jsonl", "/api/v1/audit/events/export"),
        ("/api/v1/audit/checkpoints/download", "/api/v1/audit/checkpoints/download"),
        ("/api/v1/audit/checkpoints/{id}", "/api/v1/audit/checkpoints/{checkpoint_id}"),
        ("/api/v1/audit/public-key", "/api/v1/audit/public-key"),
    ],
)
def test_the_audit_files_have_the_content_types_the_schema_documents(
    viewer_api, contributor_api, path, schema_path
):
    _experiments(contributor_api, "one")
    checkpoint = make_checkpoint()
    schema = viewer_api.get("/api/schema/", {"format": "json"}).json()
    documented = set(schema["paths"][schema_path]["get"]["responses"]["200"]["content"])

    response = viewer_api.get(path.format(id=checkpoint.pk))

    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] in documented
