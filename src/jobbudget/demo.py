"""The demo behind ``jobbudget demo``: replay a real grid workload against budgets.

It reads the MetaCentrum trace ``alea_wagap-2013.swf`` (17,900 jobs, 2012-12-31 to
2013-03-30), shipped compressed inside the package (``jobbudget/data/traces``, with
its provenance in ``NOTICE``), prices every job with public GCP
us-central1 prices (OpenCost's defaults), gives the three tenants that spent most in
the trace's last month a monthly budget of 80-120 % of that spend (and the top
spender's two costliest queues a budget of their own), then replays the jobs in time
order on a simulated clock: each job is checked when it is submitted (blocked jobs
never run) and billed when it finishes.  ``$JOBBUDGET_DATA_DIR`` may name another
copy; should the trace be missing altogether, a clearly labelled synthetic workload
with a fixed seed is used instead.

:func:`run_demo` returns a :class:`DemoReport`; the CLI prints it.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .domain.budget import Budget
from .domain.cost import CostCalculationEngine, CostModel, JobMetrics
from .domain.errors import ValidationError
from .domain.money import ZERO
from .domain.periods import BudgetPeriod
from .importers import ParsedJob, SwfOptions, open_input, parse_swf_trace
from .service import BudgetService, BudgetStatus

if TYPE_CHECKING:
    from .domain.reporting import BudgetReport

__all__ = [
    "DEFAULT_DATABASE_URL",
    "PACKAGED_TRACE",
    "TRACE_NAME",
    "DemoReport",
    "demo_cost_model",
    "find_trace",
    "run_demo",
]

DEFAULT_DATABASE_URL = "sqlite:///jobbudget-demo.db"
TRACE_NAME = "alea_wagap-2013.swf"
#: The trace as shipped in the package (gzip; see ``data/traces/NOTICE`` beside it).
PACKAGED_TRACE = Path(__file__).resolve().parent / "data" / "traces" / f"{TRACE_NAME}.gz"
OUTCOMES = ("allow", "warn", "throttle", "block", "bypass")
#: Jobs of these queues are submitted at emergency priority (9) and may bypass budgets.
PRIORITY_QUEUES = frozenset({"priority_long", "ops"})
#: Budget amount as a share of what each tenant (or queue) spent in the last month.
TENANT_SHARES = (Decimal("1.2"), Decimal("1.05"), Decimal("0.85"))
QUEUE_SHARES = (Decimal("0.9"), Decimal("1.1"))
_BATCH = 100  # bill finished jobs in batches of at most this many
_MAX_LAG = timedelta(hours=6)  # ... or as soon as the oldest waits this long
_RESERVATION_TTL = 7 * 24 * 3600  # the longest a reservation may live; longer jobs outlive theirs
_SYNTHETIC_JOBS = 5000
_SYNTHETIC_SEED = 2013


def demo_cost_model() -> CostModel:
    """GCP us-central1 list prices (``pricing/opencost_configs_default.json``): CPU
    0.031611 $/vCPU-hour, RAM 0.004237 $/GiB-hour, egress 0.12 $/GiB, converted to
    $/CPU-second, $/MB-second and $/MB (15 significant digits)."""
    ctx = Context(prec=15)
    return CostModel(
        cpu_time_weight=ctx.divide(Decimal("0.031611"), Decimal(3600)),
        memory_weight=ctx.divide(Decimal("0.004237"), Decimal(1024 * 3600)),
        payload_weight=ZERO,
        redis_ops_weight=ZERO,
        network_weight=ctx.divide(Decimal("0.12"), Decimal(1024)),
        base_job_weight=ZERO,
        environment_multiplier=Decimal(1),
    )


@dataclass(frozen=True, slots=True)
class TraceJob:
    """A job of the replayed workload: when it was submitted and what it used (its
    ``metrics.timestamp`` is when it finished)."""

    submitted: datetime
    metrics: JobMetrics


class DemoClock:
    """The simulated clock the service reads (aware UTC)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, instant: datetime) -> None:
        self.now = max(self.now, instant)


@dataclass(frozen=True, slots=True)
class QueueSpend:
    queue_name: str
    jobs: int
    cost: Decimal


@dataclass(slots=True)
class DemoReport:
    source: str
    synthetic: bool
    database_url: str
    month_start: date
    month_end: date
    jobs: int = 0
    skipped: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    billed: int = 0
    still_running: int = 0
    total_cost: Decimal = ZERO
    top_spender: str = ""
    statuses: list[BudgetStatus] = field(default_factory=list)
    queue_spend: list[QueueSpend] = field(default_factory=list)
    report: BudgetReport | None = None  # the top spender's report of the month
    seconds: float = 0.0
    #: an admin key of the demo database, to sign in to the dashboard (``jobbudget serve``)
    dashboard_key: str = ""


def find_trace() -> Path | None:
    """``$JOBBUDGET_DATA_DIR`` (or its ``traces/``; plain or ``.gz``), else the trace
    shipped in the package."""
    candidates: list[Path] = []
    data_dir = os.environ.get("JOBBUDGET_DATA_DIR")
    if data_dir:
        for folder in (Path(data_dir) / "traces", Path(data_dir)):
            candidates += [folder / TRACE_NAME, folder / f"{TRACE_NAME}.gz"]
    candidates.append(PACKAGED_TRACE)
    return next((p for p in candidates if p.is_file()), None)


def synthetic_jobs(count: int = _SYNTHETIC_JOBS, seed: int = _SYNTHETIC_SEED) -> list[TraceJob]:
    """A made-up workload shaped like the trace (heavy-tailed users and run times)."""
    rng = random.Random(seed)
    start = datetime(2013, 1, 1, tzinfo=UTC)
    span = (datetime(2013, 3, 31, tzinfo=UTC) - start).total_seconds()
    tenants = [f"synthetic-user-{i:02d}" for i in range(1, 13)]
    weights = [1 / (i + 1) for i in range(len(tenants))]
    queues = {"q_2h": 3600.0, "q_4h": 7200.0, "q_1d": 30000.0, "q_2d": 60000.0, "q_1w": 200000.0}
    jobs = []
    for n in range(count):
        tenant = rng.choices(tenants, weights)[0]
        queue = rng.choice(list(queues))
        run = min(int(rng.lognormvariate(math.log(queues[queue] / 4), 1.0)), int(queues[queue] * 3))
        procs = rng.choice((1, 2, 4, 8, 16, 32, 64))
        submitted = start + timedelta(seconds=int(rng.random() * span))
        wait = int(rng.expovariate(1 / 600))
        metrics = JobMetrics(
            job_id=f"synthetic-{n}",
            tenant_id=tenant,
            queue_name=queue,
            cpu_time=Decimal(run * procs),
            memory_mb_seconds=Decimal(procs * rng.choice((512, 1024, 2048)) * run),
            payload_bytes=ZERO,
            redis_ops=ZERO,
            network_bytes=ZERO,
            job_type=queue,
            timestamp=submitted + timedelta(seconds=wait + run),
        )
        jobs.append(TraceJob(submitted, metrics))
    return jobs


def _load(trace: Path | None) -> tuple[list[TraceJob], int, str, bool]:
    if trace is None:
        return synthetic_jobs(), 0, f"synthetic workload ({_SYNTHETIC_JOBS} jobs, seed {_SYNTHETIC_SEED})", True
    jobs: list[TraceJob] = []
    others = 0
    with open_input(str(trace)) as lines:
        for item in parse_swf_trace(lines, SwfOptions(prefix="wagap")):
            if isinstance(item, ParsedJob) and item.submitted is not None:
                jobs.append(TraceJob(item.submitted, item.metrics))
            else:
                others += 1
    return jobs, others, str(trace), False


def _month_of(instant: datetime) -> tuple[datetime, datetime]:
    start = instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _remove_sqlite_file(url: str) -> None:
    if url.startswith("memory:"):
        return
    if not url.startswith("sqlite:///"):
        raise ValidationError("database_url", url.split("://")[0] + "://...", "demo --fresh needs a SQLite file URL")
    path = Path(url[len("sqlite:///") :])
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            candidate.unlink()


def _spend_in(
    jobs: Iterable[TraceJob], engine: CostCalculationEngine, start: datetime, end: datetime
) -> dict[str, Decimal]:
    """Cost of the jobs finished in ``[start, end)``, by tenant and by ``tenant/queue``."""
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for job in jobs:
        m = job.metrics
        if m.timestamp is not None and start <= m.timestamp < end:
            cost = engine.calculate_job_cost(m).total_cost
            spend[m.tenant_id] += cost
            spend[f"{m.tenant_id}/{m.queue_name}"] += cost
    return spend


def _amount(spend: Decimal, share: Decimal) -> Decimal:
    return max((spend * share).quantize(Decimal(1)), Decimal(1))


def _create_budgets(
    service: BudgetService, spend: dict[str, Decimal], month: date, *, currency: str = "USD"
) -> tuple[list[Budget], str]:
    for old in service.list_budgets():  # --keep: replace the budgets of an earlier run
        if old.created_by == "demo" and old.id is not None:
            service.deactivate_budget(old.id, actor="demo")
    period = BudgetPeriod(type="monthly", start_date=month)
    tenants = [t for t, _ in sorted(spend.items(), key=lambda kv: (-kv[1], kv[0])) if "/" not in t][:3]
    budgets = [
        service.create_budget(
            Budget(tenant_id=t, amount=_amount(spend[t], share), period=period, currency=currency), actor="demo"
        )
        for t, share in zip(tenants, TENANT_SHARES, strict=False)
    ]
    top = tenants[0] if tenants else ""
    queues = sorted(
        ((k, v) for k, v in spend.items() if k.startswith(top + "/") and v > 0), key=lambda kv: (-kv[1], kv[0])
    )[:2]
    for (key, value), share in zip(queues, QUEUE_SHARES, strict=False):
        queue = key.split("/", 1)[1]
        budget = Budget(tenant_id=top, queue_name=queue, amount=_amount(value, share), period=period)
        budgets.append(service.create_budget(budget, actor="demo"))
    return budgets, top


def run_demo(
    database_url: str = DEFAULT_DATABASE_URL, *, fresh: bool = True, config: Config | None = None
) -> DemoReport:
    """Run the whole demo and return what happened."""
    started = time.perf_counter()
    if fresh:
        _remove_sqlite_file(database_url)
    trace = find_trace()
    jobs, skipped, source, synthetic = _load(trace)
    jobs = [
        replace(j, metrics=replace(j.metrics, priority=9)) if j.metrics.queue_name in PRIORITY_QUEUES else j
        for j in jobs
    ]
    jobs.sort(key=lambda j: (j.submitted, j.metrics.job_id))
    if not jobs:
        raise ValidationError("trace", source, "holds no job that ran")
    month_start, trace_end = _month_of(max(j.submitted for j in jobs))
    config = (config or Config()).model_copy(update={"database_url": database_url})
    model = demo_cost_model()
    spend = _spend_in(jobs, CostCalculationEngine(model), month_start, trace_end)
    report = DemoReport(
        source=source,
        synthetic=synthetic,
        database_url=config.redacted_url(),
        month_start=month_start.date(),
        month_end=(trace_end - timedelta(days=1)).date(),
        jobs=len(jobs),
        skipped=skipped,
    )
    clock = DemoClock(jobs[0].submitted)
    budgets: list[Budget] = []
    with BudgetService(config, clock=clock) as service:
        service.update_cost_model(model, actor="demo")

        def open_month() -> None:  # the budgets appear on the first day of the month they govern
            created, report.top_spender = _create_budgets(service, spend, month_start.date())
            budgets.extend(created)

        _replay(service, clock, jobs, (month_start, trace_end), open_month, report)
        clock.advance_to(trace_end - timedelta(seconds=1))
        report.statuses = [service.get_budget_status(str(b.id)) for b in budgets]
        daily = service.get_daily_costs(report.top_spender, start=report.month_start, end=report.month_end)
        per_queue: dict[str, tuple[int, Decimal]] = {}
        for row in daily:
            jobs_so_far, cost_so_far = per_queue.get(row.queue_name, (0, ZERO))
            per_queue[row.queue_name] = (jobs_so_far + row.total_jobs, cost_so_far + row.total_cost)
        report.queue_spend = sorted(
            (QueueSpend(q, n, c) for q, (n, c) in per_queue.items()), key=lambda s: (-s.cost, s.queue_name)
        )
        if report.top_spender:
            month = BudgetPeriod("monthly", start_date=report.month_start)
            report.report = service.generate_report(report.top_spender, month)
        _, report.dashboard_key = service.create_api_key(role="admin", name="demo", actor="demo")
    report.seconds = time.perf_counter() - started
    return report


def _replay(
    service: BudgetService,
    clock: DemoClock,
    jobs: list[TraceJob],
    month: tuple[datetime, datetime],
    open_month: Callable[[], None],
    report: DemoReport,
) -> None:
    """Check each job at submission; bill admitted jobs when they finish.  ``open_month``
    is called once, at the start of ``month``, after everything finished by then is billed."""
    start, end = month
    # heap of admitted jobs by finish time, each with the reservation its admission holds
    running: list[tuple[datetime, str, JobMetrics, str | None]] = []
    finished: list[JobMetrics] = []
    reservations: list[str | None] = []
    opened = False

    def finish_one() -> None:
        _, _, metrics, reservation_id = heapq.heappop(running)
        finished.append(metrics)
        reservations.append(reservation_id)

    def finish_until(instant: datetime, *, before: bool = False) -> None:
        while running and (running[0][0] < instant if before else running[0][0] <= instant):
            finish_one()

    def bill(now: datetime) -> None:
        clock.advance_to(now)
        if finished:
            for cost in service.process_job_costs(finished, reservation_ids=reservations):
                if not cost.duplicate:
                    report.billed += 1
                    report.total_cost += cost.total_cost
            finished.clear()
            reservations.clear()

    for job in jobs:
        now = job.submitted
        if not opened and now >= start:
            finish_until(start, before=True)
            bill(start)
            open_month()
            opened = True
        finish_until(now)
        if finished and (len(finished) >= _BATCH or now - finished[0].timestamp >= _MAX_LAG):  # type: ignore[operator]
            bill(now)
        clock.advance_to(now)
        m = job.metrics
        # admission reserves the job's expected cost (the queue's mean so far) until it is billed
        admission = service.admit(m.tenant_id, m.queue_name, priority=m.priority, ttl_seconds=_RESERVATION_TTL)
        action = admission.action
        report.outcomes["bypass" if action.bypass else action.type] += 1
        if action.type != "block":
            assert m.timestamp is not None
            heapq.heappush(running, (m.timestamp, m.job_id, m, admission.reservation_id))
    if not opened:
        open_month()
    while running and running[0][0] < end:
        finish_one()
        if len(finished) >= _BATCH:
            bill(finished[-1].timestamp)  # type: ignore[arg-type]
    if finished:
        bill(finished[-1].timestamp)  # type: ignore[arg-type]
    report.still_running = len(running)
    for *_, reservation_id in running:  # still running when the month ends: not billed in it
        if reservation_id is not None:
            service.release(reservation_id)
