"""RedisLedger against the real Redis at 127.0.0.1:6379 (fails instead of skipping in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypedDict

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import IN_CI
from jobbudget.counters.redis_ledger import RedisLedger, Reservation, SpendSnapshot
from jobbudget.domain.errors import StorageError, StorageUnavailableError, ValidationError

REDIS_HOST = os.environ.get("JOBBUDGET_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("JOBBUDGET_TEST_REDIS_PORT", "6379"))
P = date(2024, 1, 1)
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


class Key(TypedDict):
    tenant_id: str
    budget_id: str
    period_start: date


KEY: Key = {"tenant_id": "acme", "budget_id": "b1", "period_start": P}


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5, socket_connect_timeout=3)
    try:
        c.ping()
    except redis.RedisError as exc:
        c.close()
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    yield c
    c.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    name = f"jbtest-{uuid.uuid4().hex}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def ledger(client: redis.Redis, prefix: str) -> RedisLedger:
    return RedisLedger(client, prefix=prefix)


def reserve(
    ledger: RedisLedger,
    rid: str,
    estimate: str,
    limit: str | None = None,
    *,
    now: datetime = NOW,
    ttl_seconds: float = 60,
    key: Key = KEY,
) -> Reservation:
    return ledger.reserve(
        **key,
        reservation_id=rid,
        estimate=Decimal(estimate),
        limit=None if limit is None else Decimal(limit),
        now=now,
        ttl_seconds=ttl_seconds,
    )


def test_nano_increments_sum_exactly(ledger: RedisLedger) -> None:
    total = Decimal(0)
    for _ in range(1000):
        total = ledger.add_spend(**KEY, amount=Decimal("0.000000001"))
    assert total == Decimal("0.000001000") == ledger.spend(**KEY)
    assert str(ledger.spend(**KEY)) == "0.000001000"


def test_amounts_near_a_billion_are_exact(ledger: RedisLedger) -> None:
    ledger.set_spend(**KEY, spend=Decimal("999999999.999999998"))
    assert ledger.add_spend(**KEY, amount=Decimal("0.000000001")) == Decimal("999999999.999999999")
    parts = [Decimal("1000000000"), Decimal("999999999.999999999"), Decimal("-0.000000007"), Decimal("123.456789012")]
    ledger.set_spend(**KEY, spend=Decimal(0))
    for part in parts:
        ledger.add_spend(**KEY, amount=part)
    assert ledger.spend(**KEY) == sum(parts) == Decimal("2000000123.456789004")


def test_totals_up_to_a_redis_integer_and_never_past_it(ledger: RedisLedger) -> None:
    top = Decimal("9223372036.854775807")  # 2**63 - 1 nanos
    ledger.set_spend(**KEY, spend=top - 1)
    assert ledger.add_spend(**KEY, amount=Decimal(1)) == top
    with pytest.raises(StorageError):
        ledger.add_spend(**KEY, amount=Decimal("0.000000001"))
    with pytest.raises(StorageError):  # the failed settle leaves everything as it was
        ledger.settle(**KEY, reservation_id="r", actual=Decimal("0.000000001"))
    assert ledger.spend(**KEY) == top
    assert ledger.settle(**KEY, reservation_id="r", actual=Decimal(0)) == top  # the id was not marked settled
    assert not reserve(ledger, "x", "0.000000001", "1000000000").granted
    with pytest.raises(ValidationError):
        ledger.set_spend(**KEY, spend=top + Decimal("0.000000001"))


def test_limit_check_is_exact_beyond_double_precision(ledger: RedisLedger) -> None:
    # 999999999999999999 + 1 nanos rounds to 1e18 as a double: a float check would grant both.
    ledger.set_spend(**KEY, spend=Decimal("999999999.999999999"))
    assert reserve(ledger, "r1", "0.000000001", "1000000000").granted
    refused = reserve(ledger, "r2", "0.000000001", "1000000000")
    assert not refused.granted
    assert refused.spend == Decimal("999999999.999999999") and refused.reserved == Decimal("0.000000001")
    # three large terms: 6e8 spend + (4e8 - 2 nanos) reserved + 1 nano against a 1e9 limit
    key2: Key = {**KEY, "budget_id": "b2"}
    ledger.set_spend(**key2, spend=Decimal("600000000"))
    ok = ledger.reserve(
        **key2,
        reservation_id="a",
        estimate=Decimal("399999999.999999998"),
        limit=Decimal("1e9"),
        now=NOW,
        ttl_seconds=9,
    )
    assert ok.granted and ok.reserved == Decimal("399999999.999999998")
    for rid, granted in (("b", True), ("c", True), ("d", False)):
        r = ledger.reserve(
            **key2, reservation_id=rid, estimate=Decimal("0.000000001"), limit=Decimal("1e9"), now=NOW, ttl_seconds=9
        )
        assert r.granted is granted, rid
    snap = ledger.snapshot(**key2, now=NOW)
    assert snap == SpendSnapshot(Decimal("600000000"), Decimal("400000000.000000000"), 3)


def test_reserve_grants_until_the_limit_and_is_idempotent(ledger: RedisLedger) -> None:
    assert reserve(ledger, "a", "4", "10").granted
    again = reserve(ledger, "a", "4", "10")
    assert again.granted and again.reserved == Decimal(4)
    assert reserve(ledger, "b", "6", "10").granted
    refused = reserve(ledger, "c", "0.000000001", "10")
    assert refused == Reservation(False, Decimal(0), Decimal(10), "c")
    assert reserve(ledger, "c", "0", "10").granted  # zero always fits at the limit
    assert reserve(ledger, "big", "1000", None).granted  # no limit
    assert ledger.snapshot(**KEY, now=NOW) == SpendSnapshot(Decimal(0), Decimal(1010), 4)


def test_release_frees_room(ledger: RedisLedger) -> None:
    assert reserve(ledger, "a", "10", "10").granted
    assert not reserve(ledger, "b", "1", "10").granted
    assert ledger.release(**KEY, reservation_id="a") is True
    assert ledger.release(**KEY, reservation_id="a") is False
    assert reserve(ledger, "b", "1", "10").granted
    assert ledger.snapshot(**KEY, now=NOW) == SpendSnapshot(Decimal(0), Decimal(1), 1)


def test_settle_replaces_estimate_with_actual_and_is_idempotent(ledger: RedisLedger) -> None:
    ledger.set_spend(**KEY, spend=Decimal("2"))
    assert reserve(ledger, "a", "5", "10").granted
    assert ledger.settle(**KEY, reservation_id="a", actual=Decimal("3.000000001")) == Decimal("5.000000001")
    assert ledger.settle(**KEY, reservation_id="a", actual=Decimal("3.000000001")) == Decimal("5.000000001")
    assert ledger.snapshot(**KEY, now=NOW) == SpendSnapshot(Decimal("5.000000001"), Decimal(0), 0)
    # a retried reserve of a settled id does not hold money again
    again = reserve(ledger, "a", "5", "10")
    assert again.granted and again.reserved == 0
    # settling an unknown (or expired) reservation still records the cost, once
    assert ledger.settle(**KEY, reservation_id="z", actual=Decimal(1)) == Decimal("6.000000001")
    assert ledger.settle(**KEY, reservation_id="z", actual=Decimal(1)) == Decimal("6.000000001")


def test_expired_reservations_are_dropped(ledger: RedisLedger) -> None:
    assert reserve(ledger, "a", "6", "10", ttl_seconds=30).granted
    assert reserve(ledger, "b", "4", "10", ttl_seconds=90).granted
    later = NOW + timedelta(seconds=30)
    assert not reserve(ledger, "c", "6", "10", now=later - timedelta(milliseconds=1)).granted
    granted = reserve(ledger, "c", "6", "10", now=later, ttl_seconds=120)  # drops "a" first
    assert granted.granted and granted.reserved == Decimal(10)
    assert ledger.snapshot(**KEY, now=NOW + timedelta(seconds=90)) == SpendSnapshot(Decimal(0), Decimal(6), 1)
    assert ledger.expire(**KEY, now=NOW + timedelta(seconds=149)) == 0
    assert ledger.expire(**KEY, now=NOW + timedelta(seconds=150)) == 1
    assert ledger.expire(**KEY, now=NOW + timedelta(seconds=150)) == 0
    assert ledger.snapshot(**KEY, now=NOW) == SpendSnapshot(Decimal(0), Decimal(0), 0)


def test_keys_share_one_hash_tag_per_tenant(client: redis.Redis, ledger: RedisLedger, prefix: str) -> None:
    tenant = "we{ir}d:%tenant } {"
    key: Key = {"tenant_id": tenant, "budget_id": "b:1", "period_start": P}
    ledger.add_spend(**key, amount=Decimal(1))
    ledger.reserve(**key, reservation_id="r:1", estimate=Decimal(1), limit=None, now=NOW, ttl_seconds=60)
    ledger.settle(**key, reservation_id="s", actual=Decimal(1))
    keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
    assert len(keys) == 5  # spend, reserved, res, resexp, settled marker
    assert len({_hash_tag(k) for k in keys}) == 1
    other: Key = {"tenant_id": tenant + "x", "budget_id": "b:1", "period_start": P}
    assert ledger.spend(**other) == 0 and ledger.spend(**key) == Decimal(2)


def _hash_tag(key: str) -> str:
    """The Redis Cluster hash tag of ``key`` (the part that picks its slot)."""
    start = key.index("{")
    end = key.index("}", start + 1)
    assert end > start + 1
    return key[start + 1 : end]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("estimate", {"estimate": Decimal(-1)}),
        ("estimate", {"estimate": Decimal("NaN")}),
        ("estimate", {"estimate": Decimal("0.0000000001")}),
        ("limit", {"limit": Decimal("Infinity")}),
        ("reservation_id", {"reservation_id": ""}),
        ("tenant_id", {"tenant_id": ""}),
        ("budget_id", {"budget_id": ""}),
        ("now", {"now": datetime(2024, 1, 1)}),
        ("ttl_seconds", {"ttl_seconds": 0}),
    ],
)
def test_invalid_inputs_name_the_field(ledger: RedisLedger, field: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        **KEY,
        "reservation_id": "r",
        "estimate": Decimal(1),
        "limit": None,
        "now": NOW,
        "ttl_seconds": 5,
        **kwargs,
    }
    with pytest.raises(ValidationError) as info:
        ledger.reserve(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_unreachable_redis_is_storage_unavailable() -> None:
    # no retries: redis-py's default policy retries with backoff for seconds before giving up
    no_retry = Retry(NoBackoff(), 0)
    dead = RedisLedger(
        redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=no_retry), prefix="jb-dead"
    )
    with pytest.raises(StorageUnavailableError) as info:
        dead.reserve(**KEY, reservation_id="r", estimate=Decimal(1), limit=Decimal(2), now=NOW, ttl_seconds=5)
    assert info.value.retryable
    with pytest.raises(StorageUnavailableError):
        dead.add_spend(**KEY, amount=Decimal(1))
    with pytest.raises(StorageUnavailableError):
        dead.snapshot(**KEY, now=NOW)


WORKER = textwrap.dedent(
    """
    import sys, uuid
    from datetime import UTC, date, datetime
    from decimal import Decimal
    import redis
    from jobbudget.counters.redis_ledger import RedisLedger

    host, port, prefix, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    client = redis.Redis(host=host, port=port, socket_timeout=30)
    ledger = RedisLedger(client, prefix=prefix)
    key = {"tenant_id": "acme", "budget_id": "shared", "period_start": date(2024, 1, 1)}
    client.incr(go + ":ready")
    client.blpop([go], timeout=30)
    granted = 0
    while True:
        rid = uuid.uuid4().hex
        r = ledger.reserve(**key, reservation_id=rid, estimate=Decimal(1), limit=Decimal(100),
                           now=datetime.now(UTC), ttl_seconds=300)
        if not r.granted:
            break
        granted += 1
        ledger.settle(**key, reservation_id=rid, actual=Decimal(1))
    print(granted)
    """
)


def test_eight_processes_enforce_one_budget_exactly(client: redis.Redis, ledger: RedisLedger, prefix: str) -> None:
    go = f"{prefix}:go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, REDIS_HOST, str(REDIS_PORT), prefix, go],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        deadline = time.monotonic() + 60
        while int(client.get(f"{go}:ready") or 0) < 8:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers if w.poll() is not None]
            time.sleep(0.02)
        client.rpush(go, *["go"] * 8)
        outputs = [w.communicate(timeout=60) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [w.returncode for w in workers] == [0] * 8, [err for _, err in outputs]
    counts = [int(out.strip()) for out, _ in outputs]
    assert sum(counts) == 100, counts
    key: Key = {"tenant_id": "acme", "budget_id": "shared", "period_start": P}
    assert ledger.spend(**key) == Decimal("100.000000000")
    assert str(ledger.spend(**key)) == "100.000000000"
    snap = ledger.snapshot(**key, now=datetime.now(UTC))
    assert snap == SpendSnapshot(Decimal("100.000000000"), Decimal(0), 0)
