"""Estimating a job's cost before it runs: profiles, history, pricing with the engine."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget import ValidationError
from jobbudget.domain.cost import CostCalculationEngine, production_cost_model, seed_cost_model
from jobbudget.domain.estimation import (
    MIN_OBSERVATIONS,
    PROFILES,
    UsageProfile,
    UsageStats,
    choose_profile,
    estimate_cost,
)

ENGINE = CostCalculationEngine(seed_cost_model())  # the design document's prices


def stats(count: int, *, cpu: str = "2", memory: str = "4096", redis: str = "10", network: str = "2048") -> UsageStats:
    s = UsageStats()
    for _ in range(count):
        s.add(
            cpu_time=Decimal(cpu),
            memory_mb_seconds=Decimal(memory),
            redis_ops=Decimal(redis),
            network_bytes=Decimal(network),
        )
    return s


def test_min_observations_is_twenty() -> None:
    assert MIN_OBSERVATIONS == 20


def test_every_documented_job_type_has_a_profile() -> None:
    for name in ("ml-training", "ml-inference", "etl", "batch", "report", "api-call", "email", "webhook", "default"):
        profile = PROFILES[name]
        assert profile.source == "profile"
        assert profile.memory_mb_per_cpu_second > 0
    assert PROFILES["ml-training"].memory_mb_per_cpu_second > PROFILES["api-call"].memory_mb_per_cpu_second


def test_profile_used_without_history() -> None:
    assert choose_profile("etl", tenant=None, overall=None) is PROFILES["etl"]
    assert choose_profile("no-such-type", tenant=None, overall=None) is PROFILES["default"]
    assert choose_profile("", tenant=UsageStats(), overall=UsageStats()) is PROFILES["default"]


def test_tenant_history_is_preferred_once_it_has_enough_jobs() -> None:
    tenant = stats(MIN_OBSERVATIONS, cpu="2", memory="4096", redis="10", network="2048")
    overall = stats(1000, cpu="1", memory="100", redis="1", network="1")
    p = choose_profile("etl", tenant=tenant, overall=overall)
    assert p.source == "tenant history"
    assert p.memory_mb_per_cpu_second == 2048
    assert p.redis_ops_per_job == 10
    assert p.network_bytes_per_job == 2048


def test_job_type_history_when_the_tenant_has_too_few_jobs() -> None:
    tenant = stats(MIN_OBSERVATIONS - 1)
    overall = stats(MIN_OBSERVATIONS, cpu="1", memory="300", redis="7", network="99")
    p = choose_profile("etl", tenant=tenant, overall=overall)
    assert p.source == "job type history"
    assert (p.memory_mb_per_cpu_second, p.redis_ops_per_job, p.network_bytes_per_job) == (
        Decimal(300),
        Decimal(7),
        Decimal(99),
    )


def test_profile_when_neither_history_has_enough_jobs() -> None:
    p = choose_profile("report", tenant=stats(MIN_OBSERVATIONS - 1), overall=stats(MIN_OBSERVATIONS - 1))
    assert p is PROFILES["report"]
    assert choose_profile("report", tenant=None, overall=stats(5)) is PROFILES["report"]


def test_history_without_cpu_time_is_not_used() -> None:
    tenant = stats(50, cpu="0")
    assert tenant.profile("tenant history") is None
    assert choose_profile("batch", tenant=tenant, overall=None) is PROFILES["batch"]


def test_history_averages_uneven_jobs() -> None:
    s = UsageStats()
    for i in range(MIN_OBSERVATIONS):
        s.add(
            cpu_time=Decimal(i + 1),
            memory_mb_seconds=Decimal(100 * (i + 1)),
            redis_ops=Decimal(i),
            network_bytes=Decimal(1000),
        )
    p = s.profile("tenant history")
    assert p is not None
    assert p.memory_mb_per_cpu_second == 100
    assert p.redis_ops_per_job == Decimal("9.5")
    assert p.network_bytes_per_job == 1000


def test_stats_merge() -> None:
    a, b = stats(12), stats(8, cpu="4")
    a.merge(b)
    assert a.count == 20
    assert a.cpu_time == Decimal(12 * 2 + 8 * 4)
    assert a.memory_mb_seconds == Decimal(20 * 4096)
    assert a.profile("x") is not None


def test_estimate_from_a_profile_is_priced_with_the_engine() -> None:
    # etl: 1024 MB per CPU-second, 200 Redis ops, 10 MB network.
    # cpu 10 s → 0.001; memory 10240 MB·s → 0.1024; payload 5 KB → 0.0001;
    # redis 200 → 0.0002; network 10 MB → 0.1; base 0.001.
    assert estimate_cost(ENGINE, profile=PROFILES["etl"], cpu_time=10, payload_kb=5) == Decimal("0.2047")


def test_estimate_uses_the_engine_model() -> None:
    prod = CostCalculationEngine(production_cost_model())
    profile = PROFILES["api-call"]
    cpu, kb = Decimal("1.5"), Decimal(2)
    expected = prod.calculate_breakdown(
        cpu_time=cpu,
        memory_mb_seconds=cpu * profile.memory_mb_per_cpu_second,
        payload_bytes=kb * 1024,
        redis_ops=profile.redis_ops_per_job,
        network_bytes=profile.network_bytes_per_job,
    ).total
    got = estimate_cost(prod, profile=profile, cpu_time=cpu, payload_kb=kb)
    assert got == expected
    default = CostCalculationEngine()  # production doubles the default's CPU and memory and multiplies by 2
    assert got > estimate_cost(default, profile=profile, cpu_time=cpu, payload_kb=kb)


def test_estimate_from_tenant_history() -> None:
    profile = choose_profile("etl", tenant=stats(MIN_OBSERVATIONS), overall=None)
    # cpu 3 s → 0.0003; memory 3 × 2048 = 6144 MB·s → 0.06144; payload 0; redis 10 → 0.00001;
    # network 2048 B → 0.01 × 2048/1048576 = 0.00001953125 → 0.000019531; base 0.001
    assert estimate_cost(ENGINE, profile=profile, cpu_time=3, payload_kb=0) == Decimal("0.062769531")


def test_estimate_of_a_profile_with_zero_usage_costs_only_the_base() -> None:
    profile = UsageProfile(Decimal(0), Decimal(0), Decimal(0))
    assert estimate_cost(ENGINE, profile=profile, cpu_time=0, payload_kb=0) == seed_cost_model().base_job_weight


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("cpu_time", {"cpu_time": -1, "payload_kb": 0}),
        ("cpu_time", {"cpu_time": float("nan"), "payload_kb": 0}),
        ("cpu_time", {"cpu_time": "10", "payload_kb": 0}),
        ("payload_kb", {"cpu_time": 1, "payload_kb": float("inf")}),
        ("payload_kb", {"cpu_time": 1, "payload_kb": None}),
        ("payload_kb", {"cpu_time": 1, "payload_kb": True}),
    ],
)
def test_estimate_rejects_bad_inputs(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        estimate_cost(ENGINE, profile=PROFILES["default"], **kwargs)
    assert info.value.field == field


def half_even_nano(value: Fraction) -> Fraction:
    scaled = value * 10**9
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        floor += 1
    return Fraction(floor, 10**9)


@settings(max_examples=60, deadline=None)
@given(
    job_type=st.sampled_from(sorted(PROFILES)),
    cpu=st.decimals(min_value=0, max_value=10**6, places=3),
    kb=st.decimals(min_value=0, max_value=10**6, places=3),
    more=st.decimals(min_value=0, max_value=1000, places=3),
)
def test_estimate_matches_the_formula_and_grows_with_cpu(
    job_type: str, cpu: Decimal, kb: Decimal, more: Decimal
) -> None:
    p = PROFILES[job_type]
    m = seed_cost_model()
    f = Fraction
    expected = sum(
        half_even_nano(x)
        for x in (
            f(cpu) * f(m.cpu_time_weight),
            f(cpu) * f(p.memory_mb_per_cpu_second) * f(m.memory_weight),
            f(kb) * f(m.payload_weight),
            f(p.redis_ops_per_job) * f(m.redis_ops_weight),
            f(p.network_bytes_per_job) / 1048576 * f(m.network_weight),
            f(m.base_job_weight),
        )
    )
    got = estimate_cost(ENGINE, profile=p, cpu_time=cpu, payload_kb=kb)
    assert Fraction(got) == expected
    assert estimate_cost(ENGINE, profile=p, cpu_time=cpu + more, payload_kb=kb) >= got
    assert estimate_cost(ENGINE, profile=p, cpu_time=cpu, payload_kb=kb + more) >= got
