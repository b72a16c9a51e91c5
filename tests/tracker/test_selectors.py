import math

import pytest

from accounts.permissions import SYSTEM_READER
from tracker.selectors import metric_history, metric_series, search_runs
from tracker.services import MetricInput, ParamInput, log_batch, start_run

pytestmark = pytest.mark.django_db


def test_page_columns_cover_every_run_searched_not_just_the_page(contributor, experiment):
    first = start_run(actor=contributor, experiment=experiment, name="first")
    log_batch(actor=contributor, run=first, params=[ParamInput("only_on_first", "1")])
    for index in range(3):
        start_run(actor=contributor, experiment=experiment, name=f"later-{index}")
    page = search_runs(
        user=SYSTEM_READER,
        experiment_ids=[experiment.pk],
        order_by=["attributes.run_name DESC"],
        max_results=2,
    )
    assert "first" not in {data.run.name for data in page.runs}
    assert page.param_keys == ["only_on_first"]


def test_series_is_downsampled_keeping_first_last_and_extremes(contributor, run):
    values = [math.sin(i / 50) for i in range(5000)]
    values[2500] = 10.0  # a spike a reader must see
    for start in range(0, 5000, 1000):
        points = [MetricInput("loss", values[i], step=i, timestamp=i) for i in range(start, start + 1000)]
        log_batch(actor=contributor, run=run, metrics=points)
    series = metric_series(run=run, key="loss", max_points=300)
    assert series.downsampled and series.total_points == 5000
    assert len(series.steps) <= 300
    assert (series.steps[0], series.steps[-1]) == (0, 4999)
    assert 10.0 in series.values


def test_zoomed_series_reads_only_the_window_at_full_resolution(contributor, run):
    log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", i / 1000, step=i) for i in range(1000)])
    series = metric_series(run=run, key="acc", max_points=300, x_range=(100, 199))
    assert not series.downsampled
    assert series.steps == list(range(100, 200))


def test_nan_points_become_gaps_in_a_series(contributor, run):
    points = [MetricInput("x", 1.0, step=0), MetricInput("x", "NaN", step=1), MetricInput("x", 3.0, step=2)]
    log_batch(actor=contributor, run=run, metrics=points)
    assert metric_series(run=run, key="x").values == [1.0, None, 3.0]


def test_metric_history_pages_through_a_long_series_in_order(contributor, run):
    for start in range(0, 3000, 1000):
        points = [MetricInput("loss", float(i), step=i, timestamp=7) for i in range(start, start + 1000)]
        log_batch(actor=contributor, run=run, metrics=points)
    steps, token = [], None
    while True:
        page = metric_history(run=run, key="loss", max_results=700, page_token=token)
        steps.extend(step for step, _, _ in page.points)
        token = page.next_page_token
        if token is None:
            break
    assert steps == list(range(3000))


def test_metric_history_pages_split_a_nan_and_a_zero_sharing_step_and_time(contributor, run):
    log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput("x", 0.0, step=1, timestamp=5), MetricInput("x", "NaN", step=1, timestamp=5)],
    )
    first = metric_history(run=run, key="x", max_results=1)
    second = metric_history(run=run, key="x", max_results=1, page_token=first.next_page_token)
    values = [first.points[0][2], second.points[0][2]]
    assert values[0] == 0.0 and math.isnan(values[1])
    assert second.next_page_token is None


def test_searching_several_experiments_names_an_unknown_one(contributor, experiment):
    from config.exceptions import NotFound

    with pytest.raises(NotFound) as error:
        search_runs(user=SYSTEM_READER, experiment_ids=[experiment.pk, 987654])
    assert str(error.value) == "experiment_id: experiment 987654 does not exist"


def test_runs_from_several_experiments_come_back_together(contributor, experiment):
    from tracker.services import create_experiment

    other = create_experiment(actor=contributor, name="other")
    start_run(actor=contributor, experiment=experiment, name="a")
    start_run(actor=contributor, experiment=other, name="b")
    page = search_runs(
        user=SYSTEM_READER, experiment_ids=[str(experiment.pk), other.pk], order_by=["attributes.run_name"]
    )
    assert [d.run.name for d in page.runs] == ["a", "b"]


def test_unknown_filter_keys_names_metrics_params_and_tags_no_run_logged_once_each():
    from tracker.selectors import KeySets, unknown_filter_keys

    keys = KeySets(params=["lr"], metrics=["val_f1"], tags=["team"], datasets=["digits"])
    text = (
        "metrics.val_f2 > 1 and (params.lr = '1' or params.`batch size` = '2') "
        "and not tags.team = 'x' and metrics.val_f2 < 3 and datasets.version = '2' "
        "and attributes.status = 'X'"
    )
    assert unknown_filter_keys(filter_string=text, key_sets=keys) == ["metrics.val_f2", "params.`batch size`"]
    assert unknown_filter_keys(filter_string="", key_sets=keys) == []


def test_a_syntax_error_carries_its_position_and_text_for_a_caret():
    from tracker.search import FilterSyntaxError, parse_filter

    text = "params.lr = '0.1'\nand metrics.val_f1 >> 0.85"
    with pytest.raises(FilterSyntaxError) as error:
        parse_filter(text)
    assert (error.value.position, error.value.text, error.value.field) == (38, text, "filter")
    assert error.value.message.startswith("Syntax error at position 38 (line 2, column 21)")


@pytest.mark.parametrize("named", [2, 6])  # looked up one by one (up to 4), or in one query
def test_a_users_search_leaves_out_experiments_closed_to_them_and_names_an_unknown_one(
    contributor, viewer, named
):
    from accounts.permissions import Level, set_grant
    from config.exceptions import NotFound
    from tracker.services import create_experiment

    experiments = [create_experiment(actor=contributor, name=f"e{index}") for index in range(named)]
    for experiment in experiments:
        start_run(actor=contributor, experiment=experiment, name=experiment.name)
    closed = experiments[0]
    set_grant(actor=contributor, obj=closed, user=viewer, level=Level.NO_PERMISSIONS, action="closing")
    ids = [experiment.pk for experiment in experiments]
    page = search_runs(user=viewer, experiment_ids=[str(pk) for pk in ids], order_by=["attributes.run_name"])
    assert [data.run.name for data in page.runs] == [f"e{index}" for index in range(1, named)]
    with pytest.raises(NotFound, match="experiment 987654 does not exist"):
        search_runs(user=viewer, experiment_ids=[*ids[1:], 987654])
