"""A private Redis killed, restarted and flushed while several processes admit and meter
jobs (``shared_state: redis``, a SQLite file as the ledger).  ``test_shared_state.py``
covers a flush of the keys between calls and a Redis that never answered; here the
server really dies under load: the counters are rebuilt from the ledger within
seconds, decisions are right again, no reservation is left open, and Redis agrees with
the ledger to the nano-dollar."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.domain.errors import StorageUnavailableError
from private_servers import PrivateRedis, private_redis, wait_until

pytestmark = pytest.mark.slow  # real faults: local runs may skip them with -m "not slow"; CI runs them
__all__ = ["private_redis"]  # the fixture, imported for pytest

#: One nano-dollar per CPU second, no base cost.
NANO_MODEL = {"cpu_time_weight": "0.000000001", "base_job_weight": "0"}
RECOVERY_SECONDS = 5.0
WORKERS = 3


def _config(url: str, redis_url: str, prefix: str, mode: str = "local") -> Config:
    return Config(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=prefix,
        redis_failure_mode=mode,
        cost_model=NANO_MODEL,
        notifications_in_background=False,
    )


def _job(tenant: str, nanos: int, job_id: str | None = None) -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id or uuid.uuid4().hex, tenant, "q", Decimal(nanos), zero, zero, zero, zero)


def _setup_budgets(service: BudgetService) -> None:
    """``acme``: far under its budget; ``over``: $20 spent of $10 (blocked)."""
    service.create_budget(Budget(tenant_id="acme", amount=Decimal(10**6), period=BudgetPeriod("monthly")))
    service.create_budget(Budget(tenant_id="over", amount=Decimal(10), period=BudgetPeriod("monthly")))
    service.process_job_costs([_job("over", 10**9) for _ in range(20)])


def _redis_matches_ledger(service: BudgetService) -> bool:
    shared = service.core.hot.counters
    assert shared is not None
    entries = service.core.hot.ledger_entries()
    try:
        hot = shared.spends([(tenant, key) for tenant, key, _ in entries])
    except StorageUnavailableError:
        return False
    return [ledger for _, _, ledger in entries] == hot


def _decisions_right(service: BudgetService) -> bool:
    """``over`` blocks with its true spend, ``acme`` allows, read from Redis."""
    over = service.check_budget_compliance("over", "q")
    return (
        not service.core.hot.down
        and over.type == "block"
        and over.current_spend == Decimal(20)
        and service.check_budget_compliance("acme", "q").type == "allow"
        and _redis_matches_ledger(service)
    )


# -- several processes, real restarts ----------------------------------------------------


def _load_worker(settings: dict[str, str], n: int, stop: Any, out: Any) -> None:
    """Admit and meter $0.5-estimated jobs of ``acme`` until ``stop``: most are metered
    with their reservation, some released, some abandoned (they expire after 2 s)."""
    stats: Counter[str] = Counter()
    acked: dict[str, int] = {}
    errors: list[str] = []
    rng = random.Random(n)
    try:
        service = BudgetService(_config(**settings))
    except Exception as exc:
        out.put((stats, acked, [repr(exc)]))
        raise
    try:
        while not stop.is_set():
            try:
                admission = service.admit("acme", "q", estimated_cost=Decimal("0.5"), ttl_seconds=2)
            except StorageUnavailableError:  # see test_local_mode_admits_from_the_ledger_while_redis_is_down
                stats["admit_unavailable"] += 1
                time.sleep(0.05)
                continue
            stats["admitted" if admission.allowed else "refused"] += 1
            dice = rng.random()
            if dice < 0.8 or admission.reservation_id is None:
                job_id, nanos = f"w{n}-{uuid.uuid4().hex}", rng.randrange(1, 10**9)
                service.process_job_cost(_job("acme", nanos, job_id), reservation_id=admission.reservation_id)
                acked[job_id] = nanos
            elif dice < 0.9:
                service.release(admission.reservation_id)
                stats["released"] += 1
            else:
                stats["abandoned"] += 1
            time.sleep(0.005)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        service.close()
        out.put((stats, acked, errors))


def _wait_recovered(service: BudgetService) -> float:
    took = wait_until(lambda: _decisions_right(service), RECOVERY_SECONDS * 3, interval=0.05)
    assert took <= RECOVERY_SECONDS, f"decisions right again only after {took:.1f} s"
    return took


def test_redis_killed_restarted_and_flushed_under_load_from_several_processes(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    settings = {"url": f"sqlite:///{tmp_path / 'ledger.db'}", "redis_url": private_redis.url, "prefix": "jbf"}
    main = BudgetService(_config(**settings))
    try:
        _setup_budgets(main)
        ctx = mp.get_context("spawn")
        stop, results = ctx.Event(), ctx.Queue()
        workers = [ctx.Process(target=_load_worker, args=(settings, n, stop, results)) for n in range(WORKERS)]
        for w in workers:
            w.start()
        recoveries: dict[str, float] = {}
        try:
            wait_until(lambda: main.check_budget_compliance("acme", "q").current_spend > 2, 60)
            private_redis.restart()  # SIGKILL and start again: empty, and every connection is dead
            recoveries["restart"] = _wait_recovered(main)
            time.sleep(1.0)
            redis.Redis.from_url(private_redis.url).flushall()
            recoveries["flushall"] = _wait_recovered(main)
            time.sleep(1.0)
            private_redis.kill()
            time.sleep(2.0)  # down for a while: the workers go on from the ledger
            assert main.check_budget_compliance("over", "q").type == "block"  # local mode: from the ledger
            assert main.check_budget_compliance("acme", "q").type == "allow"
            private_redis.start()
            recoveries["outage"] = _wait_recovered(main)
            time.sleep(1.0)
        finally:
            stop.set()
            outcomes = [results.get(timeout=60) for _ in workers]
            for w in workers:
                w.join(timeout=30)
        stats: Counter[str] = Counter()
        acked: dict[str, int] = {}
        for worker_stats, worker_acked, errors in outcomes:
            assert not errors, errors
            stats.update(worker_stats)
            acked.update(worker_acked)
        assert stats["refused"] == 0 and len(acked) > 30, stats
        # abandoned holds expire (2 s), the others were settled or released
        leak_wait = wait_until(lambda: main.open_reservations() == 0, 10)
        # nothing lost: the ledger holds every acknowledged job, once
        expected = Decimal(sum(acked.values())) / 10**9
        acme = next(b for b in main.list_budgets("acme"))
        assert acme.id is not None
        assert main.get_budget_status(acme.id).current_spend == expected
        # Redis agrees with the ledger to the nano-dollar, within a bounded time
        converged = wait_until(lambda: _redis_matches_ledger(main), RECOVERY_SECONDS)
        assert _decisions_right(main)
    finally:
        main.close()
    print(
        f"\nredis load: faults=3 jobs={len(acked)} stats={dict(stats)} recovery="
        f"{ {k: round(v, 2) for k, v in recoveries.items()} } leak-wait={leak_wait:.1f}s converged={converged:.1f}s"
    )


# -- each failure mode during a real outage ----------------------------------------------


@pytest.mark.parametrize(
    ("mode", "over", "acme"),
    [("local", "block", "allow"), ("fail_open", "allow", "allow"), ("fail_closed", "block", "block")],
)
def test_each_failure_mode_decides_while_redis_is_dead_and_recovers(
    tmp_path: Path, private_redis: PrivateRedis, mode: str, over: str, acme: str
) -> None:
    config = _config(f"sqlite:///{tmp_path / 'ledger.db'}", private_redis.url, "jbm", mode)
    with BudgetService(config) as service, BudgetService(config) as other:
        _setup_budgets(service)
        other.core.sync.watch_budgets()
        held = service.admit("acme", "q", estimated_cost=Decimal(1))
        assert held.allowed and service.open_reservations() == 1
        private_redis.kill()
        for svc in (service, other):
            assert svc.check_budget_compliance("over", "q").type == over
            assert svc.check_budget_compliance("acme", "q").type == acme
            assert not svc.admit("over", "q", estimated_cost=Decimal(1)).allowed or over == "allow"
        # metering goes on into the ledger, and settling a hold Redis lost is harmless
        service.process_job_cost(_job("acme", 3 * 10**9), reservation_id=held.reservation_id)
        other.process_job_costs([_job("over", 7) for _ in range(3)])
        private_redis.start()
        started = time.monotonic()
        for svc in (service, other):
            wait_until(lambda: _decisions_right_after(svc), RECOVERY_SECONDS)  # noqa: B023
        took = time.monotonic() - started
        assert took <= RECOVERY_SECONDS
        assert service.check_budget_compliance("acme", "q").current_spend == Decimal(3)
        assert service.open_reservations() == 0 and other.open_reservations() == 0
        assert service.admit("acme", "q", estimated_cost=Decimal(1)).allowed
        assert not other.admit("over", "q", estimated_cost=Decimal(1)).allowed
    print(f"\nmode {mode}: recovered in {took:.2f}s")


def _decisions_right_after(service: BudgetService) -> bool:
    over = service.check_budget_compliance("over", "q")
    return (
        not service.core.hot.down
        and over.type == "block"
        and over.current_spend == Decimal("20.000000021")
        and service.check_budget_compliance("acme", "q").type == "allow"
        and _redis_matches_ledger(service)
    )


def test_local_mode_admits_from_the_ledger_while_redis_is_down(tmp_path: Path, private_redis: PrivateRedis) -> None:
    config = _config(f"sqlite:///{tmp_path / 'ledger.db'}", private_redis.url, "jbl", "local")
    with BudgetService(config) as service:
        _setup_budgets(service)
        private_redis.kill()
        assert service.check_budget_compliance("acme", "q").type == "allow"
        admission = service.admit("acme", "q", estimated_cost=Decimal(1))
        assert admission.allowed and admission.reservation_id is not None
        assert service.open_reservations() == 1


def test_a_redis_out_of_memory_is_an_outage_not_an_error(tmp_path: Path, private_redis: PrivateRedis) -> None:
    """A server that is up but refuses writes (OOM under ``noeviction``) is handled like
    an outage: the failure mode decides, and the counters are rebuilt once it serves."""
    config = _config(f"sqlite:///{tmp_path / 'ledger.db'}", private_redis.url, "jbo", "local")
    client = redis.Redis.from_url(private_redis.url)
    with BudgetService(config) as service:
        _setup_budgets(service)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # every write command now answers OOM
        try:
            admission = service.admit("acme", "q", estimated_cost=Decimal(1))  # a write: refused by Redis
            assert admission.allowed and service.core.hot.down  # decided from the ledger (local mode)
            assert service.check_budget_compliance("over", "q").type == "block"
            service.process_job_cost(_job("acme", 5 * 10**9))  # stored in the ledger all the same
        finally:
            client.config_set("maxmemory", 0)
        wait_until(lambda: _decisions_right_after_oom(service), RECOVERY_SECONDS)
        assert service.check_budget_compliance("acme", "q").current_spend == Decimal(5)


def _decisions_right_after_oom(service: BudgetService) -> bool:
    service.core.sync.tick()
    return not service.core.hot.down and _redis_matches_ledger(service)
