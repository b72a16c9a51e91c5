"""find_experiment_keys: the Columns picker's search over the experiments' key sets."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.exceptions import InvalidInput
from config.inputs import TagInput
from tracker.selectors import MAX_KEY_MATCHES, KeyMatches, find_experiment_keys
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    log_batch,
    log_inputs,
    start_run,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(contributor):
    """An experiment whose run logged 120 gradient norms, a few losses in several cases, a
    param, a tag and a dataset whose names say "loss" too."""
    experiment = create_experiment(actor=contributor, name="keys")
    run = start_run(actor=contributor, experiment=experiment, name="r", tags=[TagInput("loss_owner", "x")])
    metrics = [f"layer{i:03d}/grad_norm" for i in range(120)]
    metrics += ["val/Loss", "train_loss", "LOSS_scale", "a_b"]
    log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput(name, 1.0) for name in metrics],
        params=[ParamInput("loss_fn", "ce"), ParamInput("lr", "0.1")],
    )
    log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("loss-weights", "a" * 64, "1")])
    return experiment


def test_a_search_answers_the_first_keys_of_a_kind_and_how_many_match(logged):
    found = find_experiment_keys(experiment_ids=[logged.pk], text="grad_norm", limit=50)
    assert found["metric"] == KeyMatches(keys=[f"layer{i:03d}/grad_norm" for i in range(50)], total=120)
    assert found["param"] == found["tag"] == found["dataset"] == KeyMatches(keys=[], total=0)


def test_a_search_is_a_case_insensitive_substring_in_every_kind(logged):
    found = find_experiment_keys(experiment_ids=[logged.pk], text="LoSs", limit=50)
    assert found["metric"] == KeyMatches(keys=["LOSS_scale", "train_loss", "val/Loss"], total=3)
    assert found["param"] == KeyMatches(keys=["loss_fn"], total=1)
    assert found["tag"] == KeyMatches(keys=["loss_owner"], total=1)
    assert found["dataset"] == KeyMatches(keys=["loss-weights"], total=1)


def test_an_empty_search_answers_the_first_keys_of_every_kind(logged):
    found = find_experiment_keys(experiment_ids=[logged.pk], text="", limit=2)
    # Which two metrics come first is the database's collation's choice (upper case first or not).
    assert (len(found["metric"].keys), found["metric"].total) == (2, 124)
    assert found["param"] == KeyMatches(keys=["loss_fn", "lr"], total=2)


def test_like_wildcards_in_the_text_match_only_themselves(logged):
    assert find_experiment_keys(experiment_ids=[logged.pk], text="_", limit=50)["metric"].total == 123
    assert find_experiment_keys(experiment_ids=[logged.pk], text="a_b", limit=50)["metric"].keys == ["a_b"]
    assert find_experiment_keys(experiment_ids=[logged.pk], text="%", limit=50)["metric"].total == 0


def test_a_key_of_several_experiments_counts_once_and_other_experiments_stay_out(logged, contributor):
    other = create_experiment(actor=contributor, name="other")
    run = start_run(actor=contributor, experiment=other, name="r")
    log_batch(
        actor=contributor, run=run, metrics=[MetricInput("val/Loss", 1.0), MetricInput("other_loss", 1.0)]
    )
    unseen = create_experiment(actor=contributor, name="unseen")
    hidden = start_run(actor=contributor, experiment=unseen, name="r")
    log_batch(actor=contributor, run=hidden, metrics=[MetricInput("secret_loss", 1.0)])
    both = find_experiment_keys(experiment_ids=[logged.pk, other.pk], text="loss", limit=50)
    assert both["metric"] == KeyMatches(keys=["LOSS_scale", "other_loss", "train_loss", "val/Loss"], total=4)


def test_only_the_kinds_asked_for_are_read_in_a_count_and_one_query_per_kind_that_matches(logged):
    with CaptureQueriesContext(connection) as queries:
        found = find_experiment_keys(experiment_ids=[logged.pk], text="lr", limit=50, kinds=["param", "tag"])
    assert found == {"param": KeyMatches(keys=["lr"], total=1), "tag": KeyMatches()}
    assert len(queries) == 2  # the counts, then the params' keys


def test_the_number_of_keys_and_the_kinds_are_bounded(logged):
    for limit in (0, MAX_KEY_MATCHES + 1):
        with pytest.raises(InvalidInput) as refused:
            find_experiment_keys(experiment_ids=[logged.pk], text="", limit=limit)
        assert str(refused.value) == f"limit: must be between 1 and {MAX_KEY_MATCHES}"
    with pytest.raises(InvalidInput) as refused:
        find_experiment_keys(experiment_ids=[logged.pk], text="", limit=5, kinds=["metric", "attr"])
    assert str(refused.value) == "kind: 'attr' is not one of metric, param, tag, dataset"
