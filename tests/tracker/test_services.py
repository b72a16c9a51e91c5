"""Tracker services: validation that names the field, immutability, summaries, audit events."""

import math

import pytest

from audit.models import AuditEvent
from config.exceptions import AlreadyExists, Conflict, InvalidInput, PermissionDenied
from config.inputs import TagInput
from tracker.models import (
    DEFAULT_EXPERIMENT_ID,
    Experiment,
    MetricKey,
    MetricPoint,
    MetricSummary,
    Param,
    Run,
    Tag,
)
from tracker.selectors import metric_history, run_detail
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    finish_run,
    log_batch,
    log_inputs,
    restore_experiment,
    restore_run,
    start_run,
    update_experiment,
    update_metric_summaries,
)

pytestmark = pytest.mark.django_db


def test_default_experiment_always_exists():
    assert Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID).name == "Default"


def test_default_experiment_cannot_be_deleted(contributor):
    default = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    with pytest.raises(InvalidInput, match="the default experiment cannot be deleted"):
        delete_experiment(actor=contributor, experiment=default)


def test_experiment_names_are_unique(contributor):
    create_experiment(actor=contributor, name="sweep")
    with pytest.raises(AlreadyExists) as error:
        create_experiment(actor=contributor, name="sweep")
    assert str(error.value) == "name: an experiment named 'sweep' already exists"


def test_renaming_an_experiment_is_audited(contributor):
    experiment = create_experiment(actor=contributor, name="old")
    update_experiment(actor=contributor, experiment=experiment, name="new")
    event = AuditEvent.objects.get(action="experiment.renamed")
    assert (event.before, event.after, event.actor_name) == (
        {"name": "old"},
        {"name": "new"},
        contributor.username,
    )


def test_started_run_gets_a_32_hex_id_and_a_generated_name(contributor, experiment):
    run = start_run(actor=contributor, experiment=experiment)
    assert len(run.uuid) == 32 and int(run.uuid, 16) >= 0
    assert run.name.count("-") == 2
    assert run.user == contributor
    assert run.artifact_uri == f"mlflow-artifacts:/{experiment.pk}/{run.uuid}/artifacts"


def test_viewer_cannot_start_a_run(viewer, experiment):
    with pytest.raises(PermissionDenied) as error:
        start_run(actor=viewer, experiment=experiment)
    assert str(error.value) == "Starting a run needs the contributor role."


def test_outsider_cannot_log_to_a_run(outsider, run):
    with pytest.raises(PermissionDenied):
        log_batch(actor=outsider, run=run, metrics=[MetricInput("loss", 1.0)])
    assert not MetricPoint.objects.exists()


def test_a_viewers_lone_point_is_refused_by_the_checked_path_with_nothing_written(viewer, run):
    """A lone point first tries its one statement; a viewer's role alone rules that out, and the
    refusal is the checked path's own, with no point, summary or event stored."""
    events = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied) as error:
        log_batch(actor=viewer, run=run, metrics=[MetricInput("loss", 1.0)])
    assert str(error.value) == "Logging to a run needs the contributor role."
    assert not MetricPoint.objects.exists() and not MetricSummary.objects.exists()
    assert AuditEvent.objects.count() == events


def test_param_relogged_with_same_value_is_accepted(contributor, run):
    log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.01")])
    log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.01")])
    assert Param.objects.get(run=run, key="lr").value == "0.01"


def test_param_relogged_with_a_different_value_names_key_and_both_values(contributor, run):
    log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.01")])
    with pytest.raises(Conflict) as error:
        log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.1")])
    assert (
        str(error.value)
        == "params.lr: param 'lr' was already logged as '0.01'; it cannot be changed to '0.1'"
    )
    assert error.value.field == "params.lr"


def test_failed_batch_stores_nothing(contributor, run):
    log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.01")])
    with pytest.raises(Conflict):
        log_batch(
            actor=contributor,
            run=run,
            metrics=[MetricInput("loss", 0.5, step=1)],
            params=[ParamInput("lr", "0.2")],
            tags=[TagInput("team", "nlp")],
        )
    assert not MetricPoint.objects.exists()
    assert not MetricSummary.objects.exists()
    assert not Tag.objects.filter(run=run).exists()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"metrics": [MetricInput("bad key!", 1.0)]}, "metrics[0].key: 'bad key!' may only contain letters"),
        (
            {"metrics": [MetricInput("a/../b", 1.0)]},
            "metrics[0].key: 'a/../b' must be a normalised relative path",
        ),
        (
            {"metrics": [MetricInput("k" * 251, 1.0)]},
            "metrics[0].key: is 251 characters long; the limit is 250",
        ),
        ({"metrics": [MetricInput("loss", "high")]}, "metrics[0].value: must be a number, not 'high'"),
        ({"metrics": [MetricInput("loss", True)]}, "metrics[0].value: must be a number, not a boolean"),
        ({"metrics": [MetricInput("loss", 1.0, step="x")]}, "metrics[0].step: must be an integer, not 'x'"),
        (
            {"metrics": [MetricInput("loss", 1.0, step=2**63)]},
            "metrics[0].step: 9223372036854775808 is outside",
        ),
        (
            {"metrics": [MetricInput("loss", 1.0, timestamp=-5)]},
            "metrics[0].timestamp: -5 is outside the range",
        ),
        (
            {"params": [ParamInput("lr", "x" * 6001)]},
            "params[0].value: is 6001 characters long; the limit is 6000",
        ),
        (
            {"tags": [TagInput("note", "x" * 8001)]},
            "tags[0].value: is 8001 characters long; the limit is 8000",
        ),
        (
            {"metrics": [MetricInput("m", 1.0, step=i) for i in range(1001)]},
            "metrics: 1001 items in one batch",
        ),
        ({"params": [ParamInput(f"p{i}", "1") for i in range(101)]}, "params: 101 items in one batch"),
        ({"tags": [TagInput(f"t{i}", "1") for i in range(101)]}, "tags: 101 items in one batch"),
        (
            {"params": [ParamInput("lr", "1"), ParamInput("lr", "2")]},
            "params[1].value: param 'lr' appears twice in the batch with different values ('1' and '2')",
        ),
    ],
)
def test_invalid_batches_are_rejected_naming_the_field(contributor, run, batch, message):
    with pytest.raises(InvalidInput) as error:
        log_batch(actor=contributor, run=run, **batch)
    assert str(error.value).startswith(message)
    assert not MetricPoint.objects.exists()


def test_batch_of_1000_metrics_100_params_100_tags_is_accepted(contributor, run):
    result = log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput(f"m{i % 10}", float(i), step=i) for i in range(1000)],
        params=[ParamInput(f"p{i}", str(i)) for i in range(100)],
        tags=[TagInput(f"t{i}", str(i)) for i in range(100)],
    )
    assert (result.points_inserted, result.params_logged, result.tags_set) == (1000, 100, 100)
    assert MetricPoint.objects.filter(run=run).count() == 1000


def test_summary_tracks_latest_by_step_even_when_points_arrive_out_of_order(contributor, run):
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.2, step=5, timestamp=100)])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.9, step=1, timestamp=200)])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.5, step=3, timestamp=300)])
    summary = MetricSummary.objects.get(run=run, key__name="loss")
    assert (summary.last_step, summary.last_value) == (5, 0.2)
    assert (summary.min_value, summary.max_value, summary.count) == (0.2, 0.9, 3)


def test_points_sharing_a_step_are_all_kept_and_the_latest_timestamp_wins(contributor, run):
    # The mlflow client logs step 0 when none is given.
    log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", 0.1, step=0, timestamp=10)])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", 0.3, step=0, timestamp=20)])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", 0.2, step=0, timestamp=15)])
    assert MetricPoint.objects.filter(run=run).count() == 3
    summary = MetricSummary.objects.get(run=run, key__name="acc")
    assert (summary.last_value, summary.last_timestamp, summary.count) == (0.3, 20, 3)


def test_resending_the_same_batch_adds_nothing(contributor, run):
    points = [MetricInput("loss", 1.0 / (i + 1), step=i, timestamp=1000 + i) for i in range(50)]
    first = log_batch(actor=contributor, run=run, metrics=points)
    again = log_batch(actor=contributor, run=run, metrics=points)
    assert (first.points_inserted, again.points_inserted) == (50, 0)
    assert MetricPoint.objects.filter(run=run).count() == 50
    assert MetricSummary.objects.get(run=run, key__name="loss").count == 50


def test_partly_repeated_batch_inserts_only_the_new_points(contributor, run):
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 1.0, step=0, timestamp=1)])
    result = log_batch(
        actor=contributor,
        run=run,
        metrics=[
            MetricInput("loss", 1.0, step=0, timestamp=1),
            MetricInput("loss", 0.5, step=1, timestamp=2),
        ],
    )
    assert result.points_inserted == 1
    assert MetricSummary.objects.get(run=run, key__name="loss").count == 2


def test_nan_and_infinity_round_trip(contributor, run):
    log_batch(
        actor=contributor,
        run=run,
        metrics=[
            MetricInput("x", "NaN", step=0, timestamp=1),
            MetricInput("x", "Infinity", step=1, timestamp=2),
            MetricInput("x", "-Infinity", step=2, timestamp=3),
            MetricInput("x", math.nan, step=3, timestamp=4),
        ],
    )
    values = [p[2] for p in metric_history(run=run, key="x").points]
    assert (
        math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf and math.isnan(values[3])
    )
    summary = MetricSummary.objects.get(run=run, key__name="x")
    assert summary.last_is_nan and summary.last_value is None
    assert (summary.min_value, summary.max_value, summary.count) == (-math.inf, math.inf, 4)


def test_a_bulk_batch_stores_every_value_exactly_and_summarises_each_key(contributor, run):
    """Enough points for PostgreSQL's COPY path, with the edges of each column's range."""
    extremes = [math.nan, math.inf, -math.inf, -2.5e-308, 5e-324, 1.7976931348623157e308, -1.5]
    points = [
        MetricInput(key, extremes[i % len(extremes)] if key == "edge" else i / 7, step=step, timestamp=ts)
        for i, (step, ts) in enumerate(
            [(-(2**63), 0), (2**63 - 1, 2**63 - 1)] + [(s, 1_700_000_000_000 + s) for s in range(60)]
        )
        for key in ("edge", "plain")
    ]
    result = log_batch(actor=contributor, run=run, metrics=points)

    assert result.points_inserted == len(points) == 124
    for key in ("edge", "plain"):
        expected = sorted((p.step, p.timestamp, p.value) for p in points if p.key == key)
        stored = metric_history(run=run, key=key).points
        assert [(step, ts) for step, ts, _ in stored] == [(step, ts) for step, ts, _ in expected]
        for (_, _, got), (_, _, want) in zip(stored, expected, strict=True):
            assert (math.isnan(got) and math.isnan(want)) or got == want
    edge = MetricSummary.objects.get(run=run, key__name="edge")
    plain = MetricSummary.objects.get(run=run, key__name="plain")
    assert (edge.last_step, edge.last_timestamp, edge.last_value) == (2**63 - 1, 2**63 - 1, math.inf)
    assert (edge.min_value, edge.max_value, edge.count) == (-math.inf, math.inf, 62)
    assert (plain.last_value, plain.min_value, plain.max_value, plain.count) == (1 / 7, 0.0, 61 / 7, 62)


def test_summaries_fold_points_in_any_order(run):
    loss = MetricKey.objects.create(name="loss")
    rows = [(loss.pk, 7, 70, 0.2, False), (loss.pk, 2, 20, 0.9, False), (loss.pk, 5, 50, 0.0, True)]

    update_metric_summaries(run=run, rows=rows)

    summary = MetricSummary.objects.get(run=run, key=loss)
    assert (summary.last_step, summary.last_timestamp, summary.last_value) == (7, 70, 0.2)
    assert (summary.min_value, summary.max_value, summary.count) == (0.2, 0.9, 3)


def test_a_metric_batch_is_one_audit_event(contributor, run):
    before = AuditEvent.objects.count()
    log_batch(actor=contributor, run=run, metrics=[MetricInput("m", float(i), step=i) for i in range(500)])
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("sequence")
    assert event.action == "run.batch_logged"
    assert event.after["metrics"] == {"received": 500, "inserted": 500, "keys": ["m"]}


def test_tags_are_mutable_and_deletable(contributor, run):
    log_batch(actor=contributor, run=run, tags=[TagInput("team", "vision")])
    log_batch(actor=contributor, run=run, tags=[TagInput("team", "nlp")])
    assert run_detail(run=run).tags == {"team": "nlp"}
    delete_tag(actor=contributor, run=run, key="team")
    assert run_detail(run=run).tags == {}


def test_finishing_a_run_sets_status_and_end_time(contributor, run):
    run = finish_run(actor=contributor, run=run, status="FAILED")
    assert run.status == "FAILED" and run.end_time is not None


def test_deleted_run_refuses_logging_until_restored(contributor, run):
    delete_run(actor=contributor, run=run)
    run.refresh_from_db()
    with pytest.raises(InvalidInput, match="is deleted; restore it before logging to it"):
        log_batch(actor=contributor, run=run, metrics=[MetricInput("m", 1.0)])
    restore_run(actor=contributor, run=run)
    run.refresh_from_db()
    assert log_batch(actor=contributor, run=run, metrics=[MetricInput("m", 1.0)]).points_inserted == 1


def test_dataset_inputs_are_recorded_once(contributor, run):
    spec = DatasetSpec(
        name="digits", digest="ab" * 32, version="2.1", context="training", source="gen://digits"
    )
    log_inputs(actor=contributor, run=run, datasets=[spec])
    log_inputs(actor=contributor, run=run, datasets=[spec])
    (dataset,) = run_detail(run=run).datasets
    assert (dataset.name, dataset.version, dataset.context) == ("digits", "2.1", "training")


def test_a_page_of_runs_holds_their_datasets_as_the_orm_reads_them(contributor, experiment, run):
    """run_data rebuilds datasets from rows read with the page's params and tags (PostgreSQL):
    every field, JSON tags and time included, and the order, as the ORM's own query gives them."""
    from tests.factories import RunFactory
    from tracker.models import DatasetInput
    from tracker.selectors.runs import run_data

    other = RunFactory(experiment=experiment, user=contributor)
    tagged = (("split", "train"), ("note", '<b>"quoted"</b> ünïcode'))
    for target, names in ((run, ["zeta", "alpha"]), (other, ["beta"])):
        specs = [
            DatasetSpec(name=name, digest=f"{i:064x}", context=context, tags=tagged, source="s3://x")
            for i, name in enumerate(names)
            for context in ("training", "eval")
        ]
        log_inputs(actor=contributor, run=target, datasets=specs)

    fields = [field.attname for field in DatasetInput._meta.concrete_fields]
    for data in run_data([run, other]):
        expected = list(DatasetInput.objects.filter(run=data.run))
        assert [[getattr(d, f) for f in fields] for d in data.datasets] == [
            [getattr(d, f) for f in fields] for d in expected
        ]
        assert data.datasets and data.datasets[0].tags == [{"key": k, "value": v} for k, v in tagged]


def test_dataset_without_a_digest_is_rejected(contributor, run):
    with pytest.raises(InvalidInput) as error:
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec(name="digits", digest="")])
    assert str(error.value) == "datasets[0].digest: must not be empty"


def test_hostile_run_name_is_stored_verbatim(contributor, experiment):
    run = start_run(
        actor=contributor, experiment=experiment, name="<script>alert(1)</script>'; DROP TABLE x;--"
    )
    run.refresh_from_db()
    assert run.name == "<script>alert(1)</script>'; DROP TABLE x;--"


def test_refused_rename_leaves_the_description_unchanged_too(contributor):
    create_experiment(actor=contributor, name="taken")
    experiment = create_experiment(actor=contributor, name="mine", description="old")
    with pytest.raises(AlreadyExists):
        update_experiment(actor=contributor, experiment=experiment, name="taken", description="new")
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("mine", "old")


def test_too_long_artifact_location_is_rejected_naming_the_field(contributor):
    with pytest.raises(InvalidInput) as error:
        create_experiment(actor=contributor, name="x", artifact_location="s3://" + "a" * 1000)
    assert str(error.value) == "artifact_location: is 1005 characters long; the limit is 1000"


def test_experiment_tags_are_upserted_and_audited(contributor, experiment):
    from tracker.services import set_experiment_tag

    set_experiment_tag(actor=contributor, experiment=experiment, tag=TagInput("team", "vision"))
    set_experiment_tag(actor=contributor, experiment=experiment, tag=TagInput("team", "nlp"))
    assert dict(experiment.tags.values_list("key", "value")) == {"team": "nlp"}
    event = AuditEvent.objects.filter(action="experiment.tag_set").latest("sequence")
    assert (event.before, event.after) == ({"team": "vision"}, {"team": "nlp"})


def test_deleted_experiment_refuses_new_runs_until_restored(contributor, experiment):
    delete_experiment(actor=contributor, experiment=experiment)
    with pytest.raises(InvalidInput, match=f"experiment {experiment.pk} is deleted"):
        start_run(actor=contributor, experiment=experiment)
    restore_experiment(actor=contributor, experiment=experiment)
    assert start_run(actor=contributor, experiment=experiment).experiment == experiment


def test_deleting_an_experiment_takes_its_runs_and_restoring_it_brings_back_only_those(
    contributor, experiment
):
    kept, also_kept, deleted_before = (start_run(actor=contributor, experiment=experiment) for _ in range(3))
    delete_run(actor=contributor, run=deleted_before)

    delete_experiment(actor=contributor, experiment=experiment)
    lifecycles = dict(Run.objects.values_list("uuid", "lifecycle"))
    assert set(lifecycles.values()) == {"deleted"}
    kept.refresh_from_db()
    with pytest.raises(InvalidInput, match=f"run {kept.uuid} is deleted"):
        log_batch(actor=contributor, run=kept, metrics=[MetricInput("m", 1.0)])
    with pytest.raises(InvalidInput, match=f"is in deleted experiment {experiment.pk}"):
        restore_run(actor=contributor, run=kept)

    restore_experiment(actor=contributor, experiment=experiment)
    lifecycles = dict(Run.objects.values_list("uuid", "lifecycle"))
    assert lifecycles == {kept.uuid: "active", also_kept.uuid: "active", deleted_before.uuid: "deleted"}
    events = AuditEvent.objects.filter(action__startswith="experiment.").order_by("sequence")
    assert [(e.action, e.after) for e in events] == [
        ("experiment.deleted", {"lifecycle": "deleted", "runs": 2}),
        ("experiment.restored", {"lifecycle": "active", "runs": 2}),
    ]
    restore_run(actor=contributor, run=deleted_before)  # its experiment is back: it may come back too
    assert Run.objects.get(pk=deleted_before.pk).lifecycle == "active"


def test_a_run_started_from_a_stale_experiment_after_its_deletion_is_refused(contributor, experiment):
    """The caller's copy still says active (a long upload creating runs by name holds one): the
    experiment is read again in the run's transaction, or the new run would escape the deletion."""
    stale = Experiment.objects.get(pk=experiment.pk)
    delete_experiment(actor=contributor, experiment=experiment)
    assert stale.lifecycle == "active"
    with pytest.raises(InvalidInput, match=f"experiment {experiment.pk} is deleted"):
        start_run(actor=contributor, experiment=stale)
    assert not Run.objects.exists()


def test_deleting_a_run_its_experiment_took_along_keeps_it_deleted_when_the_experiment_returns(
    contributor, experiment
):
    run, other = (start_run(actor=contributor, experiment=experiment) for _ in range(2))
    delete_experiment(actor=contributor, experiment=experiment)
    delete_run(actor=contributor, run=run)
    assert AuditEvent.objects.filter(action="run.deleted", object_id=run.uuid).count() == 1
    restore_experiment(actor=contributor, experiment=experiment)
    assert dict(Run.objects.values_list("uuid", "lifecycle")) == {run.uuid: "deleted", other.uuid: "active"}


def test_the_mlflow_run_name_tag_names_a_run_but_may_not_contradict_its_name(contributor, experiment):
    named_by_tag = start_run(
        actor=contributor, experiment=experiment, tags=[TagInput("mlflow.runName", "r-tag")]
    )
    assert named_by_tag.name == "r-tag"
    unnamed = start_run(actor=contributor, experiment=experiment)
    assert unnamed.name and not Tag.objects.filter(run=unnamed, key="mlflow.runName").exists()
    with pytest.raises(InvalidInput) as error:
        start_run(actor=contributor, experiment=experiment, name="a", tags=[TagInput("mlflow.runName", "b")])
    assert str(error.value) == "run_name: run_name 'a' and tag mlflow.runName 'b' differ; send one name"
