"""How fast the audit page's queries are at millions of events: EXPLAIN ANALYZE of each filter.

    psql -h 127.0.0.1 -U postgres -c 'create database labledger_audit_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/labledger_audit_bench \\
        .venv/bin/python bench/audit_search.py --seed 2000000

`--seed N` fills an EMPTY audit table with N synthetic events (their hashes are not a chain:
use a scratch database only). Each case runs the page's own query (`audit.selectors`), newest
first, first page and a deep page, and prints the plan's scan and its execution time; the
result is written to bench/results/audit_search.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("DEBUG", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.permissions import SYSTEM_READER  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from audit.selectors import EventFilter, filter_events  # noqa: E402

PAGE = 50
SEED_SQL = f"""
INSERT INTO {AuditEvent._meta.db_table}
  (sequence, created_at, actor_name, action, object_type, object_id, before, after, previous_hash, hash)
SELECT g, timestamptz '2025-01-01' + g * interval '15 seconds',
  (array['alice','bob','carl','dora','eve','system'])[1 + g % 6],
  (array['run.batch_logged','run.batch_logged','run.batch_logged','run.updated','experiment.created',
         'model_version.created','promotion.approved','model_alias.set'])[1 + g % 8],
  (array['tracker.run','tracker.run','tracker.run','tracker.run','tracker.experiment',
         'registry.modelversion','registry.promotionrequest','registry.registeredmodel'])[1 + g % 8],
  md5((g % 50000)::text), NULL, jsonb_build_object('n', g), md5(g::text) || md5((g+1)::text),
  md5((g+7)::text) || md5(g::text)
FROM generate_series(1, %s) g
"""

CASES = {
    "no filter": EventFilter(),
    "frequent actor": EventFilter(actor="eve"),
    "rare actor": EventFilter(actor="nobody"),
    "rare action": EventFilter(action="audit.chain_broken"),
    "one object": EventFilter(object_type="tracker.run", object_ids=("c4ca4238a0b923820dcc509a6f75849b",)),
    "one day, long ago": EventFilter(
        since=datetime(2025, 1, 2, tzinfo=UTC), until=datetime(2025, 1, 3, tzinfo=UTC)
    ),
    "actor + one day": EventFilter(
        actor="eve", since=datetime(2025, 1, 2, tzinfo=UTC), until=datetime(2025, 1, 3, tzinfo=UTC)
    ),
}


def explain(filters: EventFilter, before: int | None) -> tuple[float, str]:
    events = filter_events(filters=filters, reader=SYSTEM_READER)
    if before is not None:
        events = events.filter(sequence__lt=before)
    sql, params = events.order_by("-sequence")[: PAGE + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    node = plan[0]["Plan"]
    while "Index Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    return plan[0]["Execution Time"], f"{node['Node Type']} {node.get('Index Name', '')}".strip()


def measure_export() -> dict:
    """Stream the whole export as the API does; peak memory must not grow with the table."""
    import resource
    import time

    from audit.export import jsonl_lines
    from audit.selectors import export_events

    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, lines, size = time.perf_counter(), 0, 0
    for line in jsonl_lines(export_events(filters=EventFilter(), reader=SYSTEM_READER)):
        lines += 1
        size += len(line)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "lines": lines,
        "megabytes": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "lines_per_second": round(lines / seconds),
        "peak_rss_growth_mib": round((peak_kib - before_kib) / 1024, 1),
    }
    print(
        f"export: {lines:,} lines, {result['megabytes']} MB in {result['seconds']} s "
        f"({result['lines_per_second']:,}/s); peak memory grew {result['peak_rss_growth_mib']} MiB"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seed", type=int, default=0, help="fill an empty audit table with N synthetic events"
    )
    parser.add_argument("--export", action="store_true", help="also stream the whole JSON-lines export")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("audit_search.py measures PostgreSQL plans: set DATABASE_URL=postgres://…")
    call_command("migrate", verbosity=0)
    if args.seed:
        if AuditEvent.objects.exists():
            sys.exit("--seed needs an empty audit table (a scratch database): refusing to mix in fake events")
        with connection.cursor() as cursor:
            cursor.execute(SEED_SQL, [args.seed])
            cursor.execute(f"ANALYZE {AuditEvent._meta.db_table}")
    total = AuditEvent.objects.count()
    middle = total // 2
    results = []
    print(f"{total:,} events; first page and a page below #{middle:,} ({PAGE} rows each)")
    print(f"{'filter':20} {'first ms':>9} {'deep ms':>9}  plan")
    for name, filters in CASES.items():
        first_ms, plan = explain(filters, None)
        deep_ms, _ = explain(filters, middle)
        results.append({"filter": name, "first_page_ms": first_ms, "deep_page_ms": deep_ms, "plan": plan})
        print(f"{name:20} {first_ms:9.2f} {deep_ms:9.2f}  {plan}")
    summary: dict = {"events": total, "cases": results}
    if args.export:
        summary["export"] = measure_export()
    out = ROOT / "bench" / "results" / "audit_search.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
