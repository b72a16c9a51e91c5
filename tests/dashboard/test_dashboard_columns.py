"""The run table's column picker: which metric and param columns show, kept in the URL."""

import csv
import io

import pytest
from django.urls import reverse

from dashboard.tables import choose_columns
from tracker.selectors import KeySets
from tracker.services import MetricInput, ParamInput, log_batch, start_run


def shown(choices) -> list[str]:
    return [c.value for c in choices if c.shown]


def test_without_a_choice_the_usual_attributes_latest_metrics_params_and_datasets_show():
    keys = KeySets(params=["lr"], metrics=["val_f1"], tags=["team"], datasets=["digits"])
    choices = choose_columns(key_sets=keys, chosen=None)
    assert shown(choices) == [
        "attr:status", "attr:start", "attr:duration", "attr:user",
        "metric:val_f1", "param:lr", "dataset:digits",
    ]  # fmt: skip
    hidden = [c.value for c in choices if not c.shown]
    assert hidden == [
        "attr:experiment", "attr:commit", "attr:run_id", "metric_min:val_f1", "metric_max:val_f1", "tag:team"
    ]  # fmt: skip


def test_a_table_of_several_experiments_shows_the_experiment_column_by_default():
    choices = choose_columns(key_sets=KeySets(), chosen=None, several_experiments=True)
    assert "attr:experiment" in shown(choices)


def test_a_choice_shows_only_the_named_columns():
    keys = KeySets(params=["lr", "wd"], metrics=["loss"])
    choices = choose_columns(key_sets=keys, chosen=["param:wd", "metric_min:loss", "attr:commit"])
    assert shown(choices) == ["attr:commit", "metric_min:loss", "param:wd"]


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
    table = html.split("<table")[1]
    assert ">val_f1<" in table and ">lr<" in table
    assert ">loss<" not in table
    # Hidden columns stay in the picker, unchecked.
    assert '<input type="checkbox" name="columns" value="param:batch size"> batch size' in html
    assert '<input type="checkbox" name="columns" value="param:lr" checked> lr' in html
    assert "columns=metric%3Aval_f1" in html  # sort links keep the choice


@pytest.mark.django_db
def test_an_empty_choice_hides_every_metric_and_param_column(viewer_client, contributor, experiment):
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    log_batch(
        actor=contributor, run=run, metrics=[MetricInput("val_f1", 0.9)], params=[ParamInput("lr", "0.1")]
    )
    url = reverse("dashboard:run-table", args=[experiment.pk])
    html = viewer_client.get(url, {"columns_set": "1"}).content.decode()
    assert 'class="column-groups"' not in html and ">r1<" in html
    assert 'class="metric' not in html.split("<table")[1]


@pytest.mark.django_db
def test_a_run_of_many_metrics_shows_the_first_thirty_and_says_where_the_rest_are(
    viewer_client, contributor, experiment
):
    """Thousands of metric columns made pages of tens of megabytes; the rest are one pick away."""
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    names = [f"layer{i:03d}/grad_norm" for i in range(120)]
    log_batch(actor=contributor, run=run, metrics=[MetricInput(name, 1.0) for name in names])
    html = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk])).content.decode()
    header = html.split("<table")[1].split("</thead>")[0]
    assert [name for name in names if f">{name}<" in header] == names[:30]
    assert "Showing the first 30 of 120 metrics: pick others under Columns." in html
    last = "layer119/grad_norm"
    assert f'value="metric:{last}"' not in html  # the picker lists the first 50; the rest are found
    assert "and 70 more metrics — type to find them" in html
    found = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk]), {"find_column": "119"})
    assert f'<input type="checkbox" name="columns" value="metric:{last}"> {last}' in found.content.decode()
    picked = viewer_client.get(
        reverse("dashboard:run-table", args=[experiment.pk]),
        {"columns_set": "1", "columns": ["metric:layer119/grad_norm"]},
    ).content.decode()
    assert ">layer119/grad_norm<" in picked.split("<table")[1] and "default-columns-note" not in picked
    # A CSV export has no page to keep small: without a pick it holds every key.
    export = viewer_client.get(reverse("dashboard:run-export"), {"experiments": experiment.pk})
    header = next(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [name for name in names if f"metrics.{name}" in header] == names
