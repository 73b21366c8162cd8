"""The cost engine: exact formula, one half-even rounding per component, validation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget import ValidationError
from jobbudget.domain.cost import (
    COMPONENTS,
    CostBreakdown,
    CostCalculationEngine,
    CostModel,
    JobMetrics,
    default_cost_model,
    production_cost_model,
    seed_cost_model,
    staging_cost_model,
)

FAST = settings(max_examples=60, deadline=None)

SEED = {
    "cpu_time": Decimal("15.2"),
    "memory_mb_seconds": Decimal(2048),
    "payload_bytes": Decimal(51200),
    "redis_ops": Decimal(25),
    "network_bytes": Decimal(10240),
}


def metrics(**overrides: object) -> JobMetrics:
    values: dict[str, object] = {"job_id": "job-1", "tenant_id": "acme", "queue_name": "default", **SEED}
    values.update(overrides)
    return JobMetrics(**values)  # type: ignore[arg-type]


# --- an independent reference: Fractions and a hand-written half-even rounding ---


def half_even_nano(value: Fraction) -> Decimal:
    """Round ``value`` to a multiple of 1e-9, ties to the even multiple."""
    scaled = value * 10**9
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Decimal(floor) / Decimal(10**9)


def reference(model: CostModel, usage: dict[str, Decimal]) -> dict[str, Decimal]:
    f = Fraction
    k = f(model.environment_multiplier)
    return {
        "cpu_cost": half_even_nano(f(usage["cpu_time"]) * f(model.cpu_time_weight) * k),
        "memory_cost": half_even_nano(f(usage["memory_mb_seconds"]) * f(model.memory_weight) * k),
        "payload_cost": half_even_nano(f(usage["payload_bytes"]) / 1024 * f(model.payload_weight) * k),
        "redis_cost": half_even_nano(f(usage["redis_ops"]) * f(model.redis_ops_weight) * k),
        "network_cost": half_even_nano(f(usage["network_bytes"]) / 1048576 * f(model.network_weight) * k),
        "base_cost": half_even_nano(f(model.base_job_weight) * k),
    }


def as_dict(breakdown: CostBreakdown) -> dict[str, Decimal]:
    """The six built-in components (named resources are tested in test_resources.py)."""
    assert breakdown.resource_cost == 0
    return {name: getattr(breakdown, name) for name in COMPONENTS if name != "resource_cost"}


# --- models ---


def test_default_model_weights() -> None:
    m = default_cost_model()
    assert m == CostModel()
    assert m.cpu_time_weight == Decimal("0.00001")  # 0.036 $ per core-hour
    assert m.memory_weight == Decimal("0.000000001")  # 0.0036864 $ per GiB-hour
    assert m.payload_weight == Decimal("0.0000001")
    assert m.redis_ops_weight == Decimal("0.0000001")
    assert m.network_weight == Decimal("0.0001")  # 0.1024 $ per GiB
    assert m.base_job_weight == Decimal("0.00001")
    assert m.environment_multiplier == 1
    assert all(isinstance(v, Decimal) for v in m.to_mapping().values())


def test_seed_model_weights_are_the_design_documents() -> None:
    m = seed_cost_model()
    assert m.cpu_time_weight == Decimal("0.0001")
    assert m.memory_weight == Decimal("0.00001")
    assert m.payload_weight == Decimal("0.00002")
    assert m.redis_ops_weight == Decimal("0.000001")
    assert m.network_weight == Decimal("0.01")
    assert m.base_job_weight == Decimal("0.001")
    assert m.environment_multiplier == 1


def test_production_model_weights() -> None:
    m = production_cost_model()
    d = default_cost_model()
    assert m.cpu_time_weight == Decimal("0.00002")
    assert m.memory_weight == Decimal("0.000000002")
    assert m.environment_multiplier == 2
    for name in ("payload_weight", "redis_ops_weight", "network_weight", "base_job_weight"):
        assert getattr(m, name) == getattr(d, name)


def test_staging_model_weights() -> None:
    m = staging_cost_model()
    assert m.environment_multiplier == Decimal("0.5")
    assert {k: v for k, v in m.to_mapping().items() if k != "environment_multiplier"} == {
        k: v for k, v in default_cost_model().to_mapping().items() if k != "environment_multiplier"
    }


def test_cost_model_floats_are_their_shortest_repr() -> None:
    m = CostModel(cpu_time_weight=2.5e-05, environment_multiplier=1.5)  # type: ignore[arg-type]
    assert m.cpu_time_weight == Decimal("0.000025")
    assert str(m.cpu_time_weight) == "0.000025"
    assert m.environment_multiplier == Decimal("1.5")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cpu_time_weight", -1),
        ("memory_weight", float("nan")),
        ("payload_weight", float("inf")),
        ("redis_ops_weight", "0.1"),
        ("network_weight", None),
        ("base_job_weight", True),
        ("cpu_time_weight", Decimal(1001)),
        ("environment_multiplier", 0),
        ("environment_multiplier", Decimal("-0.5")),
    ],
)
def test_cost_model_rejects_bad_weights(name: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        CostModel(**{name: value})  # type: ignore[arg-type]
    assert info.value.field == f"cost_model.{name}"
    assert f"cost_model.{name}" in str(info.value)


def test_cost_model_from_mapping_round_trip_and_unknown_key() -> None:
    m = production_cost_model()
    assert CostModel.from_mapping(m.to_mapping()) == m
    with pytest.raises(ValidationError) as info:
        CostModel.from_mapping({"cpu_weight": Decimal(1)})
    assert info.value.field == "cost_model.cpu_weight"


# --- the seed example ---


SEED_ENGINE = CostCalculationEngine(seed_cost_model())


def test_seed_job_costs_exactly_the_documented_amount() -> None:
    cost = SEED_ENGINE.calculate_job_cost(metrics())
    assert cost.total_cost == Decimal("0.024122656")
    assert str(cost.total_cost) == "0.024122656"
    b = cost.cost_breakdown
    assert b.cpu_cost == Decimal("0.00152")
    assert b.memory_cost == Decimal("0.02048")
    assert b.payload_cost == Decimal("0.001")
    assert b.redis_cost == Decimal("0.000025")
    # 10240 B = 0.009765625 MB × 0.01 = 0.00009765625 → rounded half-even to 0.000097656
    assert b.network_cost == Decimal("0.000097656")
    assert b.base_cost == Decimal("0.001")
    assert cost.job_id == "job-1"
    assert cost.tenant_id == "acme"
    assert cost.queue_name == "default"
    assert cost.duplicate is False


def test_seed_job_given_as_floats_costs_the_same() -> None:
    m = metrics(cpu_time=15.2, memory_mb_seconds=2048.0, payload_bytes=51200, redis_ops=25.0, network_bytes=10240.0)
    assert m.cpu_time == Decimal("15.2")
    assert SEED_ENGINE.calculate_job_cost(m).total_cost == Decimal("0.024122656")


def test_seed_job_under_the_default_model() -> None:
    cost = CostCalculationEngine().calculate_job_cost(metrics())
    assert cost.total_cost == Decimal("0.000172525")  # as docs/cost-model.md says
    assert as_dict(cost.cost_breakdown) == {
        "cpu_cost": Decimal("0.000152"),
        "memory_cost": Decimal("0.000002048"),
        "payload_cost": Decimal("0.000005"),
        "redis_cost": Decimal("0.0000025"),
        "network_cost": Decimal("0.000000977"),  # 0.0000009765625 → half-even
        "base_cost": Decimal("0.00001"),
    }


def test_default_presets_under_production_and_staging() -> None:
    for model in (production_cost_model(), staging_cost_model()):
        cost = CostCalculationEngine(model).calculate_job_cost(metrics())
        assert as_dict(cost.cost_breakdown) == reference(model, SEED)
    assert CostCalculationEngine(staging_cost_model()).calculate_job_cost(metrics()).total_cost == Decimal(
        "0.000086262"
    )


def test_seed_job_under_doubled_and_halved_seed_weights() -> None:
    """Exact ties under a multiplier: the design document's weights at ×2 (CPU and
    memory doubled) and at ×0.5."""
    doubled = replace(
        seed_cost_model(),
        cpu_time_weight=Decimal("0.0002"),
        memory_weight=Decimal("0.00002"),
        environment_multiplier=Decimal(2),
    )
    prod = CostCalculationEngine(doubled).calculate_job_cost(metrics())
    assert prod.cost_breakdown.cpu_cost == Decimal("0.00608")
    assert prod.cost_breakdown.memory_cost == Decimal("0.08192")
    assert prod.cost_breakdown.network_cost == Decimal("0.000195312")  # 0.0001953125, tie → even
    assert prod.cost_breakdown.base_cost == Decimal("0.002")
    assert prod.total_cost == Decimal("0.092245312")
    halved = replace(seed_cost_model(), environment_multiplier=Decimal("0.5"))
    staging = CostCalculationEngine(halved).calculate_job_cost(metrics())
    assert staging.cost_breakdown.network_cost == Decimal("0.000048828")  # 0.000048828125
    assert staging.total_cost == Decimal("0.012061328")


def test_every_component_has_nine_decimal_places() -> None:
    cost = CostCalculationEngine().calculate_job_cost(metrics())
    for name in COMPONENTS:
        assert getattr(cost.cost_breakdown, name).as_tuple().exponent == -9, name
    assert cost.total_cost.as_tuple().exponent == -9


def test_engine_defaults_and_version() -> None:
    engine = CostCalculationEngine(version=7)
    assert engine.model == default_cost_model()
    assert engine.calculate_job_cost(metrics()).cost_model_version == 7


def test_zero_usage_costs_only_the_base() -> None:
    zero = {k: 0 for k in SEED}
    cost = CostCalculationEngine().calculate_job_cost(metrics(**zero))
    assert cost.total_cost == Decimal("0.00001")
    assert cost.cost_breakdown.cpu_cost == 0


# --- half-even rounding at exact ties ---


@pytest.mark.parametrize(
    ("cpu_time", "expected"),
    [
        ("0.000025", "0.000000002"),  # 2.5e-9 → 2e-9 (even)
        ("0.000035", "0.000000004"),  # 3.5e-9 → 4e-9 (even)
        ("0.000005", "0"),  # 0.5e-9 → 0
        ("0.000015", "0.000000002"),  # 1.5e-9 → 2e-9
        ("0.0000250001", "0.000000003"),  # just above the tie rounds up
        ("0.0000249999", "0.000000002"),
    ],
)
def test_components_round_half_even_at_ties(cpu_time: str, expected: str) -> None:
    b = SEED_ENGINE.calculate_breakdown(  # 0.0001 $ per CPU-second
        cpu_time=Decimal(cpu_time),
        memory_mb_seconds=Decimal(0),
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
    )
    assert b.cpu_cost == Decimal(expected)


def test_rounding_happens_per_component_not_on_the_total() -> None:
    # Two components of 0.5e-9 each: rounding each (to 0) differs from rounding their sum (1e-9).
    engine = CostCalculationEngine(replace(seed_cost_model(), base_job_weight=Decimal(0)))
    b = engine.calculate_breakdown(
        cpu_time=Decimal("0.000005"),  # 0.5e-9
        memory_mb_seconds=Decimal("0.00005"),  # 0.5e-9
        payload_bytes=Decimal(0),
        redis_ops=Decimal(0),
        network_bytes=Decimal(0),
    )
    assert b.cpu_cost == 0
    assert b.memory_cost == 0
    assert b.total == 0


def test_breakdown_addition() -> None:
    a = CostBreakdown(cpu_cost=Decimal("0.1"), base_cost=Decimal("0.001"))
    b = CostBreakdown(cpu_cost=Decimal("0.2"), network_cost=Decimal("0.5"))
    s = a + b
    assert s.cpu_cost == Decimal("0.3")
    assert s.network_cost == Decimal("0.5")
    assert s.total == a.total + b.total == Decimal("0.801")


# --- properties ---

usage_values = st.one_of(
    st.integers(min_value=0, max_value=10**15).map(Decimal),
    st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False).map(lambda f: Decimal(repr(f))),
    # exact half-nano ties for the seed CPU weight (0.0001): (2n+1) × 0.5e-9
    st.integers(min_value=0, max_value=10**6).map(lambda n: Decimal(2 * n + 1) * Decimal("0.000005")),
)
usages = st.fixed_dictionaries({name: usage_values for name in SEED})
weights = st.decimals(min_value=0, max_value=Decimal("0.1"), places=9, allow_nan=False, allow_infinity=False)
multipliers = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal(10), places=3, allow_nan=False, allow_infinity=False
)
models = st.one_of(
    st.sampled_from([default_cost_model(), production_cost_model(), staging_cost_model(), seed_cost_model()]),
    st.builds(
        CostModel,
        cpu_time_weight=weights,
        memory_weight=weights,
        payload_weight=weights,
        redis_ops_weight=weights,
        network_weight=weights,
        base_job_weight=weights,
        environment_multiplier=multipliers,
    ),
)


@FAST
@given(model=models, usage=usages)
def test_each_component_is_the_exact_formula_rounded_half_even(model: CostModel, usage: dict[str, Decimal]) -> None:
    b = CostCalculationEngine(model).calculate_breakdown(**usage)
    assert as_dict(b) == reference(model, usage)


@FAST
@given(model=models, usage=usages)
def test_breakdown_adds_up_to_the_total_exactly(model: CostModel, usage: dict[str, Decimal]) -> None:
    cost = CostCalculationEngine(model).calculate_job_cost(metrics(**usage))
    b = cost.cost_breakdown
    assert cost.total_cost == b.total
    assert Fraction(cost.total_cost) == sum(Fraction(getattr(b, name)) for name in COMPONENTS)
    assert cost.total_cost == sum(reference(model, usage).values())


@FAST
@given(
    model=models,
    usage=usages,
    field=st.sampled_from(sorted(SEED)),
    extra=st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
)
def test_cost_is_monotonic_in_each_usage(
    model: CostModel, usage: dict[str, Decimal], field: str, extra: Decimal
) -> None:
    engine = CostCalculationEngine(model)
    before = engine.calculate_breakdown(**usage)
    after = engine.calculate_breakdown(**{**usage, field: usage[field] + extra})
    assert after.total >= before.total
    for name in COMPONENTS:
        assert getattr(after, name) >= getattr(before, name)


@FAST
@given(
    usage=usages,
    k=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(20), places=2, allow_nan=False, allow_infinity=False),
)
def test_multiplier_scales_every_component(usage: dict[str, Decimal], k: Decimal) -> None:
    base = default_cost_model()
    scaled = CostModel(**{**base.to_mapping(), "environment_multiplier": k})
    one = CostCalculationEngine(base).calculate_breakdown(**usage)
    many = CostCalculationEngine(scaled).calculate_breakdown(**usage)
    exact_one = reference(base, usage)
    for name in COMPONENTS:
        # each scaled component is within one rounding (half a nano each side) of k × the unscaled one
        assert abs(Fraction(getattr(many, name)) - Fraction(k) * Fraction(getattr(one, name))) <= (
            Fraction(k) + 1
        ) * Fraction(1, 2 * 10**9)
    assert as_dict(many) == reference(scaled, usage)
    assert as_dict(one) == exact_one


@FAST
@given(
    cpu=st.integers(min_value=0, max_value=10**9),
    memory=st.integers(min_value=0, max_value=10**9),
    redis=st.integers(min_value=0, max_value=10**9),
    kib=st.integers(min_value=0, max_value=10**6),
    mib=st.integers(min_value=0, max_value=10**4),
    k=st.integers(min_value=1, max_value=50),
)
def test_integer_multiplier_scales_exactly_when_nothing_rounds(
    cpu: int, memory: int, redis: int, kib: int, mib: int, k: int
) -> None:
    usage = {
        "cpu_time": Decimal(cpu),
        "memory_mb_seconds": Decimal(memory),
        "payload_bytes": Decimal(kib * 1024),
        "redis_ops": Decimal(redis),
        "network_bytes": Decimal(mib * 1048576),
    }
    one = CostCalculationEngine(default_cost_model()).calculate_breakdown(**usage)
    many = CostCalculationEngine(CostModel(environment_multiplier=Decimal(k))).calculate_breakdown(**usage)
    for name in COMPONENTS:
        assert getattr(many, name) == k * getattr(one, name)
    assert many.total == k * one.total


@FAST
@given(st.floats(min_value=0, max_value=1e18, allow_nan=False, allow_infinity=False))
def test_floats_are_read_as_their_shortest_repr(value: float) -> None:
    m = metrics(cpu_time=value)
    assert m.cpu_time == Decimal(repr(value))
    assert float(m.cpu_time) == value


# --- validation of metrics ---


@pytest.mark.parametrize("field", sorted(SEED))
@pytest.mark.parametrize(
    "bad",
    [
        -1,
        Decimal("-0.000000001"),
        -1e-300,
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        True,
        False,
        "1",
        None,
        10**19,
        1e19,
        Decimal("1e18") + 1,
        [1],
    ],
    ids=repr,
)
def test_invalid_usage_is_rejected_naming_field_and_value(field: str, bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        metrics(**{field: bad})
    err = info.value
    assert err.field == field
    assert err.value is bad
    assert str(err).startswith(f"{field}: ")
    if isinstance(bad, bool):  # in the user's words (JSON's), not Python's
        assert f"(got {str(bad).lower()})" in str(err) and repr(bad) not in str(err)
    elif not (isinstance(bad, float) and math.isnan(bad)) and not isinstance(bad, Decimal):
        assert repr(bad) in str(err)


def test_largest_usage_is_accepted() -> None:
    m = metrics(cpu_time=Decimal("1e18"), network_bytes=10**18, payload_bytes=1e18)
    assert m.cpu_time == Decimal("1e18")
    cost = SEED_ENGINE.calculate_job_cost(m)
    assert cost.cost_breakdown.cpu_cost == Decimal("1e14")
    assert cost.total_cost == cost.cost_breakdown.total


@pytest.mark.parametrize("zero", [Decimal("-0"), -0.0, Decimal("-0E+5"), Decimal("-0.000")], ids=repr)
def test_negative_zero_becomes_zero(zero: object) -> None:
    m = metrics(cpu_time=zero, redis_ops=zero)
    assert m.cpu_time == 0
    assert not m.cpu_time.is_signed()
    assert not m.redis_ops.is_signed()
    assert not CostCalculationEngine().calculate_job_cost(m).cost_breakdown.cpu_cost.is_signed()


def test_too_many_significant_digits_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        metrics(cpu_time=Decimal("1." + "1" * 45))
    assert info.value.field == "cpu_time"


@pytest.mark.parametrize(
    ("field", "limit"),
    [("tenant_id", 50), ("queue_name", 100), ("job_id", 200), ("job_type", 100)],
)
def test_identifier_length_limits(field: str, limit: int) -> None:
    assert getattr(metrics(**{field: "x" * limit}), field) == "x" * limit
    with pytest.raises(ValidationError) as info:
        metrics(**{field: "x" * (limit + 1)})
    assert info.value.field == field
    assert str(limit) in info.value.reason


@pytest.mark.parametrize("field", ["tenant_id", "queue_name", "job_id"])
@pytest.mark.parametrize(
    "bad", ["", "a\x00b", "a\nb", "tab\t", "\x1b[31m", " lead", "trail ", 5, None, b"acme"], ids=repr
)
def test_bad_identifiers_are_rejected(field: str, bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        metrics(**{field: bad})
    assert info.value.field == field
    assert info.value.value == bad


def test_job_type_may_be_empty_but_not_unprintable() -> None:
    assert metrics(job_type="").job_type == ""
    assert metrics(job_type="ml-training").job_type == "ml-training"
    with pytest.raises(ValidationError) as info:
        metrics(job_type="bad\x07")
    assert info.value.field == "job_type"


def test_unicode_printable_identifiers_are_accepted() -> None:
    assert metrics(tenant_id="café-Ω").tenant_id == "café-Ω"


@pytest.mark.parametrize("priority", [0, 5, 10])
def test_priority_in_range(priority: int) -> None:
    assert metrics(priority=priority).priority == priority


@pytest.mark.parametrize("bad", [-1, 11, 100, True, False, 5.0, "5", None], ids=repr)
def test_priority_out_of_range_or_not_whole(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        metrics(priority=bad)
    assert info.value.field == "priority"
    assert info.value.value is bad


def test_timestamp_must_be_aware() -> None:
    aware = datetime(2024, 1, 15, 12, tzinfo=UTC)
    assert metrics(timestamp=aware).timestamp == aware
    assert metrics().timestamp is None
    with pytest.raises(ValidationError) as info:
        metrics(timestamp=datetime(2024, 1, 15, 12))
    assert info.value.field == "timestamp"
    assert "naive" in info.value.reason
    with pytest.raises(ValidationError) as info:
        metrics(timestamp="2024-01-15T12:00:00+00:00")
    assert info.value.field == "timestamp"


def test_with_timestamp_returns_a_copy() -> None:
    m = metrics()
    at = datetime(2024, 1, 15, 12, tzinfo=UTC)
    n = m.with_timestamp(at)
    assert n.timestamp == at
    assert m.timestamp is None
    assert n.cpu_time == m.cpu_time


@pytest.mark.parametrize("year", [1, 1969, 9999])
def test_timestamps_outside_1970_to_9000_are_rejected(year: int) -> None:
    from datetime import UTC, datetime

    with pytest.raises(ValidationError) as bad:
        JobMetrics("j", "t", "q", 1, 1, 1, 1, 1, timestamp=datetime(year, 6, 1, tzinfo=UTC))  # type: ignore[arg-type]
    assert bad.value.field == "timestamp"
