"""The run-search language: filter grammar, type rules, ordering and keyset pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Q

from config.exceptions import InvalidInput
from tests.factories import RunFactory
from tracker.models import DEFAULT_EXPERIMENT_ID, DatasetInput, MetricKey, MetricSummary, Param, Run, Tag
from tracker.search import (
    BoolOp,
    Comparison,
    OrderClause,
    apply_search,
    compile_filter,
    decode_cursor,
    encode_cursor,
    page_after,
    parse_filter,
    parse_order_by,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def make_run(name, *, start, status="FINISHED", user=None, end=None, params=None, tags=None, metrics=None,
             datasets=(), artifact_uri=""):  # fmt: skip
    """A run with its params, tags, metric summaries (None = latest value NaN) and dataset inputs."""
    run = Run.objects.create(
        experiment_id=DEFAULT_EXPERIMENT_ID, name=name, status=status, user=user, start_time=start,
        end_time=end, artifact_uri=artifact_uri,
    )  # fmt: skip
    Param.objects.bulk_create(Param(run=run, key=k, value=v) for k, v in (params or {}).items())
    Tag.objects.bulk_create(Tag(run=run, key=k, value=v) for k, v in (tags or {}).items())
    for key, value in (metrics or {}).items():
        MetricSummary.objects.create(
            run=run, key=MetricKey.objects.get_or_create(name=key)[0], last_value=value,
            last_is_nan=value is None, last_step=0, last_timestamp=0, min_value=value, max_value=value,
            count=1,
        )  # fmt: skip
    for dataset in datasets:
        DatasetInput.objects.create(run=run, **dataset)
    return run


@pytest.fixture
def runs(db):
    """Four runs that differ in every searchable way; r3 and r4 start at the same moment."""
    users = get_user_model().objects
    alice, bob = users.create(username="alice"), users.create(username="bob")
    r1 = make_run(
        "baseline", start=T0 + timedelta(milliseconds=1000.5), end=T0 + timedelta(seconds=10), user=alice,
        artifact_uri="s3://bucket/1",
        params={"lr": "0.01", "optimizer": "adam", "optimizer.lr": "0.001", "path": "C:\\data\\x_1"},
        tags={"team": "vision", "mlflow.runName": "baseline"},
        metrics={"acc": 0.8, "val loss": 0.5, "val_f1": 0.9},
        datasets=[{"name": "train", "digest": "aaa111", "version": "2.1", "context": "training"}],
    )  # fmt: skip
    r2 = make_run(
        "Baseline-v2", start=T0 + timedelta(seconds=2), status="FAILED", user=bob,
        artifact_uri="s3://bucket/2", params={"lr": "1e-3", "optimizer": "SGD", "big": "1e999"},
        tags={"team": "Vision"}, metrics={"acc": 0.95, "val_f1": None},
        datasets=[
            {"name": "train", "digest": "bbb222", "version": "2.0", "context": "training"},
            {"name": "eval", "digest": "ccc333", "version": "2.1", "context": "validation"},
        ],
    )  # fmt: skip
    r3 = make_run(
        "tuned", start=T0 + timedelta(seconds=3), status="RUNNING",
        params={"lr": "auto", "note": "a' OR 1=1 --", "pct": "50%", "uni": "naïve ✓", "multi": "one\ntwo\n"},
        metrics={"acc": None},
    )  # fmt: skip
    r4 = make_run(
        "tuned_2", start=T0 + timedelta(seconds=3), end=T0 + timedelta(seconds=20), user=alice,
        params={"lr": "0.1"}, tags={"team": "audio"}, metrics={"acc": 0.95},
    )  # fmt: skip
    return {"r1": r1, "r2": r2, "r3": r3, "r4": r4}


def matching(filter_string):
    return set(Run.objects.filter(compile_filter(filter_string)).values_list("name", flat=True))


def ordered(order_by, filter_string=None):
    result = apply_search(Run.objects.all(), filter_string=filter_string, order_by=order_by)
    return [run.name for run in result.queryset]


def error_of(call, *args):
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return caught.value


# Parsing ------------------------------------------------------------------------------------------------


def test_empty_filter_parses_to_none_and_compiles_to_an_empty_q():
    assert parse_filter("") is None
    assert parse_filter("   ") is None
    assert compile_filter(None) == Q()


def test_not_binds_tighter_than_and_which_binds_tighter_than_or():
    parsed = parse_filter("NOT run_name = 'a' AND status = 'b' OR metrics.m > 1")
    not_a = BoolOp("NOT", (Comparison("attribute", "run_name", "=", "a"),))
    not_a_and_b = BoolOp("AND", (not_a, Comparison("attribute", "status", "=", "b")))
    assert parsed == BoolOp("OR", (not_a_and_b, Comparison("metric", "m", ">", 1)))


def test_identifier_prefixes_quoting_and_aliases_resolve_to_canonical_keys():
    cases = {
        "metric.a = 1": ("metric", "a"),
        'metrics."val loss" = 1': ("metric", "val loss"),
        "params.optimizer.lr = 'x'": ("param", "optimizer.lr"),
        "parameter.a-b = 'x'": ("param", "a-b"),
        "PARAMETERS.a = 'x'": ("param", "a"),
        "tag.`mlflow.runName` = 'x'": ("tag", "mlflow.runName"),
        "attr.status = 'x'": ("attribute", "status"),
        "run.run_id = 'x'": ("attribute", "run_id"),
        "attributes.`Run name` = 'x'": ("attribute", "run_name"),
        "`Run name` = 'x'": ("attribute", "run_name"),
        "created = 1": ("attribute", "start_time"),
        "dataset.digest = 'x'": ("dataset", "digest"),
    }
    for text, (entity, key) in cases.items():
        parsed = parse_filter(text)
        assert (parsed.entity, parsed.key) == (entity, key), text


def test_keywords_are_case_insensitive_and_values_keep_their_types():
    parsed = parse_filter('metrics.a >= -1.5E-3 and params.b like "x" Or tags.c is not null')
    both = BoolOp("AND", (Comparison("metric", "a", ">=", -0.0015), Comparison("param", "b", "LIKE", "x")))
    assert parsed == BoolOp("OR", (both, Comparison("tag", "c", "IS NOT NULL", None)))
    assert parse_filter("start_time < 1700000000000").value == 1700000000000


def test_doubled_quotes_inside_a_string_stand_for_one_quote():
    assert parse_filter("params.x = 'it''s'").value == "it's"
    assert parse_filter('params.x = "say ""hi"""').value == 'say "hi"'


# Syntax errors ------------------------------------------------------------------------------------------


def test_syntax_error_inside_parentheses_names_position_and_expected_tokens():
    error = error_of(parse_filter, "(metrics.a > 1 params.b = 'x')")
    assert error.field == "filter"
    assert error.message == (
        "Syntax error at position 15 (line 1, column 16): expected one of AND, OR, ')', got 'params.b'"
    )


def test_syntax_error_at_top_level_offers_end_of_input():
    error = error_of(parse_filter, "metrics.a > 1 params.b = 'x'")
    assert error.message == (
        "Syntax error at position 14 (line 1, column 15): "
        "expected one of AND, OR, end of input, got 'params.b'"
    )


def test_syntax_error_when_the_value_is_missing():
    error = error_of(parse_filter, "metrics.a >")
    assert error.message == (
        "Syntax error at position 11 (line 1, column 12): expected one of a quoted string, a number, "
        "got end of input"
    )


def test_syntax_error_for_an_unknown_character_lists_comparators():
    error = error_of(parse_filter, "metrics.a\n  @ 1")
    assert error.message == (
        "Syntax error at position 12 (line 2, column 3): expected one of a comparator (= != > >= < <=), "
        "LIKE/ILIKE, IN/NOT IN, IS NULL/IS NOT NULL, got '@'"
    )


def test_syntax_error_for_an_unterminated_string():
    error = error_of(parse_filter, "params.a = 'abc")
    assert error.message == "Syntax error at position 11 (line 1, column 12): unterminated string"


def test_unbalanced_parentheses_and_empty_in_lists_are_syntax_errors():
    assert error_of(parse_filter, "(run_name = 'a'").message.endswith("expected ')', got end of input")
    assert (
        "expected one of a quoted string, a number, got ')'" in error_of(parse_filter, "run_id IN ()").message
    )


def test_unquoted_string_values_are_syntax_errors():
    error = error_of(parse_filter, "params.a = adam")
    assert error.message.startswith("Syntax error at position 11 (line 1, column 12): expected one of")


def test_too_deep_nesting_is_refused_without_recursion_errors():
    error = error_of(parse_filter, "NOT " * 40 + "run_name = 'a'")
    assert error.message == "Filter is nested more than 32 levels deep"
    assert parse_filter("(" * 500 + "run_name = 'a'" + ")" * 500) == Comparison(
        "attribute", "run_name", "=", "a"
    )


def test_too_many_comparisons_are_refused():
    error = error_of(parse_filter, " AND ".join(["run_name = 'a'"] * 101))
    assert error.message == "Filter has more than 100 comparisons"


# Type errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tags.x = 1", "Expected a quoted string value for tags.x, got 1"),
        ("metrics.a = 'x'", "Expected numeric value type for metrics.a, got 'x'"),
        ("params.lr > '0.1'", "Expected numeric value type for params.lr, got '0.1'"),
        ("params.x LIKE 1", "Expected a quoted string value for params.x, got 1"),
        ("run_id IN ('a', 2)", "Expected a quoted string value for attributes.run_id, got 2"),
        (
            "start_time > '2024-01-01'",
            "Expected numeric value type for attributes.start_time, got '2024-01-01'",
        ),
        ("datasets.name = 3", "Expected a quoted string value for datasets.name, got 3"),
        (
            "attributes.status > 'x'",
            "Invalid comparator '>' for attributes.status. "
            "Valid comparators: =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL",
        ),
        (
            "metrics.a IN (1, 2)",
            "Invalid comparator 'IN' for metrics.a. "
            "Valid comparators: =, !=, >, >=, <, <=, IS NULL, IS NOT NULL",
        ),
        (
            "metrics.a LIKE 'x'",
            "Invalid comparator 'LIKE' for metrics.a. "
            "Valid comparators: =, !=, >, >=, <, <=, IS NULL, IS NOT NULL",
        ),
        (
            "tags.t < 'x'",
            "Invalid comparator '<' for tags.t. "
            "Valid comparators: =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL",
        ),
        (
            "datasets.name IS NULL",
            "Invalid comparator 'IS NULL' for datasets.name. "
            "Valid comparators: =, !=, LIKE, ILIKE, IN, NOT IN",
        ),
        (
            "end_time LIKE '1%'",
            "Invalid comparator 'LIKE' for attributes.end_time. "
            "Valid comparators: =, !=, >, >=, <, <=, IS NULL, IS NOT NULL",
        ),
        (
            "attributes.colour = 'x'",
            "Invalid attribute key 'colour'. Valid values are ['artifact_uri', 'end_time', 'lifecycle', "
            "'run_id', 'run_name', 'start_time', 'status', 'user_id']",
        ),
        (
            "foo.bar = 'x'",
            "Invalid entity type 'foo'. "
            "Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']",
        ),
        (
            "datasets.schema = 'x'",
            "Invalid dataset key 'schema'. Valid values are ['name', 'digest', 'context', 'version']",
        ),
    ],
)
def test_type_errors_are_rejected_with_exact_messages(text, message):
    error = error_of(parse_filter, text)
    assert (error.field, error.message) == ("filter", message)


def test_out_of_range_numbers_are_invalid_input_not_crashes():
    assert error_of(parse_filter, "start_time > 1" + "0" * 30).message == (
        "Number out of range for attributes.start_time: 1" + "0" * 30
    )
    assert error_of(parse_filter, "metrics.a > 1" + "0" * 400).message.startswith(
        "Number out of range for metrics.a"
    )
    assert error_of(parse_filter, "params.a = 1" + "0" * 400).message.startswith(
        "Number out of range for params.a"
    )


# Filter semantics ---------------------------------------------------------------------------------------


def test_metric_comparisons_use_the_latest_value(runs):
    assert matching("metrics.acc > 0.9") == {"Baseline-v2", "tuned_2"}
    assert matching("metrics.acc >= 0.8") == {"baseline", "Baseline-v2", "tuned_2"}
    assert matching("metrics.acc < 0.9") == {"baseline"}
    assert matching("metrics.acc <= 0.95") == {"baseline", "Baseline-v2", "tuned_2"}
    assert matching("metrics.acc = 0.95") == {"Baseline-v2", "tuned_2"}
    assert matching('metrics."val loss" <= 1e-3') == set()
    assert matching("metrics.`val loss` = 0.5") == {"baseline"}


def test_a_nan_metric_only_matches_not_equal_and_a_missing_metric_matches_nothing(runs):
    assert matching("metrics.val_f1 > 0") == {"baseline"}
    assert matching("metrics.val_f1 != 0.9") == {"Baseline-v2"}  # NaN differs; no val_f1 → no match
    assert matching("metrics.acc != 0.95") == {"baseline", "tuned"}


def test_metric_is_null_means_the_run_never_logged_it(runs):
    assert matching("metrics.val_f1 IS NULL") == {"tuned", "tuned_2"}
    assert matching("metrics.val_f1 IS NOT NULL") == {"baseline", "Baseline-v2"}


def test_param_string_operators(runs):
    assert matching("params.optimizer = 'adam'") == {"baseline"}
    assert matching("params.optimizer != 'adam'") == {"Baseline-v2"}  # runs without the param excluded
    assert matching("params.optimizer LIKE 'a%'") == {"baseline"}
    assert matching("params.optimizer LIKE 'S_D'") == {"Baseline-v2"}
    assert matching("params.optimizer LIKE 'sgd'") == set()
    assert matching("params.optimizer ILIKE 'sgd'") == {"Baseline-v2"}
    assert matching("params.optimizer IN ('adam', 'SGD')") == {"baseline", "Baseline-v2"}
    assert matching("params.optimizer NOT IN ('adam')") == {"Baseline-v2"}
    assert matching("params.optimizer IS NULL") == {"tuned", "tuned_2"}
    assert matching("params.optimizer IS NOT NULL") == {"baseline", "Baseline-v2"}
    assert matching("params.optimizer.lr = '0.001'") == {"baseline"}


def test_unquoted_numbers_compare_params_numerically_and_skip_non_numeric_values(runs):
    assert matching("params.lr < 0.05") == {"baseline", "Baseline-v2"}
    assert matching("params.lr > 0.005") == {"baseline", "tuned_2"}
    assert matching("params.lr >= 0.1") == {"tuned_2"}
    assert matching("params.lr <= 0.001") == {"Baseline-v2"}
    assert matching("params.lr = 0.001") == {"Baseline-v2"}  # '1e-3' is the number 0.001
    assert matching("params.lr != 0.01") == {"Baseline-v2", "tuned_2"}  # 'auto' is not a number
    assert matching("params.big > 0") == set()  # '1e999' would overflow PostgreSQL's cast
    assert matching("params.lr = '0.001'") == set()  # quoted: string equality with '1e-3' fails
    assert matching("params.lr = '1e-3'") == {"Baseline-v2"}


def test_tag_operators(runs):
    assert matching("tags.team = 'vision'") == {"baseline"}
    assert matching("tags.team != 'vision'") == {"Baseline-v2", "tuned_2"}
    assert matching("tags.team LIKE 'V%'") == {"Baseline-v2"}
    assert matching("tags.team ILIKE 'v%'") == {"baseline", "Baseline-v2"}
    assert matching("tags.team IN ('audio', 'Vision')") == {"Baseline-v2", "tuned_2"}
    assert matching("tags.team NOT IN ('audio', 'Vision')") == {"baseline"}
    assert matching("tags.team IS NULL") == {"tuned"}
    assert matching("tags.`mlflow.runName` ILIKE '%BASE%'") == {"baseline"}


def test_string_attributes(runs):
    r1 = runs["r1"]
    assert matching(f"attributes.run_id = '{r1.uuid}'") == {"baseline"}
    assert matching(f"run_id IN ('{r1.uuid}', '{runs['r3'].uuid}')") == {"baseline", "tuned"}
    assert matching(f"run_id NOT IN ('{r1.uuid}')") == {"Baseline-v2", "tuned", "tuned_2"}
    assert matching("run_name = 'tuned'") == {"tuned"}
    assert matching("`Run name` LIKE 'tuned\\_%'") == set()  # LIKE has no escape character: '\' is literal
    assert matching("run_name LIKE 'tuned_%'") == {"tuned_2"}
    assert matching("run_name ILIKE 'baseline%'") == {"baseline", "Baseline-v2"}
    assert matching("run_name IN ('tuned', 'tuned_2')") == {"tuned", "tuned_2"}
    assert matching("status IN ('FAILED', 'RUNNING')") == {"Baseline-v2", "tuned"}
    assert matching("status != 'FINISHED'") == {"Baseline-v2", "tuned"}
    assert matching("artifact_uri LIKE 's3://bucket/%'") == {"baseline", "Baseline-v2"}
    assert matching("lifecycle = 'active'") == {"baseline", "Baseline-v2", "tuned", "tuned_2"}


def test_user_id_treats_runs_without_a_user_as_not_matching_but_not_negates_plainly(runs):
    assert matching("user_id = 'alice'") == {"baseline", "tuned_2"}
    assert matching("user_id != 'alice'") == {"Baseline-v2"}
    assert matching("NOT user_id = 'alice'") == {"Baseline-v2", "tuned"}
    assert matching("user_id IS NULL") == {"tuned"}
    assert matching("user_id ILIKE 'B%' OR run_name = 'tuned'") == {"Baseline-v2", "tuned"}


def test_times_are_compared_in_milliseconds(runs):
    second = T0_MS + 1000  # r1 started at second + 0.5 ms, which is millisecond `second`
    assert matching(f"start_time = {second}") == {"baseline"}
    assert matching(f"created > {second}") == {"Baseline-v2", "tuned", "tuned_2"}
    assert matching(f"start_time >= {second}") == {"baseline", "Baseline-v2", "tuned", "tuned_2"}
    assert matching(f"start_time < {second}") == set()
    assert matching(f"start_time <= {second}") == {"baseline"}
    assert matching(f"start_time != {second}") == {"Baseline-v2", "tuned", "tuned_2"}
    assert matching(f"end_time > {T0_MS + 15000}") == {"tuned_2"}
    assert matching(f"NOT end_time > {T0_MS + 15000}") == {"baseline", "Baseline-v2", "tuned"}
    assert matching(f"end_time != {T0_MS + 10000}") == {"tuned_2"}
    assert matching("end_time IS NULL") == {"Baseline-v2", "tuned"}


def test_dataset_filters_match_when_any_input_matches(runs):
    assert matching("datasets.version = '2.1' and metrics.val_f1 > 0.85") == {"baseline"}
    assert matching("datasets.version = '2.1'") == {"baseline", "Baseline-v2"}
    assert matching("datasets.name = 'train' AND datasets.context = 'training'") == {
        "baseline",
        "Baseline-v2",
    }
    assert matching("datasets.name != 'train'") == {"Baseline-v2"}
    assert matching("datasets.digest LIKE 'aaa%'") == {"baseline"}
    assert matching("datasets.context ILIKE 'VALID%'") == {"Baseline-v2"}
    assert matching("datasets.name IN ('eval')") == {"Baseline-v2"}
    assert matching("datasets.name NOT IN ('train')") == {"Baseline-v2"}
    assert matching("NOT datasets.name = 'train'") == {"tuned", "tuned_2"}


def test_or_not_and_parentheses_follow_the_usual_precedence(runs):
    assert matching("run_name = 'tuned' OR status = 'FINISHED' AND user_id = 'bob'") == {"tuned"}
    assert matching("(run_name = 'tuned' OR status = 'FINISHED') AND user_id = 'alice'") == {
        "baseline",
        "tuned_2",
    }
    assert matching("NOT status = 'FAILED' AND user_id = 'alice'") == {"baseline", "tuned_2"}
    assert matching("NOT (status = 'FAILED' AND user_id = 'bob')") == {"baseline", "tuned", "tuned_2"}
    assert matching("NOT NOT run_name = 'tuned'") == {"tuned"}


def test_not_of_a_comparison_includes_runs_without_the_key(runs):
    assert matching("NOT params.optimizer = 'adam'") == {"Baseline-v2", "tuned", "tuned_2"}
    assert matching("NOT metrics.val_f1 > 0") == {"Baseline-v2", "tuned", "tuned_2"}
    assert matching("NOT params.lr < 0.05") == {"tuned", "tuned_2"}


def test_injection_attempts_and_special_characters_stay_literal(runs):
    assert matching("params.note = 'a'' OR 1=1 --'") == {"tuned"}
    assert matching("params.note LIKE '%1=1 --'") == {"tuned"}
    assert matching("params.pct = '50%'") == {"tuned"}
    assert matching("params.pct LIKE '5_\\%'") == set()
    assert matching("params.path = 'C:\\data\\x_1'") == {"baseline"}
    assert matching("params.path LIKE 'C:\\data\\%'") == {"baseline"}
    assert matching("params.path LIKE 'C:\\data\\x.1'") == set()  # '.' is not a wildcard
    assert matching("params.uni = 'naïve ✓'") == {"tuned"}
    assert matching("params.uni ILIKE 'NAÏVE%'") == {"tuned"}
    assert matching("run_name = '; DROP TABLE tracker_run; --'") == set()
    assert Run.objects.count() == 4


def test_like_wildcards_span_newlines_but_a_pattern_must_match_the_whole_value(runs):
    assert matching("params.multi LIKE 'one%'") == {"tuned"}
    assert matching("params.multi LIKE 'one_two_'") == {"tuned"}
    assert matching("params.multi LIKE 'one_two'") == set()  # the trailing newline is part of the value
    assert matching("params.multi LIKE 'two%'") == set()


def test_nul_characters_are_refused_before_reaching_the_database():
    assert error_of(parse_filter, "params.a = 'x\x00'").message == "NUL characters are not allowed"
    assert error_of(parse_order_by, ["params.`a\x00`"]).field == "order_by"


def test_a_broken_quote_injection_is_a_syntax_error_not_a_query():
    assert error_of(parse_filter, "params.note = 'a' OR 1=1 --'").message == (
        "Syntax error at position 21 (line 1, column 22): expected one of NOT, an identifier, '(', got '1'"
    )


def test_metric_filters_read_metric_summaries_never_metric_points(runs):
    sql = str(Run.objects.filter(compile_filter("metrics.acc > 0.5 OR metrics.x IS NULL")).query)
    assert "tracker_metricsummary" in sql
    assert "tracker_metricpoint" not in sql


# order_by -----------------------------------------------------------------------------------------------


def test_order_by_parses_directions_and_defaults_to_ascending():
    assert parse_order_by(["metrics.acc DESC", "created", "params.lr asc", "tags.`team`"]) == [
        OrderClause("metric", "acc", True),
        OrderClause("attribute", "start_time", False),
        OrderClause("param", "lr", False),
        OrderClause("tag", "team", False),
    ]
    assert parse_order_by(None) == []


def test_order_by_rejects_duplicates_bad_keys_and_bad_syntax():
    assert (
        error_of(parse_order_by, ["metrics.acc", "metric.acc DESC"]).message
        == "Duplicate order_by key: metrics.acc"
    )
    assert error_of(parse_order_by, ["start_time", "created"]).message == (
        "Duplicate order_by key: attributes.start_time"
    )
    assert error_of(parse_order_by, ["datasets.name"]).message == "Cannot order by datasets.name"
    error = error_of(parse_order_by, ["metrics.acc", "metrics.loss sideways"])
    assert (error.field, error.message) == (
        "order_by",
        "order_by[1] 'metrics.loss sideways': Syntax error at position 13 (line 1, column 14): "
        "expected one of ASC or DESC, end of input, got 'sideways'",
    )
    assert error_of(parse_order_by, ["nope"]).field == "order_by"


def test_default_order_is_newest_first_then_uuid(runs):
    tied = sorted([runs["r3"], runs["r4"]], key=lambda run: run.uuid)
    assert ordered([]) == [tied[0].name, tied[1].name, "Baseline-v2", "baseline"]


def test_metric_order_puts_missing_and_nan_last_in_both_directions(runs):
    # r2 and r4 tie on 0.95; the tie-breaker is start_time DESC, so r4 (newer) comes first.
    assert ordered(["metrics.acc DESC"]) == ["tuned_2", "Baseline-v2", "baseline", "tuned"]
    assert ordered(["metrics.acc"]) == ["baseline", "tuned_2", "Baseline-v2", "tuned"]
    assert ordered(["metrics.val_f1 ASC"])[:1] == ["baseline"]
    assert ordered(["metrics.val_f1 DESC"])[:1] == ["baseline"]


def test_param_and_tag_order_compares_strings_with_missing_last(runs):
    assert ordered(["params.lr"]) == [
        "baseline",
        "tuned_2",
        "Baseline-v2",
        "tuned",
    ]  # '0.01' < '0.1' < '1e-3'
    assert ordered(["params.lr DESC"]) == ["tuned", "Baseline-v2", "tuned_2", "baseline"]
    assert set(ordered(["params.optimizer DESC"])[2:]) == {"tuned", "tuned_2"}  # missing last
    assert ordered(["tags.team DESC"])[-1] == "tuned"
    assert ordered(["tags.team ASC"])[-1] == "tuned"


def test_attribute_orders(runs):
    assert ordered(["run_name"], "run_name LIKE 't%'") == ["tuned", "tuned_2"]
    assert ordered(["attributes.run_name DESC"], "run_name LIKE 't%'") == ["tuned_2", "tuned"]
    assert ordered(["status"]) == ["Baseline-v2", "tuned_2", "baseline", "tuned"]
    assert ordered(["user_id DESC"]) == ["Baseline-v2", "tuned_2", "baseline", "tuned"]  # no user last
    assert ordered(["user_id ASC"]) == ["tuned_2", "baseline", "Baseline-v2", "tuned"]
    assert ordered(["artifact_uri DESC"]) == ["Baseline-v2", "baseline", *ordered([])[:2]]
    assert ordered(["created"])[:2] == ["baseline", "Baseline-v2"]
    assert ordered(["end_time"]) == ["baseline", "tuned_2", "tuned", "Baseline-v2"]
    assert ordered(["end_time DESC"]) == ["tuned_2", "baseline", "tuned", "Baseline-v2"]
    by_uuid = sorted(runs.values(), key=lambda run: run.uuid)
    assert ordered(["run_id DESC"]) == [run.name for run in reversed(by_uuid)]


def test_apply_search_reports_its_sort_columns(runs):
    result = apply_search(Run.objects.all(), filter_string="metrics.acc > 0", order_by=["metrics.acc DESC"])
    assert [(c.descending, c.kind) for c in result.columns] == [
        (True, "number"),
        (True, "datetime"),
        (False, "string"),
    ]
    assert [run.name for run in result.queryset] == ["tuned_2", "Baseline-v2", "baseline"]


# Keyset pagination --------------------------------------------------------------------------------------


@pytest.fixture
def many_runs(db):
    """Eleven runs with tied and missing metric values, tied start times and missing params."""
    accs = [0.5, 0.5, 0.5, None, "missing", 0.7, 0.7, 0.2, "missing", 0.9, 0.5]
    made = []
    for index, acc in enumerate(accs):
        metrics = {} if acc == "missing" else {"acc": acc}
        params = {"p": f"v{index % 3}"} if index % 4 else {}
        end = T0 + timedelta(seconds=100 + index % 3) if index % 2 else None
        made.append(
            make_run(
                f"run{index}",
                start=T0 + timedelta(seconds=index // 2),
                end=end,
                metrics=metrics,
                params=params,
            )
        )
    return made


def collect_pages(order_by, limit):
    result = apply_search(Run.objects.all(), filter_string=None, order_by=order_by)
    names, cursor, pages = [], None, 0
    while True:
        page, cursor = page_after(result, cursor=cursor, limit=limit)
        names.extend(run.name for run in page)
        pages += 1
        if cursor is None:
            return names, pages
        assert pages < 50


@pytest.mark.parametrize(
    "order_by",
    [
        ["metrics.acc DESC"],
        ["metrics.acc"],
        ["params.p DESC", "end_time"],
        ["params.p", "end_time DESC"],
        ["end_time DESC"],
        [],
        ["run_id"],
    ],
)
@pytest.mark.parametrize("limit", [1, 3, 4, 11])
def test_pages_give_every_run_exactly_once_in_order(many_runs, order_by, limit):
    expected = ordered(order_by)
    names, pages = collect_pages(order_by, limit)
    assert names == expected
    assert len(set(names)) == 11
    assert pages == -(-11 // limit)


def test_metric_order_with_ties_and_nulls_matches_the_expected_sequence(many_runs):
    def key(run):
        acc = next(iter(MetricSummary.objects.filter(run=run).values_list("last_value", flat=True)), None)
        return (acc is None, -(acc or 0), -run.start_time.timestamp(), run.uuid)

    assert collect_pages(["metrics.acc DESC"], 2)[0] == [run.name for run in sorted(many_runs, key=key)]


def test_each_page_is_one_query(many_runs, django_assert_num_queries):
    result = apply_search(Run.objects.all(), filter_string="metrics.acc > 0", order_by=["metrics.acc DESC"])
    with django_assert_num_queries(1):
        _, cursor = page_after(result, cursor=None, limit=3)
    with django_assert_num_queries(1):
        page, _ = page_after(result, cursor=cursor, limit=3)
    assert len(page) == 3


def test_a_page_size_below_one_is_refused(many_runs):
    result = apply_search(Run.objects.all(), filter_string=None, order_by=None)
    with pytest.raises(InvalidInput) as caught:
        page_after(result, cursor=None, limit=0)
    assert (caught.value.field, caught.value.message) == ("max_results", "Page size must be at least 1")


def test_cursors_round_trip_datetimes_as_iso_strings():
    token = encode_cursor([0.5, None, T0, "abc"])
    assert "=" not in token
    assert decode_cursor(token) == [0.5, None, "2024-01-01T00:00:00+00:00", "abc"]


@pytest.mark.parametrize("token", ["!!!", "e30", encode_cursor([1, 2])[:-3] + "***", "bm90IGpzb24"])
def test_garbage_cursors_are_invalid_page_tokens(token):
    error = error_of(decode_cursor, token)
    assert (error.field, error.message) == ("page_token", "Invalid page token")


@pytest.mark.parametrize(
    "order_by", [["metrics.acc ASC"], ["metrics.loss DESC"], ["metrics.acc DESC", "params.lr"]]
)
def test_a_cursor_from_another_sort_is_an_invalid_page_token(many_runs, order_by):
    by_accuracy = apply_search(Run.objects.all(), filter_string=None, order_by=["metrics.acc DESC"])
    _, token = page_after(by_accuracy, cursor=None, limit=3)
    other = apply_search(Run.objects.all(), filter_string=None, order_by=order_by)
    error = error_of(lambda: page_after(other, cursor=token, limit=3))
    assert (error.field, error.message) == ("page_token", "Invalid page token")


def test_a_cursor_holding_values_its_sort_cannot_hold_is_an_invalid_page_token(many_runs):
    result = apply_search(Run.objects.all(), filter_string=None, order_by=["metrics.acc DESC"])
    for values in ([1.0, "x"], ["not a number", T0, "u"], [1.0, "not a date", "u"], [True, T0, "u"]):
        cursor = encode_cursor([result.signature, *values])
        error = error_of(lambda cursor=cursor: page_after(result, cursor=cursor, limit=3))
        assert (error.field, error.message) == ("page_token", "Invalid page token")


def test_the_sort_signature_ignores_how_a_key_is_written(db):
    def signature(order_by):
        return apply_search(Run.objects.none(), filter_string=None, order_by=order_by).signature

    assert (
        signature(["attributes.start_time DESC"]) == signature(["attribute.start_time desc"]) == signature([])
    )
    assert signature(["metrics.`acc`"]) == signature(["metric.acc ASC"]) != signature(["metrics.acc DESC"])


def test_runs_sort_by_duration_with_running_runs_last_and_pages_across_it(db):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lengths = {"short": 5, "long": 50, "middle": 20, "running": None}
    for name, seconds in lengths.items():
        end = start + timedelta(seconds=seconds) if seconds is not None else None
        RunFactory(name=name, start_time=start, end_time=end)
    result = apply_search(Run.objects.all(), filter_string=None, order_by=["attributes.duration DESC"])
    names, cursor = [], None
    while True:
        page, cursor = page_after(result, cursor=cursor, limit=1)
        names.extend(run.name for run in page)
        if cursor is None:
            break
    assert names == ["long", "middle", "short", "running"]


def test_duration_is_for_sorting_only(db):
    with pytest.raises(InvalidInput, match="Invalid attribute key 'duration'"):
        compile_filter("attributes.duration > 5")
