"""A JSON string may carry a lone surrogate ("\\ud800"): no database, JSON encoder or client takes
it back. Every text a caller writes refuses it with a 400 naming the field, before anything is
stored (one stored in a run's environment once made its experiment's run list answer 500)."""

from __future__ import annotations

import pytest

from tracker.models import Param, Run, Tag

pytestmark = pytest.mark.django_db

LONE = "\\ud800"  # as the JSON text carries it
MESSAGE = "must not contain a lone surrogate (U+D800 to U+DFFF): it is not text any client can read"


def post(client, url: str, body: str):
    return client.post(url, data=body.encode(), content_type="application/json")


def test_a_run_whose_environment_holds_one_is_refused_and_not_created(
    api_client_for, contributor, experiment
):
    runs = Run.objects.count()
    response = post(
        api_client_for(contributor),
        "/api/v1/runs",
        f'{{"experiment_id": {experiment.pk}, "environment": {{"pip": {{"torch": "2.3{LONE}"}}}}}}',
    )
    assert response.status_code == 400
    assert response.json()["field"] == "environment.pip.torch" and MESSAGE in response.json()["message"]
    assert Run.objects.count() == runs


def test_a_key_of_the_environment_holding_one_is_refused(api_client_for, contributor, experiment):
    body = f'{{"experiment_id": {experiment.pk}, "environment": {{"k{LONE}": "1"}}}}'
    response = post(api_client_for(contributor), "/api/v1/runs", body)
    assert (response.status_code, response.json()["field"]) == (400, "environment")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{"params": [{{"key": "lr", "value": "0.1{LONE}"}}]}}', "params[0].value"),
        (f'{{"tags": [{{"key": "team", "value": "{LONE}"}}]}}', "tags[0].value"),
    ],
    ids=["param", "tag"],
)
def test_a_native_batch_with_one_is_refused_naming_the_field(api_client_for, contributor, run, body, field):
    response = post(api_client_for(contributor), f"/api/v1/runs/{run.uuid}/log-batch", body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Param.objects.filter(run=run).exists() and not Tag.objects.filter(run=run, key="team").exists()


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("runs/log-parameter", '{{"run_id": "{run}", "key": "lr", "value": "{lone}"}}'),
        ("runs/set-tag", '{{"run_id": "{run}", "key": "team", "value": "{lone}"}}'),
    ],
    ids=["log-parameter", "set-tag"],
)
def test_the_mlflow_api_refuses_one_too(api_client_for, contributor, run, endpoint, body):
    response = post(
        api_client_for(contributor),
        f"/api/2.0/mlflow/{endpoint}",
        body.format(run=run.uuid, lone=LONE),
    )
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "surrogate" in response.json()["message"]  # its JSON parser already refuses it
    assert not Param.objects.filter(run=run).exists() and not Tag.objects.filter(run=run, key="team").exists()
