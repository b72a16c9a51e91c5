"""The run table's column picker: which metric and param columns show, kept in the URL."""

import pytest
from django.urls import reverse

from dashboard.tables import choose_columns
from tracker.services import MetricInput, ParamInput, log_batch, start_run


def test_without_a_choice_every_column_shows_metrics_first():
    choices = choose_columns(param_keys=["lr"], metric_keys=["val_f1"], chosen=None)
    assert [(c.value, c.shown) for c in choices] == [("metric:val_f1", True), ("param:lr", True)]


def test_a_choice_shows_only_the_named_columns():
    choices = choose_columns(param_keys=["lr", "wd"], metric_keys=["loss"], chosen=["param:wd"])
    assert [c.value for c in choices if c.shown] == ["param:wd"]


@pytest.mark.django_db
def test_run_table_shows_only_picked_columns_and_keeps_them_in_sort_links(
    viewer_client, contributor, experiment
):
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput("val_f1", 0.9), MetricInput("loss", 0.1)],
        params=[ParamInput("lr", "0.1"), ParamInput("batch size", "32")],
    )
    url = reverse("dashboard:run-table", args=[experiment.pk])
    response = viewer_client.get(url, {"columns_set": "1", "columns": ["metric:val_f1", "param:lr"]})
    html = response.content.decode()
    assert response.status_code == 200
    assert ">val_f1<" in html and ">lr<" in html
    assert ">loss<" not in html
    # Hidden columns stay in the picker, unchecked.
    assert '<input type="checkbox" name="columns" value="param:batch size"> <span' in html
    assert '<input type="checkbox" name="columns" value="param:lr" checked>' in html
    assert "columns=metric%3Aval_f1" in html  # sort links keep the choice


@pytest.mark.django_db
def test_an_empty_choice_hides_every_metric_and_param_column(viewer_client, contributor, experiment):
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    log_batch(
        actor=contributor, run=run, metrics=[MetricInput("val_f1", 0.9)], params=[ParamInput("lr", "0.1")]
    )
    url = reverse("dashboard:run-table", args=[experiment.pk])
    html = viewer_client.get(url, {"columns_set": "1"}).content.decode()
    assert "Metrics (latest)" not in html and ">r1<" in html
