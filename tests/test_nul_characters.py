"""A NUL character in a URL is refused at the edge, on every path, instead of reaching PostgreSQL."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/runs/ab%00cd", "path"),
        ("/api/v1/runs?filter=params.x%3D%27a%00%27", "filter"),
        ("/api/2.0/mlflow/runs/get?run_id=ab%00cd", "run_id"),
        ("/api/2.0/mlflow-artifacts/artifacts/0/ab%00cd/artifacts/x.txt", "path"),
    ],
)
def test_api_urls_with_nul_are_a_json_400_naming_the_field(api_client_for, contributor, url, field):
    response = api_client_for(contributor).get(url)
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"{field}: '{field}' must not contain NUL characters",
        "field": field,
    }


def test_a_dashboard_url_with_nul_is_a_400(contributor):
    client = Client()
    client.force_login(contributor)
    response = client.get("/runs/ab%00cd/")
    assert response.status_code == 400


def test_ordinary_urls_pass(api_client_for, contributor):
    assert api_client_for(contributor).get("/api/v1/runs/" + "0" * 32).status_code == 404
