"""Alert delivery for real: the background dispatcher, a SQLite file, the real clock
and a webhook receiver on 127.0.0.1.

(a) latency: from the ``process_job_cost`` call whose spend crosses a budget's
    warning threshold to the webhook request arriving at the receiver, for N budgets
    that each cross once (one at a time);
(b) outage: the receiver is down (a closed port) for ``--down-seconds`` while the
    events are produced, then comes back: every event must arrive exactly once
    (counted by the ``webhook-id`` header); reported with the time to drain after the
    receiver is back.  Backoff doubles up to ~16-32 s in a 30 s outage, so the
    channels allow 10 retries (``retry_count``) instead of the default 5.

    .venv/bin/python benchmarks/bench_alerts.py [--budgets 200] [--events 100] [--down-seconds 30] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import free_port, percentile, report

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics, NotificationChannel

WAIT = 60.0  # seconds to wait for one delivery before giving up


class Receiver:
    """A webhook receiver on 127.0.0.1 recording (event id, arrival time)."""

    def __init__(self, port: int = 0) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.arrived:
                    receiver.arrivals.append((self.headers.get("webhook-id", ""), time.perf_counter()))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def open_service(path: Path) -> BudgetService:
    config = Config(
        database_url=f"sqlite:///{path}",
        cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"},
        notification_allowed_networks=["127.0.0.1/32"],  # the receiver; loopback is refused by default
    )
    # background delivery on, whatever the environment says (the test suite turns it off)
    return BudgetService(config.model_copy(update={"notifications_in_background": True}))


def add_budgets(service: BudgetService, n: int, port: int, **metadata: str) -> list[str]:
    tenants = [f"tenant-{i:04d}" for i in range(n)]
    for tenant in tenants:  # each budget its own endpoint (and so its own rate limit)
        hook = NotificationChannel(
            type="webhook", target=f"http://127.0.0.1:{port}/hooks/{tenant}", events=("warning",), metadata=metadata
        )
        service.create_budget(
            Budget(tenant_id=tenant, amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=(hook,))
        )
    return tenants


def crossing_job(tenant: str) -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id=f"{tenant}-job", tenant_id=tenant, queue_name="q", cpu_time=Decimal(800_000),
                      memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero)  # fmt: skip


def latency(budgets: int, tmp: Path) -> dict[str, Any]:
    receiver = Receiver()
    try:
        with open_service(tmp / "latency.db") as service:
            tenants = add_budgets(service, budgets, receiver.port, timeout="5s")
            millis, write_millis = [], []
            for i, tenant in enumerate(tenants, start=1):
                start = time.perf_counter()
                service.process_job_cost(crossing_job(tenant))  # 80 %: the warning fires
                write_millis.append((time.perf_counter() - start) * 1000)
                if not receiver.wait_for(i, WAIT):
                    raise SystemExit(f"alert {i} did not arrive within {WAIT:.0f} s")
                millis.append((receiver.arrivals[-1][1] - start) * 1000)
    finally:
        receiver.close()
    values = sorted(millis)
    return {
        "budgets": budgets,
        "median_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(values[-1], 2),
        "mean_ms": round(statistics.fmean(values), 2),
        "process_job_cost_median_ms": round(statistics.median(write_millis), 2),
    }


def outage(events: int, down_seconds: float, tmp: Path) -> dict[str, Any]:
    port = free_port()  # nothing listens until the receiver comes back
    with open_service(tmp / "outage.db") as service:
        tenants = add_budgets(service, events, port, timeout="5s", retry_count="10")
        went_down = time.perf_counter()
        for i, tenant in enumerate(tenants):  # the events come in spread over the outage
            service.process_job_cost(crossing_job(tenant))
            pause = went_down + down_seconds * 0.8 * (i + 1) / events - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        time.sleep(max(0.0, went_down + down_seconds - time.perf_counter()))
        receiver = Receiver(port)  # back up
        back = time.perf_counter()
        try:
            drained = receiver.wait_for(events, WAIT + down_seconds)
            drain_s = time.perf_counter() - back
            time.sleep(2.0)  # more turns of the dispatcher: nothing may arrive twice
            counts = Counter(event_id for event_id, _ in receiver.arrivals)
        finally:
            receiver.close()
        alerts = service.list_alerts(limit=events + 10)
    states = [d for a in alerts for d in a.deliveries]
    ids = {a.event.id for a in alerts}
    return {
        "events": events,
        "down_seconds": down_seconds,
        "arrived_distinct": len(set(counts) & ids),
        "duplicates": sum(n - 1 for n in counts.values()),
        "exactly_once": drained and set(counts) == ids and all(n == 1 for n in counts.values()),
        "drain_seconds_after_recovery": round(drain_s, 2),
        "attempts_max": max(d.attempts for d in states),
        "attempts_median": statistics.median(d.attempts for d in states),
        "dead_letters": sum(d.status == "failed" for d in states),
        "retry_count": 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=int, default=200, help="budgets for the latency run")
    parser.add_argument("--events", type=int, default=100, help="events produced during the outage")
    parser.add_argument("--down-seconds", type=float, default=30.0, help="how long the receiver is down")
    parser.add_argument("--quick", action="store_true", help="20 budgets, 20 events, a 3 s outage")
    args = parser.parse_args()
    if args.quick:
        args.budgets, args.events, args.down_seconds = 20, 20, 3.0
    os.environ.pop("JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND", None)
    logging.getLogger("jobbudget").setLevel(logging.ERROR)  # the outage logs every failed attempt
    with tempfile.TemporaryDirectory() as tmp:
        figures = {
            "latency": latency(args.budgets, Path(tmp)),
            "outage": outage(args.events, args.down_seconds, Path(tmp)),
        }
    report("alerts", figures)


if __name__ == "__main__":
    main()
