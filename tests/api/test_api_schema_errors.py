"""Every operation of /api/schema/ documents the errors it can answer with, in the error body's
shape (issue #11 §2); the fuzzer (test_api_schema_fuzz.py) then checks that it answers only
with those."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

ERROR_BODY = "#/components/schemas/Error"


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_operation_documents_its_error_statuses_with_the_error_body(viewer_api):
    schema = viewer_api.get("/api/schema/", {"format": "json"}).json()
    error = schema["components"]["schemas"]["Error"]
    assert {"error_code", "message", "field"} <= set(error["properties"])
    operations = _operations(schema)
    assert len(operations) > 50  # the whole API, not an empty schema
    missing = []
    for path, method, operation in operations:
        expected = {"400", "401", "403"}
        expected |= {"404"} if "{" in path else set()
        expected |= {"409", "413", "415"} if method in ("post", "put", "patch") else set()
        responses = operation["responses"]
        for status in sorted(expected):
            body = responses.get(status, {}).get("content", {}).get("application/json", {})
            if body.get("schema", {}).get("$ref") != ERROR_BODY:
                missing.append(f"{method.upper()} {path} {status}")
    assert not missing, missing
