"""A fixed data set for the TUI tests and snapshots: four budgets at each rung of the
ladder (OK, Warning, Throttle, Block), 40 days of deterministic jobs, and the alerts
they fire, on an in-memory store with a stopped clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from jobbudget.config import Config
from jobbudget.domain.budget import Budget, NotificationChannel
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.service import BudgetService
from jobbudget.storage.memory import MemoryStore

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook?token=s3cret-token"  # never called: delivery is not run
#: (tenant, queue, monthly amount, share of the amount spent by NOW)
BUDGETS = (
    ("acme", "", Decimal(400), Decimal("0.40")),
    ("globex", "render", Decimal(100), Decimal("0.80")),
    ("initech", "", Decimal(50), Decimal("0.95")),
    ("umbrella", "etl", Decimal(20), Decimal("1.20")),
)


def build_service(now: datetime = NOW) -> BudgetService:
    """The data set on a fresh in-memory service (the caller closes it)."""
    service = BudgetService(
        Config(notifications_in_background=False, cost_model="seed"),  # the design document's prices
        clock=lambda: now,
        store=MemoryStore(),
    )
    start = now.replace(day=1, hour=0, minute=0)
    for tenant, queue, amount, _ in BUDGETS:
        channels = (NotificationChannel(type="webhook", target=HOOK),) if tenant == "umbrella" else ()
        service.create_budget(
            Budget(
                tenant_id=tenant,
                queue_name=queue,
                amount=amount,
                period=BudgetPeriod("monthly", start_date=start.date()),
                notifications=channels,
            )
        )
    model = service.get_cost_model()
    per_cpu_second = model.cpu_time_weight
    jobs: list[JobMetrics] = []
    for tenant, queue, amount, share in BUDGETS:
        # spread the month's target over the days so far, weekdays heavier than weekends
        days = (now - start).days + 1
        weights = [3 if (start + timedelta(days=d)).weekday() < 5 else 1 for d in range(days)]
        target = amount * share
        for d, weight in enumerate(weights):
            day_cost = target * weight / sum(weights)
            cpu = (day_cost / per_cpu_second).quantize(Decimal("0.001"))
            jobs.append(
                JobMetrics(
                    job_id=f"{tenant}-{d}",
                    tenant_id=tenant,
                    queue_name=queue or "default",
                    cpu_time=cpu,
                    memory_mb_seconds=Decimal(0),
                    payload_bytes=Decimal(0),
                    redis_ops=Decimal(0),
                    network_bytes=Decimal(0),
                    timestamp=start + timedelta(days=d, hours=1),
                )
            )
        # last month, for the trend chart and the forecast's history
        for d in range(1, 12):
            day = start - timedelta(days=d)
            jobs.append(
                JobMetrics(
                    job_id=f"{tenant}-prev-{d}",
                    tenant_id=tenant,
                    queue_name=queue or "default",
                    cpu_time=(target / 25 / per_cpu_second).quantize(Decimal("0.001")),
                    memory_mb_seconds=Decimal(1000 * d),
                    payload_bytes=Decimal(2048),
                    redis_ops=Decimal(10),
                    network_bytes=Decimal(4096),
                    timestamp=day + timedelta(hours=2),
                )
            )
    service.process_job_costs(jobs)
    # an organisation tree, and a refund of a job of last month (this month's figures stay)
    for node, parent in (("acme", "research"), ("globex", "research"), ("research", "corp"), ("initech", "corp")):
        service.set_parent(node, parent, actor="ops")
    service.refund_job("acme", "acme-prev-3", reason="node n12 failed", actor="ops")
    return service
