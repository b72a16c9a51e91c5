"""The admin browses every model but changes nothing: changes go through audited services."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tracker.services import MetricInput, ParamInput, log_batch

pytestmark = pytest.mark.django_db

APPS = {"accounts", "tracker", "registry", "audit"}
BROWSABLE = [model for model in admin.site._registry if model._meta.app_label in APPS]


def _log(run, contributor) -> None:
    log_batch(
        actor=contributor, run=run, metrics=[MetricInput("loss", 0.5)], params=[ParamInput("lr", "0.1")]
    )


@pytest.mark.parametrize("model", BROWSABLE, ids=lambda m: m._meta.label)
def test_admin_lists_each_model_and_offers_no_add(admin_client, model, run, contributor):
    _log(run, contributor)
    opts = model._meta
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403


def test_run_admin_page_shows_params_and_summaries_read_only(admin_client, run, contributor):
    _log(run, contributor)
    response = admin_client.get(reverse("admin:tracker_run_change", args=[run.pk]))
    assert response.status_code == 200
    assert b"lr" in response.content and b"loss" in response.content
    response = admin_client.post(reverse("admin:tracker_run_change", args=[run.pk]), {"name": "renamed"})
    assert response.status_code == 403
