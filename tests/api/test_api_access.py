"""Who may call the API: tokens, sessions, roles; and the schema and docs pages."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import create_api_token, revoke_api_token
from audit.models import AuditEvent
from registry.models import ModelVersion, PromotionRequest, RegisteredModel, Webhook, WebhookDelivery
from tests.api.api_helpers import error, url
from tracker.models import Tag

SAMPLE_PARTS = {
    "experiment_id": "1",
    "run_id": "0" * 32,
    "name": "digit classifier.v2",
    "version": "1",
    "alias": "production",
    "key": "train/loss",
    "path": "model/weights.bin",
    "checkpoint_id": "1",
    "request_id": "1",
    "upload_id": "1",
    "username": "someone",
    "webhook_id": "1",
    "delivery_id": "1",
}


def _api_endpoints() -> list[tuple[str, str]]:
    """(method, route) for every /api/v1 operation, read from the URL configuration itself."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.startswith("api/v1/") and hasattr(pattern.callback, "cls"):
                for method in pattern.callback.cls().allowed_methods:
                    if method not in ("OPTIONS", "HEAD"):
                        found.append((method, route))

    walk(get_resolver().url_patterns, "")
    return sorted(found)


API_ENDPOINTS = _api_endpoints()
WRITE_ENDPOINTS = {(m, r) for m, r in API_ENDPOINTS if m != "GET"}


def _sample_url(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_PARTS[m.group(1)].replace(" ", "%20"), route)


def test_the_api_has_the_endpoints_the_issue_asks_for():
    assert len(API_ENDPOINTS) >= 40
    assert ("POST", "api/v1/runs/<str:run_id>/log-batch") in API_ENDPOINTS
    assert ("GET", "api/v1/audit/events") in API_ENDPOINTS


@pytest.mark.parametrize(("method", "route"), API_ENDPOINTS)
def test_anonymous_request_gets_401_with_the_json_error_shape(anonymous_client, method, route):
    response = anonymous_client.generic(method, _sample_url(route))

    assert response.status_code == 401
    assert error(response) == {
        "error_code": "UNAUTHENTICATED",
        "message": "Authentication credentials were not provided.",
        "field": None,
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("method", "route"), API_ENDPOINTS)
def test_user_without_a_role_gets_403_everywhere(api_client_for, outsider, method, route):
    response = api_client_for(outsider).generic(method, _sample_url(route))

    assert response.status_code == 403
    assert error(response) == {
        "error_code": "PERMISSION_DENIED",
        "message": "Using the API needs the viewer role.",
        "field": None,
    }


@pytest.fixture
def viewer_write_requests(experiment, run, model_version, contributor):
    """One valid request per write operation, so that only the role can refuse it. The last
    element is the action named in "<action> needs the contributor role.", or the whole error
    for an operation that needs another role."""
    Tag.objects.create(run=run, key="team", value="vision")
    model = model_version.model.name
    pending = PromotionRequest.objects.create(
        model=model_version.model,
        version=model_version,
        label_kind="alias",
        label_name="production",
        requester=contributor,
        justification="x",
    )
    # Deleted rows to restore (only the role should refuse it).
    gone = RegisteredModel.all_objects.create(name="gone", deleted_at=timezone.now())
    ModelVersion.all_objects.create(
        model=model_version.model, version=2, run=run, source="s", deleted_at=timezone.now()
    )
    upload = SimpleUploadedFile("notes.txt", b"hello")
    hook = Webhook.objects.create(name="ci", url="https://example.org/h", events=["promotion.requested"])
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=AuditEvent.objects.first(), next_attempt_at=timezone.now(), status="failed"
    )

    def admins_only(action: str) -> dict:
        return {
            "error_code": "PERMISSION_DENIED",
            "field": None,
            "message": f"{action} needs the admin role.",
        }

    return [
        ("POST", "api/v1/experiments", "", {"name": "new"}, "Creating an experiment"),
        ("POST", "api/v1/audit/verify", "", {}, "Checking the audit chain"),
        (
            "PATCH",
            "api/v1/experiments/<str:experiment_id>",
            experiment.pk,
            {"name": "x"},
            "Updating an experiment",
        ),
        ("DELETE", "api/v1/experiments/<str:experiment_id>", experiment.pk, None, "Deleting an experiment"),
        (
            "POST",
            "api/v1/experiments/<str:experiment_id>/restore",
            experiment.pk,
            None,
            "Restoring an experiment",
        ),
        ("POST", "api/v1/runs", "", {"experiment_id": experiment.pk}, "Starting a run"),
        ("PATCH", "api/v1/runs/<str:run_id>", run.uuid, {"status": "FINISHED"}, "Updating a run"),
        ("DELETE", "api/v1/runs/<str:run_id>", run.uuid, None, "Deleting a run"),
        ("POST", "api/v1/runs/<str:run_id>/restore", run.uuid, None, "Restoring a run"),
        (
            "POST",
            "api/v1/runs/<str:run_id>/log-batch",
            run.uuid,
            {"metrics": [{"key": "loss", "value": 1.0, "step": 1, "timestamp": 1}]},
            "Logging to a run",
        ),
        (
            "DELETE",
            "api/v1/runs/<str:run_id>/tags/<path:key>",
            (run.uuid, "team"),
            None,
            "Deleting a run tag",
        ),
        (
            "POST",
            "api/v1/runs/<str:run_id>/datasets",
            run.uuid,
            {"datasets": [{"name": "digits", "digest": "abc123"}]},
            "Logging dataset inputs",
        ),
        ("POST", "api/v1/runs/<str:run_id>/artifacts", run.uuid, {"file": upload}, "Uploading an artifact"),
        (
            "POST",
            "api/v1/uploads",
            "",
            {"file": SimpleUploadedFile("m.csv", b"key,step,value\n")},
            "Uploading metrics",
        ),
        (
            "PUT",
            "api/v1/runs/<str:run_id>/artifacts/<path:path>",
            (run.uuid, "a.txt"),
            b"x",
            "Uploading an artifact",
        ),
        (
            "DELETE",
            "api/v1/runs/<str:run_id>/artifacts/<path:path>",
            (run.uuid, "a.txt"),
            None,
            "Deleting an artifact",
        ),
        ("POST", "api/v1/models", "", {"name": "new model"}, "Registering a model"),
        ("PATCH", "api/v1/models/<str:name>", model, {"description": "d"}, "Updating a registered model"),
        ("DELETE", "api/v1/models/<str:name>", model, None, "Deleting a registered model"),
        (
            "POST",
            "api/v1/models/<str:name>/versions",
            model,
            {"run_id": run.uuid},
            "Registering a model version",
        ),
        (
            "PATCH",
            "api/v1/models/<str:name>/versions/<str:version>",
            (model, 1),
            {"description": "d"},
            "Updating a model version",
        ),
        (
            "DELETE",
            "api/v1/models/<str:name>/versions/<str:version>",
            (model, 1),
            None,
            "Deleting a model version",
        ),
        (
            "POST",
            "api/v1/models/<str:name>/versions/<str:version>/stage",
            (model, 1),
            {"stage": "Staging"},
            "Moving an alias or stage",
        ),
        (
            "PUT",
            "api/v1/models/<str:name>/aliases/<str:alias>",
            (model, "production"),
            {"version": 1},
            "Moving an alias or stage",
        ),
        (
            "DELETE",
            "api/v1/models/<str:name>/aliases/<str:alias>",
            (model, "production"),
            None,
            "Moving an alias or stage",
        ),
        ("PUT", "api/v1/experiments/<str:experiment_id>/permissions/<str:username>",
         (experiment.pk, contributor.username), {"permission": "READ"}, "Granting an experiment permission"),
        ("DELETE", "api/v1/experiments/<str:experiment_id>/permissions/<str:username>",
         (experiment.pk, contributor.username), None, "Removing an experiment permission"),
        ("PUT", "api/v1/models/<str:name>/permissions/<str:username>",
         (model, contributor.username), {"permission": "READ"}, "Granting a registered model permission"),
        ("DELETE", "api/v1/models/<str:name>/permissions/<str:username>",
         (model, contributor.username), None, "Removing a registered model permission"),
        ("POST", "api/v1/models/<str:name>/restore", gone.name, None,
         {"error_code": "PERMISSION_DENIED", "field": None,
          "message": "Restoring a registered model needs the admin role."}),
        ("POST", "api/v1/models/<str:name>/versions/<str:version>/restore", (model, 2), None,
         {"error_code": "PERMISSION_DENIED", "field": None,
          "message": "Restoring a model version needs the admin role."}),
        (
            "POST",
            "api/v1/promotion-requests",
            "",
            {"model": model, "version": 1, "alias": "production", "justification": "x"},
            "Requesting a promotion",
        ),
        ("POST", "api/v1/promotion-requests/<int:request_id>/withdraw", pending.pk, None,
         "Withdrawing a promotion request"),
        (
            "POST",
            "api/v1/promotion-requests/<int:request_id>/reviews",
            pending.pk,
            {"decision": "approve"},
            {
                "error_code": "PERMISSION_DENIED",
                "message": f"request: reviewing promotions of registered model {model!r} "
                "needs the reviewer role",
                "field": "request",
            },
        ),
        (
            "PUT",
            "api/v1/models/<str:name>/policy",
            model,
            {"required_approvals": 2},
            {"error_code": "PERMISSION_DENIED", "field": None,
             "message": "Changing a promotion policy needs the admin role."},
        ),
        (
            "POST",
            "api/v1/models/<str:name>/forced-moves",
            model,
            {"alias": "production", "version": 1, "reason": "x"},
            {"error_code": "PERMISSION_DENIED", "field": None,
             "message": "Forcing a promotion needs the admin role."},
        ),
        ("POST", "api/v1/webhooks", "", {"name": "n", "url": "https://example.org/h",
         "events": ["promotion.requested"]}, admins_only("Adding a webhook")),
        ("PATCH", "api/v1/webhooks/<int:webhook_id>", hook.pk, {"name": "x"}, admins_only("Seeing webhooks")),
        ("DELETE", "api/v1/webhooks/<int:webhook_id>", hook.pk, None, admins_only("Seeing webhooks")),
        ("POST", "api/v1/webhooks/<int:webhook_id>/rotate-secret", hook.pk, {},
         admins_only("Seeing webhooks")),
        ("POST", "api/v1/webhooks/<int:webhook_id>/test", hook.pk, {}, admins_only("Seeing webhooks")),
        ("POST", "api/v1/webhook-deliveries/<int:delivery_id>/redeliver", delivery.pk, {},
         admins_only("Seeing webhook deliveries")),
    ]  # fmt: skip


def _fill(route: str, values) -> str:
    """The route with its <parts> replaced by `values`, each percent-encoded ('/' kept in paths)."""
    values = iter(values if isinstance(values, tuple) else (values,))

    def part(match):
        return quote(str(next(values)), safe="/" if match.group(1) == "path" else "")

    return "/" + re.sub(r"<(\w+):\w+>", part, route)


def test_every_write_endpoint_is_in_the_viewer_write_table(viewer_write_requests):
    assert {(method, route) for method, route, *_ in viewer_write_requests} == WRITE_ENDPOINTS


def test_viewer_gets_403_on_every_write_and_nothing_changes(viewer_api, viewer_write_requests):
    events_before = AuditEvent.objects.count()
    for method, route, values, body, action in viewer_write_requests:
        path = _fill(route, values)
        if isinstance(body, bytes):
            response = viewer_api.generic(method, path, body, content_type="application/octet-stream")
        elif body is not None and "file" in body:
            response = viewer_api.post(path, body, format="multipart")
        else:
            content = "" if body is None else json.dumps(body)
            response = viewer_api.generic(method, path, content, content_type="application/json")

        assert response.status_code == 403, (method, path, response.content)
        expected = action if isinstance(action, dict) else {
            "error_code": "PERMISSION_DENIED",
            "message": f"{action} needs the contributor role.",
            "field": None,
        }  # fmt: skip
        assert error(response) == expected, (method, path)
    assert AuditEvent.objects.count() == events_before


def test_viewer_can_read(viewer_api, run):
    response = viewer_api.get(url("runs/{run_id}", run_id=run.uuid))

    assert response.status_code == 200
    assert response.json()["run_name"] == "baseline"


def test_me_names_the_user_and_role(viewer_api):
    response = viewer_api.get("/api/v1/me")

    assert response.json() == {
        "username": "vera-viewer",
        "email": "vera-viewer@example.test",
        "role": "viewer",
        "is_superuser": False,
    }


def test_revoked_token_gets_401(viewer):
    token, raw = create_api_token(user=viewer, name="laptop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me").status_code == 200

    revoke_api_token(user=viewer, token_id=token.pk)
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert error(response)["message"] == "Invalid or revoked API token."


def test_unknown_token_gets_401(db, anonymous_client):
    anonymous_client.credentials(HTTP_AUTHORIZATION="Bearer llt_not-a-real-token")

    response = anonymous_client.get("/api/v1/experiments")

    assert response.status_code == 401
    assert error(response) == {
        "error_code": "UNAUTHENTICATED",
        "message": "Invalid or revoked API token.",
        "field": None,
    }


def test_browser_session_reads_but_must_send_the_csrf_token_to_write(viewer, contributor):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(contributor)

    assert browser.get("/api/v1/experiments").status_code == 200
    response = browser.post("/api/v1/experiments", {"name": "from the browser"}, format="json")

    assert response.status_code == 403
    assert error(response)["message"].startswith("CSRF Failed")


def test_unknown_api_path_gets_404_as_json(viewer_api):
    response = viewer_api.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert error(response) == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "There is no API endpoint at /api/v1/no-such-thing.",
        "field": None,
    }
    assert "no-store" in response["Cache-Control"]  # as every API answer


def test_method_an_endpoint_does_not_serve_gets_405_as_json(viewer_api):
    response = viewer_api.put("/api/v1/experiments", {}, format="json")

    assert response.status_code == 405
    assert error(response)["error_code"] == "METHOD_NOT_ALLOWED"


def test_openapi_schema_is_served_to_users_with_a_role(viewer_api, anonymous_client):
    response = viewer_api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Lab Ledger API"
    assert schema["paths"]["/api/v1/runs/{run_id}/log-batch"]["post"]["operationId"] == "run_log_batch"
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    assert anonymous_client.get("/api/schema/").status_code == 401


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_its_docs_page_need_the_viewer_role_as_every_endpoint_does(
    client, api_client_for, outsider, path
):
    for response in (api_client_for(outsider).get(path), _logged_in(client, outsider).get(path)):
        assert response.status_code == 403
        assert b"/api/v1/runs" not in response.content and b"swagger-ui" not in response.content
    schema = api_client_for(outsider).get("/api/schema/", {"format": "json"})
    assert b"Using the API needs the viewer role." in schema.content


def _logged_in(client, user):
    client.force_login(user)  # the docs page is opened in a browser, with a session
    return client


def test_docs_page_loads_nothing_from_the_internet(client, viewer):
    client.force_login(viewer)

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), html
    # Swagger UI's start-up script is a file of its own (no inline script under the CSP).
    assert '<script src="/api/docs/?script=">' in html
    script = client.get("/api/docs/", {"script": ""})
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()  # its badge is an image from swagger.io
