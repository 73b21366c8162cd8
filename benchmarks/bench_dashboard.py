"""The web dashboard's page load with 1,000 budgets (100 tenants x 10), in Debian's
headless Chromium driven by Playwright, against ``jobbudget serve`` on SQLite.

For each of ``--runs`` fresh browser contexts (no cache), with the key already in the
tab's session:
- first contentful paint of the overview;
- the overview in the page: every budget's row built (a ``performance.mark`` the page
  sets once the table is filled) and then painted (the next animation frame);
- the server's time for ``GET /v1/dashboard`` (resource timing: request to response end);
- the live stream up: all 1,000 budgets subscribed (the "Live" indicator).
Floor, in the same run and browser: the same overview as static HTML (the page's own
markup once built, its scripts removed, with the same stylesheet), loaded and painted:
what the browser alone needs to lay out and paint 1,000 rows.  Medians are reported,
with the ratio of the overview's paint to the floor.

    .venv/bin/python benchmarks/bench_dashboard.py [--budgets 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, jobbudget_cli, report
from playwright.sync_api import Browser, sync_playwright

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics

CHROMIUM = "/usr/bin/chromium"
_PAINTED = """() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done({
  fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
  built: performance.getEntriesByName('jobbudget:overview')[0].startTime,
  painted: performance.now(),
  dashboard: performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/dashboard'))
    .map((e) => e.responseEnd - e.requestStart)[0],
}))))"""


_FLOOR = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now()))))"
)


def seed(url: str, budgets: int) -> str:
    tenants = max(1, budgets // 10)
    with BudgetService(Config(database_url=url)) as service:
        for t in range(tenants):
            for q in range(budgets // tenants):
                queue = "" if q == 0 else f"q{q}"
                amount = Decimal(50 + (t * 7 + q * 13) % 200)
                service.create_budget(Budget(tenant_id=f"t{t:03d}", queue_name=queue, amount=amount,
                                             period=BudgetPeriod("monthly")))  # fmt: skip
        now = datetime.now(UTC)
        jobs = [
            JobMetrics(job_id=f"j{i}", tenant_id=f"t{i % tenants:03d}", queue_name=f"q{1 + i % 9}",
                       cpu_time=Decimal(200_000 + (i * 7919) % 1_500_000), memory_mb_seconds=Decimal(0),
                       payload_bytes=Decimal(0), redis_ops=Decimal(0), network_bytes=Decimal(0), timestamp=now)
            for i in range(budgets * 5)
        ]  # fmt: skip
        service.process_job_costs(jobs)
        return service.create_api_key(role="admin", name="bench")[1]


def measure(browser: Browser, base: str, key: str, budgets: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.add_init_script(f"sessionStorage.setItem('jobbudget.key', {key!r})")  # signed in, in this tab
        started = time.perf_counter()
        page.goto(f"{base}/#/")
        page.wait_for_selector(f"#budgets tbody tr:nth-child({budgets})")
        timings = page.evaluate(_PAINTED)
        page.wait_for_selector("#live[data-state=live]")
        live_ms = (time.perf_counter() - started) * 1000
        static = re.sub(r"<script\b[^>]*>.*?</script>", "", page.content(), flags=re.S)
        floor_page = context.new_page()
        floor_page.route(f"{base}/floor", lambda route: route.fulfill(body=static, content_type="text/html"))
        floor_page.goto(f"{base}/floor")
        floor = floor_page.evaluate(_FLOOR)
        return {"floor_painted_ms": floor, "fcp_ms": timings["fcp"], "built_ms": timings["built"],
                "painted_ms": timings["painted"], "dashboard_ms": timings["dashboard"], "live_ms": live_ms}  # fmt: skip
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        key = seed(url, args.budgets)
        port = free_port()
        server = subprocess.Popen(
            [*jobbudget_cli(), "serve", "--port", str(port), "--database-url", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                measure(browser, base, key, args.budgets)  # warm-up: the server's first reads
                runs = [measure(browser, base, key, args.budgets) for _ in range(args.runs)]
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    med: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    floor = med["floor_painted_ms"]
    report(
        "dashboard",
        {
            "budgets": args.budgets,
            "runs": args.runs,
            "browser": "Debian chromium, headless (Playwright)",
            **med,
            "painted_over_floor": round(med["painted_ms"] / floor, 1) if floor else None,
            "all_runs": runs,
        },
    )


if __name__ == "__main__":
    main()
