"""Run every benchmark and print a summary table (figures also land in benchmarks/results/).

make bench            # or: .venv/bin/python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import RESULTS

HERE = Path(__file__).parent
FULL = {
    "bench_cost.py": [],
    "bench_check.py": [],
    "bench_ingest.py": [],
    "bench_import.py": [],
    "bench_report.py": [],
    "backtest_forecast.py": [],
    "bench_alerts.py": [],
    "bench_shared.py": [],
    "bench_fleet.py": [],
    "bench_dashboard.py": [],
    "bench_slurm.py": [],
}
QUICK = {
    "bench_cost.py": ["--jobs", "5000"],
    "bench_check.py": ["--checks", "5000"],
    "bench_ingest.py": ["--jobs", "3000"],
    "bench_import.py": ["--quick"],
    "bench_report.py": ["--jobs", "20000", "--runs", "5"],
    "backtest_forecast.py": ["--quick"],
    "bench_alerts.py": ["--quick"],
    "bench_shared.py": ["--quick"],
    "bench_fleet.py": ["--quick"],
    "bench_dashboard.py": ["--budgets", "50", "--runs", "1"],
}  # bench_slurm.py needs the cluster the Slurm tests hold: tests/e2e/test_slurm_budgets.py runs it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the scripts run, not the figures")
    args = parser.parse_args()
    for script, extra in (QUICK if args.quick else FULL).items():
        print(f"== {script} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True, stdout=subprocess.DEVNULL)
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    cost, check, ingest = results["cost"], results["check"], results["ingest"]
    print(f"calculate_job_cost            {cost['calculate_job_cost_jobs_per_s']:>10,} jobs/s")
    print(
        f"check_budget_compliance p99   {check['p99_us']:>10} us  (p50 {check['p50_us']} us, {check['budgets']} budgets)"
    )
    for backend in ("sqlite", "postgres"):
        if backend in ingest:
            r = ingest[backend]
            print(
                f"process_job_costs {backend:<10}  {r['jobs_per_s']:>10,} jobs/s  "
                f"({r['bytes_per_job_total_db']} bytes per stored job)"
            )
    if "report" in results:
        r = results["report"]
        print(
            f"generate_report median        {r['median_ms']:>10} ms  (max {r['max_ms']} ms, {r['jobs']:,} jobs, "
            f"{r['daily_rows']} daily rows)"
        )
    if "forecast_backtest" in results:
        b = results["forecast_backtest"]
        for name, row in b["series"].items():
            print(
                f"forecast {name:<20} MAPE {row['mape_pct']:5.1f} % (run rate {row['run_rate_mape_pct']:5.1f} %), "
                f"80/95 % intervals hold {row['coverage_80_pct']:.0f}/{row['coverage_95_pct']:.0f} %"
            )
        print(f"forecast on 90 days           {b['ms_per_forecast_90_days']:>10} ms")
    if "alerts" in results:
        lat, down = results["alerts"]["latency"], results["alerts"]["outage"]
        print(
            f"alert to webhook p99          {lat['p99_ms']:>10} ms  (median {lat['median_ms']} ms, "
            f"{lat['budgets']} budgets, background dispatcher, SQLite)"
        )
        once = "each exactly once" if down["exactly_once"] else f"NOT exactly once ({down['duplicates']} duplicates)"
        print(
            f"receiver down {down['down_seconds']:g} s           {down['arrived_distinct']:>6}/{down['events']} "
            f"events, {once}, drained {down['drain_seconds_after_recovery']} s after recovery"
        )
    if "fleet" in results:
        fleet = results["fleet"]
        pg = fleet["postgres_redis"]
        print(
            f"admit -> meter, {fleet['processes']} processes     {pg['cycles_per_s']:>10,} cycles/s "
            f"({pg['ratio_to_floor']} x insert+commit floor {pg['floor_insert_commit_per_s']:,}/s); "
            f"with metering_journal {pg['cycles_journal_per_s']:,}/s ({pg['ratio_journal_to_floor']} x)"
        )
    if "dashboard" in results:
        d = results["dashboard"]
        print(
            f"dashboard overview painted    {d['painted_ms']:>10} ms  ({d['budgets']:,} budgets; first paint "
            f"{d['fcp_ms']} ms; {d['painted_over_floor']} x the same table as static HTML; live in {d['live_ms']} ms)"
        )
    if "slurm" in results and "sbatch_floor" in results["slurm"]:
        f, w = results["slurm"]["sbatch_floor"], results["slurm"]["sbatch_with_jobbudget"]
        d = results["slurm"]["metering_delay"]
        print(
            f"slurm sbatch p50 / p99        {w['p50_ms']:>6} / {w['p99_ms']} ms with jobbudget ({f['p50_ms']} / "
            f"{f['p99_ms']} ms without); metered {d['p50_ms']} ms (p50) after the job ended"
        )
    for backend in ("sqlite", "postgres"):
        if backend in ingest and "floor_over_ingest" in ingest[backend]:
            r = ingest[backend]
            print(
                f"ingest vs raw inserts {backend:<8} {r['floor_over_ingest']:>9} x below "
                f"({r['floor_raw_inserts_per_s']:,} rows/s raw)"
            )


if __name__ == "__main__":
    main()
