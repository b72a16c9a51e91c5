"""Audit tests name events by number, so the audit sequence restarts at 1 in each test.

Test transactions roll back, but a PostgreSQL sequence does not; without this the numbers
would depend on which tests ran before.
"""

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def audit_numbers_start_at_one(request):
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    transactional = "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval('audit_event_sequence', 1, false)")
