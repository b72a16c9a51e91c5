import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_health_check_is_public_and_checks_the_database(client):
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"OK")


def test_health_check_reports_an_unreachable_database():
    """A server whose database is down answers 503, so a load balancer takes it out."""
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "503 database unavailable", result.stderr[-2000:]
