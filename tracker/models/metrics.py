from django.db import models

from .runs import Run


class MetricKey(models.Model):
    """A metric name, normalised to a small id so point rows stay narrow."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=250, unique=True)

    def __str__(self) -> str:
        return self.name


class MetricPoint(models.Model):
    """One logged value: the big table.

    The key is MLflow's natural key. Several points may share a step (the mlflow client
    logs step 0 when none is given), and an exact re-send of a point is the same point, so a
    client retry adds nothing. NaN is stored as value 0 with is_nan, since SQLite cannot hold
    NaN. There is no surrogate id: the primary key's index also serves (run, key, step) reads.
    """

    pk = models.CompositePrimaryKey("run", "key", "step", "timestamp", "value", "is_nan")
    # No database-level foreign keys: their deferred checks at COMMIT cost about a third of
    # ingest time. Points are written only by the service, for a run it holds locked and key
    # ids it has just resolved; runs are soft-deleted, so nothing leaves points behind.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    key = models.ForeignKey(
        MetricKey, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    step = models.BigIntegerField()
    timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch, as the client sent it.")
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)

    class Meta:
        db_table = "tracker_metricpoint"

    def __str__(self) -> str:
        return f"{self.key_id}@{self.step}={'NaN' if self.is_nan else self.value}"


class MetricSummary(models.Model):
    """Latest value, min, max and count per run and key, kept in step with the points.

    The run table filters and sorts on this table and never touches MetricPoint. last_value
    is NULL when the newest point is NaN, so comparisons skip it as MLflow's do.
    """

    # No index of their own: the unique (run, key) serves lookups by run and the covering
    # (key, last_value) index lookups by key. Every point rewrites its summary row, and an
    # index on it is one more entry written per point.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_summaries", db_index=False)
    key = models.ForeignKey(MetricKey, on_delete=models.PROTECT, related_name="summaries", db_index=False)
    last_value = models.FloatField(null=True)
    last_is_nan = models.BooleanField(default=False)
    last_step = models.BigIntegerField()
    last_timestamp = models.BigIntegerField()
    min_value = models.FloatField(null=True)
    max_value = models.FloatField(null=True)
    count = models.BigIntegerField(default=0)
    # The steps of logged points whose rollups are not folded in yet (tracker.services.rollups
    # .fold_stale_rollups): a logged point widens this range instead of writing ten rollup rows,
    # and chart reads take the points, not the rollups, for the buckets it touches. A fold moves
    # the range to `rollups_folding_*` while it recomputes those buckets, so new points start a
    # new stale range without waiting for it.
    rollups_stale_from = models.BigIntegerField(null=True)
    rollups_stale_to = models.BigIntegerField(null=True)
    rollups_folding_from = models.BigIntegerField(null=True)
    rollups_folding_to = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="metric_summary_unique_key")]
        indexes = [
            # Covering: a metric filter or sort reads the run ids from the index alone.
            models.Index(fields=["key", "last_value"], include=["run"], name="summary_key_value_run"),
            # The fold finds the few stale rows without reading every summary. Only the `_from`
            # columns are in it, which change once per fold: widening the range upwards, as
            # training does, changes `rollups_stale_to` alone.
            models.Index(
                fields=["run", "key"],
                condition=models.Q(rollups_stale_from__isnull=False)
                | models.Q(rollups_folding_from__isnull=False),
                name="summary_rollups_to_fold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.last_step}={self.last_value}"


# Step-bucket widths of MetricRollup's levels: 64 * 8**level, from 64 to 8,589,934,592 steps.
ROLLUP_WIDTHS = tuple(64 * 8**level for level in range(10))


class MetricRollup(models.Model):
    """Per run, key and step bucket: the lowest and highest finite point (with their steps and
    times), the first NaN/±Infinity point and the point count, at several bucket widths
    (`level`; see ROLLUP_WIDTHS). Kept on write by uploads and on SQLite, folded in a few seconds
    later for what the API logs on PostgreSQL (tracker.services.rollups).

    A chart of 1,000,000 steps then reads a few thousand of these rows instead of every point;
    a spike is the extreme of its bucket at every level, so no width can hide it.
    """

    pk = models.CompositePrimaryKey("run", "key", "level", "bucket")
    # No database-level foreign keys, as for MetricPoint: rows are written beside the points.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    key = models.ForeignKey(
        MetricKey, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    level = models.SmallIntegerField()
    bucket = models.BigIntegerField(help_text="floor(step / width of the level)")
    count = models.BigIntegerField()
    min_value = models.FloatField(null=True)  # NULL when the bucket holds no finite value
    min_step = models.BigIntegerField(null=True)
    min_timestamp = models.BigIntegerField(null=True)
    max_value = models.FloatField(null=True)
    max_step = models.BigIntegerField(null=True)
    max_timestamp = models.BigIntegerField(null=True)
    odd_step = models.BigIntegerField(null=True, help_text="First NaN or ±Infinity point: a gap in the line.")
    odd_timestamp = models.BigIntegerField(null=True)
    odd_value = models.FloatField(null=True)
    odd_is_nan = models.BooleanField(null=True)

    class Meta:
        db_table = "tracker_metricrollup"

    def __str__(self) -> str:
        return f"{self.key_id}@L{self.level}:{self.bucket}"
