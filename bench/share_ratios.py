#!/usr/bin/env python
"""The server's share of each issue-13 figure, Lab Ledger against MLflow, from result files.

Through the mlflow client, wall time is the client's work plus the server's; the client's part
is the same whichever server answers, so ratios of wall time understate the difference between
servers. A share takes the client off:

  log_metric p50       wall p50 minus the client floor's p50 (bench/client_floor.py: the same calls
                       answered at once by a replaying proxy), minus the proxy's own round trip
  registry phase       total seconds minus the floor's total, less one proxy round trip per call
                       (model + versions + alias)
  search_runs p95      wall p95 minus the floor's p95 less one proxy round trip (1,000 runs)
  log_batch ingest     ingest seconds minus the client's CPU seconds during them (the harness
                       measures both; the client is busy, not waiting, while it encodes)

and the ratio is MLflow's share over Lab Ledger's (higher is better for Lab Ledger).

The client floor drifts with the machine, and for a search page it is most of Lab Ledger's wall
time, so one floor measured minutes away from a server's run moves that server's share by half.
`--floor` may be given several times (mlflow_compare.sh measures one before MLflow's run, one
between the two servers' runs and one after Lab Ledger's): each figure of the floor is then the
median of every repeat of every floor run, and the spread of the runs' own figures is printed.

    python bench/share_ratios.py --mlflow results/mlflow-pg-w1-<t>.json \\
        --labledger results/labledger-pg-<t>.json --floor results/client-floor-<t>-1.json \\
        --floor results/client-floor-<t>-2.json --floor results/client-floor-<t>-3.json

It reads JSON only (no mlflow, no Django), so any Python runs it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# figure -> issue 13's target ratio (MLflow's share / Lab Ledger's)
TARGETS = {"log_metric": 3.0, "registry": 3.0, "search_p95": 10.0, "log_batch": 15.0}


def _median(summary: dict, name: str) -> float:
    return summary[name]["median"]


def server_shares(harness: dict, floor: dict) -> dict[str, float]:
    """Seconds or milliseconds of server time per figure (units as the figure's own)."""
    summary = harness["summary"]
    proxy_ms = floor["proxy_round_trip_p50_ms"]
    registry_calls = harness["params"]["model_versions"] + 2  # the model, its versions, the alias
    return {
        "log_metric": _median(summary, "log_metric.p50_ms") - (floor["log_metric_p50_ms"] - proxy_ms),
        "registry": _median(summary, "registry.total_s")
        - (floor["registry_total_s"] - registry_calls * proxy_ms / 1e3),
        "search_p95": _median(summary, "search.p95_ms") - (floor["search_p95_ms"] - proxy_ms),
        "log_batch": _median(summary, "ingest.seconds") - _median(summary, "ingest.client_cpu_s"),
    }


def pooled_floor(floors: list[dict]) -> dict[str, float]:
    """Each figure's median over every repeat of every floor run (client_floor.py results)."""
    samples = [sample for floor in floors for sample in floor["samples"]]
    return {field: statistics.median(sample[field] for sample in samples) for field in samples[0]}


def share_ratios(mlflow: dict, labledger: dict, floor: dict) -> dict[str, dict[str, float]]:
    theirs, ours = server_shares(mlflow, floor), server_shares(labledger, floor)
    return {
        name: {"mlflow": theirs[name], "labledger": ours[name], "ratio": theirs[name] / ours[name]}
        for name in TARGETS
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mlflow", type=Path, required=True, help="harness result of `mlflow server`")
    parser.add_argument("--labledger", type=Path, required=True, help="harness result of Lab Ledger")
    parser.add_argument(
        "--floor",
        type=Path,
        required=True,
        action="append",
        help="a bench/client_floor.py result (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="write the ratios as JSON here too")
    args = parser.parse_args()
    floors = [json.loads(path.read_text()) for path in args.floor]
    floor = pooled_floor(floors)
    ratios = share_ratios(json.loads(args.mlflow.read_text()), json.loads(args.labledger.read_text()), floor)
    if len(floors) > 1:
        print(f"The client floor pooled from {len(floors)} runs (each run's own median in brackets):\n")
        for field in ("log_metric_p50_ms", "search_p95_ms", "registry_total_s"):
            runs = ", ".join(f"{run['floor'][field]:.2f}" for run in floors)
            print(f"- {field}: {floor[field]:.2f} [{runs}]")
        print()
    units = {"log_metric": "ms (p50)", "registry": "s", "search_p95": "ms", "log_batch": "s"}
    print("| server share | MLflow | Lab Ledger | ratio | issue-13 target |")
    print("|---|---|---|---|---|")
    for name, row in ratios.items():
        print(
            f"| {name}, {units[name]} | {row['mlflow']:.3f} | {row['labledger']:.3f} | "
            f"{row['ratio']:.2f}x | {TARGETS[name]:g}x |"
        )
    print("share ratios: " + " ".join(f"{name}={row['ratio']:.2f}x" for name, row in ratios.items()))
    if args.out:
        args.out.write_text(json.dumps(ratios | {"floor": floor}, indent=2) + "\n")


if __name__ == "__main__":
    main()
