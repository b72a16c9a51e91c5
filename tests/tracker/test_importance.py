"""Parameter importance: a random forest's importance and Pearson's r of each varying param for a
metric, over the runs that have a number for it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.models import Run
from tracker.selectors.importance import MIN_IMPORTANCE_RUNS, param_importance
from tracker.selectors.runs import MetricValue, RunData


def run_with(params: dict[str, str], **metrics: float | None) -> RunData:
    return RunData(
        run=Run(name="r"),
        params=params,
        metrics={key: MetricValue(key, v, v is None, 0, 0, v, v, 1) for key, v in metrics.items()},
    )


def sweep(count: int = 24) -> list[RunData]:
    """loss falls with lr; seed is noise; batch_size is the same everywhere."""
    rng = np.random.default_rng(1)
    runs = []
    for index in range(count):
        lr = 0.001 * (index + 1)
        runs.append(
            run_with(
                {"lr": str(lr), "seed": str(int(rng.integers(0, 1000))), "batch_size": "32"},
                loss=1.0 - 10 * lr + rng.normal(0, 0.005),
            )
        )
    return runs


def test_the_param_that_drives_the_metric_comes_first_with_its_sign():
    result = param_importance(runs=sweep(), metric="loss")
    assert [p.key for p in result.params] == ["lr", "seed"]  # batch_size never varies: left out
    lr, seed = result.params
    assert lr.importance > 0.8 > seed.importance
    assert math.isclose(lr.importance + seed.importance, 1.0)
    assert lr.correlation < -0.99  # a higher lr, a lower loss
    assert abs(seed.correlation) < 0.5
    assert result.runs_used == 24 and result.note == ""


def test_a_sweet_spot_in_the_middle_is_important_but_barely_correlated():
    runs = [
        run_with({"lr": str(lr), "wd": str(wd)}, loss=(lr - 0.5) ** 2 + wd * 0.001)
        for lr in np.linspace(0, 1, 11)
        for wd in (0, 1)
    ]
    lr = param_importance(runs=runs, metric="loss").params[0]
    assert lr.key == "lr" and lr.importance > 0.9
    assert abs(lr.correlation) < 0.1


def test_a_text_param_gets_an_importance_but_no_correlation():
    base = {"adam": 0.9, "sgd": 0.6}
    runs = [
        run_with({"optimizer": optimizer, "lr": str(lr)}, acc=base[optimizer] + lr * 0.01)
        for optimizer in ("adam", "sgd")
        for lr in (0.1, 0.2, 0.3)
    ]
    first, second = param_importance(runs=runs, metric="acc").params
    assert (first.key, first.correlation) == ("optimizer", None)
    assert first.importance > second.importance and second.correlation > 0.0


def test_runs_without_a_number_for_the_metric_are_left_out_and_missing_params_are_allowed():
    runs = sweep(6)
    runs += [run_with({"lr": "9"}), run_with({"lr": "9"}, loss=None), run_with({"lr": "9"}, loss=math.inf)]
    runs[0].params.pop("seed")  # a run without a param still counts
    result = param_importance(runs=runs, metric="loss")
    assert result.runs_used == 6
    assert {p.key for p in result.params} == {"lr", "seed"}


def test_the_answer_is_the_same_every_time():
    first = param_importance(runs=sweep(), metric="loss")
    assert param_importance(runs=sweep(), metric="loss") == first


@pytest.mark.parametrize(
    ("runs", "note"),
    [
        (
            sweep(MIN_IMPORTANCE_RUNS - 1),
            f"needs at least {MIN_IMPORTANCE_RUNS} runs with a value for loss; "
            f"{MIN_IMPORTANCE_RUNS - 1} have one",
        ),
        ([run_with({"lr": str(i)}, loss=0.5) for i in range(5)], "loss is the same in every run"),
        ([run_with({"lr": "1"}, loss=float(i)) for i in range(5)], "every run has the same params"),
    ],
    ids=["too-few-runs", "constant-metric", "constant-params"],
)
def test_when_nothing_can_be_weighed_the_answer_says_why(runs, note):
    result = param_importance(runs=runs, metric="loss")
    assert (result.params, result.note) == ([], note)
