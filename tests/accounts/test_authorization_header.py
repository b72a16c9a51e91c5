"""Both APIs read `Authorization` through one parser (config.http.authorization): a header one
of them accepts or refuses, the other reads the same way."""

import pytest
from django.test import Client, RequestFactory

from accounts.services import create_api_token
from config.http import authorization

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("Bearer abc", ("bearer", "abc")),
        ("bEaReR   abc  ", ("bearer", "abc")),
        ("Bearer", ("bearer", "")),
        ("Bearer    ", ("bearer", "")),
        ("Basic dTpw", ("basic", "dTpw")),
        (" Bearer abc", ("", "Bearer abc")),
        ("   ", ("", "")),
    ],
)
def test_authorization_header_splits_into_scheme_and_credentials(header, parsed):
    assert authorization(RequestFactory().get("/", HTTP_AUTHORIZATION=header)) == parsed


def test_no_authorization_header_is_none():
    assert authorization(RequestFactory().get("/")) is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_token_with_any_scheme_case_and_padding_works_on_both_apis(contributor, scheme):
    _, raw = create_api_token(user=contributor)
    header = f"{scheme}   {raw}  "
    native = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    mlflow = Client().get("/api/2.0/mlflow/experiments/search?max_results=1", HTTP_AUTHORIZATION=header)
    assert (native.status_code, native.json()["username"]) == (200, contributor.username)
    assert mlflow.status_code == 200


@pytest.mark.parametrize("header", ["Bearer", "Bearer    ", "Bearer llt_not-a-token"])
def test_an_empty_or_unknown_bearer_token_is_refused_by_both_apis(header):
    native = Client().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    mlflow = Client().get("/api/2.0/mlflow/experiments/search?max_results=1", HTTP_AUTHORIZATION=header)
    assert (native.status_code, mlflow.status_code) == (401, 401)
    expected = "Invalid or revoked API token." if header.strip() != "Bearer" else "Empty bearer token."
    assert native.json()["message"] == expected
    assert mlflow.json()["message"].startswith("Invalid credentials")
