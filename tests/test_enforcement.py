"""The enforcement ladder: allow, warn, throttle, block, grace, warn-only and emergency bypass."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget import Budget, BudgetPeriod, EnforcementPolicy
from jobbudget.domain.enforcement import EnforcementAction, Thresholds, decide, most_restrictive
from jobbudget.domain.periods import first_window

NOW = datetime(2024, 1, 15, 12, tzinfo=UTC)
PERIOD = BudgetPeriod("monthly", date(2024, 1, 1), date(2024, 1, 31))
WINDOW = first_window(PERIOD)
RANK = {"allow": 0, "warn": 1, "throttle": 2, "block": 3}


def budget(amount: object = Decimal(100), **overrides: object) -> Budget:
    policy = overrides.pop("policy", EnforcementPolicy())
    values: dict[str, object] = {
        "id": "b1",
        "tenant_id": "acme",
        "amount": amount,
        "period": PERIOD,
        "enforcement_policy": policy,
        "created_at": NOW - timedelta(days=30),
    }
    values.update(overrides)
    return Budget(**values)  # type: ignore[arg-type]


def run(b: Budget, spend: object, *, priority: int = 5, now: datetime = NOW) -> EnforcementAction:
    return decide(
        budget=b, thresholds=Thresholds.of(b), window=WINDOW, spend=Decimal(str(spend)), priority=priority, now=now
    )


@pytest.mark.parametrize(
    ("spend", "kind", "factor"),
    [
        ("0", "allow", 1.0),
        ("74.999999999", "allow", 1.0),
        ("75", "warn", 1.0),
        ("75.000000000", "warn", 1.0),
        ("89.999999999", "warn", 1.0),  # 89.999999999 %
        ("90", "throttle", 0.5),  # exactly 90 % throttles
        ("99.999999999", "throttle", 0.5),
        ("100", "block", 1.0),
        ("100.000000001", "block", 1.0),
        ("1000000", "block", 1.0),
    ],
)
def test_default_ladder(spend: str, kind: str, factor: float) -> None:
    action = run(budget(), spend)
    assert action.type == kind
    assert action.factor == factor
    assert action.bypass is False
    assert action.allowed is (kind != "block")
    assert action.current_spend == Decimal(spend)
    assert action.budget_amount == Decimal(100)
    assert action.budget_id == "b1"


def test_89_999999999_percent_of_a_large_budget_does_not_throttle() -> None:
    b = budget(Decimal(1000))
    assert run(b, "899.99999999").type == "warn"  # 89.999999999 %
    assert run(b, "900").type == "throttle"


def test_thresholds_are_compared_exactly_not_through_rounded_utilization() -> None:
    # 33.333333333 × 0.9 = 29.9999999997: a nano below 30 is still under it.
    b = budget(Decimal("33.333333333"))
    t = Thresholds.of(b)
    assert t.throttle_at == Decimal("29.9999999997")
    assert run(b, "29.999999999").type == "warn"
    assert run(b, "30.000000000").type == "throttle"
    # utilization is shown rounded (0.900000) but did not decide
    assert run(b, "29.999999999").utilization == Decimal("0.900000")


def test_thresholds_of() -> None:
    b = budget(
        Decimal("200"),
        warning_threshold=Decimal("0.5"),
        throttle_threshold=Decimal("0.8"),
        block_threshold=Decimal("1.2"),
        policy=EnforcementPolicy(grace_period_hours=6),
        created_at=NOW,
    )
    t = Thresholds.of(b)
    assert (t.warn_at, t.throttle_at, t.block_at) == (Decimal(100), Decimal(160), Decimal(240))
    assert t.grace_until == NOW + timedelta(hours=6)
    assert Thresholds.of(budget()).grace_until is None
    assert Thresholds.of(budget(policy=EnforcementPolicy(grace_period_hours=6), created_at=None)).grace_until is None


def test_custom_thresholds_and_factor() -> None:
    b = budget(
        warning_threshold=Decimal("0.5"),
        throttle_threshold=Decimal("0.6"),
        block_threshold=Decimal("1.5"),
        policy=EnforcementPolicy(throttle_factor=0.25),
    )
    assert run(b, "49.99").type == "allow"
    assert run(b, "50").type == "warn"
    action = run(b, "100")
    assert (action.type, action.factor) == ("throttle", 0.25)
    assert "throttled to 25% capacity" in action.message
    assert run(b, "150").type == "block"


def test_equal_thresholds_go_straight_to_block() -> None:
    b = budget(warning_threshold=Decimal(1), throttle_threshold=Decimal(1), block_threshold=Decimal(1))
    assert run(b, "99.999999999").type == "allow"
    assert run(b, "100").type == "block"


def test_no_block_new_jobs_throttles_instead() -> None:
    b = budget(policy=EnforcementPolicy(block_new_jobs=False, throttle_factor=0.1))
    action = run(b, "150")
    assert action.type == "throttle"
    assert action.factor == 0.1
    assert action.allowed


@pytest.mark.parametrize("spend", ["90", "100", "500"])
def test_warn_only_caps_at_warn(spend: str) -> None:
    action = run(budget(policy=EnforcementPolicy(warn_only=True)), spend)
    assert action.type == "warn"
    assert action.factor == 1.0
    assert "warn-only" in action.message
    assert action.bypass is False


def test_warn_only_still_allows_below_the_warning() -> None:
    b = budget(policy=EnforcementPolicy(warn_only=True))
    assert run(b, "10").type == "allow"
    assert run(b, "80").type == "warn"


def test_grace_period_caps_at_warn_until_it_ends() -> None:
    created = NOW - timedelta(hours=1)
    b = budget(policy=EnforcementPolicy(grace_period_hours=2), created_at=created)
    in_grace = run(b, "100")
    assert in_grace.type == "warn"
    assert "grace period" in in_grace.message
    assert run(b, "95").type == "warn"
    assert run(b, "10").type == "allow"
    ends = created + timedelta(hours=2)
    assert run(b, "100", now=ends - timedelta(microseconds=1)).type == "warn"
    assert run(b, "100", now=ends).type == "block"
    assert run(b, "95", now=ends + timedelta(days=1)).type == "throttle"


def test_zero_grace_hours_means_no_grace() -> None:
    b = budget(policy=EnforcementPolicy(grace_period_hours=0), created_at=NOW)
    assert run(b, "100").type == "block"


@pytest.mark.parametrize(("spend", "bypassed"), [("100", "block"), ("95", "throttle")])
def test_emergency_bypass(spend: str, bypassed: str) -> None:
    b = budget()
    action = run(b, spend, priority=9)
    assert action.type == "allow"
    assert action.bypass is True
    assert action.factor == 1.0
    assert action.allowed
    assert f"emergency bypass of {bypassed} at priority 9" in action.message
    assert run(b, spend, priority=10).bypass is True
    below = run(b, spend, priority=8)
    assert (below.type, below.bypass) == (bypassed, False)


def test_emergency_bypass_respects_policy() -> None:
    assert run(budget(policy=EnforcementPolicy(allow_emergency=False)), "100", priority=10).type == "block"
    strict = budget(policy=EnforcementPolicy(emergency_priority=10))
    assert run(strict, "100", priority=9).type == "block"
    assert run(strict, "100", priority=10).bypass is True
    lax = budget(policy=EnforcementPolicy(emergency_priority=0))
    assert run(lax, "100", priority=0).bypass is True


def test_emergency_does_not_turn_a_warning_into_a_bypass() -> None:
    action = run(budget(), "80", priority=10)
    assert (action.type, action.bypass) == ("warn", False)
    capped = run(budget(policy=EnforcementPolicy(warn_only=True)), "100", priority=10)
    assert (capped.type, capped.bypass) == ("warn", False)
    assert run(budget(), "10", priority=10).bypass is False


def test_utilization_and_message() -> None:
    action = run(budget(Decimal(200), queue_name="ml"), "150")
    assert action.utilization == Decimal("0.750000")
    assert action.type == "warn"
    assert "acme/ml" in action.message
    assert "150.00 of 200.00 USD" in action.message
    assert "(75.0%)" in action.message
    assert "2024-01-01..2024-01-31" in action.message
    assert "over the warning threshold" in action.message
    assert "new jobs blocked" in run(budget(), "100").message


def test_extreme_ratio_of_spend_to_amount_does_not_crash() -> None:
    # A nano-dollar budget and a huge (valid) spend: utilization is ~1e22.
    action = run(budget(Decimal("0.000000001")), "10000000000000")
    assert action.type == "block"
    assert action.utilization == Decimal("1e22")


# --- the ladder against a Fraction reference ---

fractions_ = st.integers(min_value=1, max_value=2000).map(lambda n: Decimal(n) / 1000)


@settings(max_examples=150, deadline=None)
@given(
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2),
    thresholds=st.lists(fractions_, min_size=3, max_size=3).map(sorted),
    spend=st.decimals(min_value=0, max_value=Decimal(3 * 10**6), places=9),
    block_new_jobs=st.booleans(),
)
def test_ladder_matches_exact_reference(
    amount: Decimal, thresholds: list[Decimal], spend: Decimal, block_new_jobs: bool
) -> None:
    w, t, b = thresholds
    policy = EnforcementPolicy(block_new_jobs=block_new_jobs, throttle_factor=0.3)
    bud = budget(amount, warning_threshold=w, throttle_threshold=t, block_threshold=b, policy=policy)
    u = Fraction(spend) / Fraction(amount)
    if u >= Fraction(b):
        expected = "block" if block_new_jobs else "throttle"
    elif u >= Fraction(t):
        expected = "throttle"
    elif u >= Fraction(w):
        expected = "warn"
    else:
        expected = "allow"
    action = run(bud, spend)
    assert action.type == expected
    assert action.factor == (0.3 if expected == "throttle" else 1.0)


@settings(max_examples=80, deadline=None)
@given(
    spends=st.lists(st.decimals(min_value=0, max_value=300, places=9), min_size=2, max_size=6).map(sorted),
    priority=st.integers(min_value=0, max_value=8),
)
def test_ladder_is_monotonic_in_spend(spends: list[Decimal], priority: int) -> None:
    b = budget()
    ranks = [RANK[run(b, s, priority=priority).type] for s in spends]
    assert ranks == sorted(ranks)


# --- most restrictive across budgets ---


def act(kind: str, factor: float = 1.0, bypass: bool = False, budget_id: str | None = None) -> EnforcementAction:
    return EnforcementAction(type=kind, factor=factor, bypass=bypass, budget_id=budget_id)


ALLOW = act("allow", budget_id="allow")
WARN = act("warn", budget_id="warn")
BYPASS = act("allow", bypass=True, budget_id="bypass")
THROTTLE = act("throttle", 0.5, budget_id="throttle")
BLOCK = act("block", budget_id="block")
ORDER = [ALLOW, WARN, BYPASS, THROTTLE, BLOCK]


def test_most_restrictive_order() -> None:
    for i, weaker in enumerate(ORDER):
        for stronger in ORDER[i + 1 :]:
            assert most_restrictive([weaker, stronger]) is stronger
            assert most_restrictive([stronger, weaker]) is stronger


def test_most_restrictive_of_nothing_allows() -> None:
    action = most_restrictive([])
    assert action.type == "allow"
    assert action.allowed
    assert action.bypass is False


def test_lower_throttle_factor_is_more_restrictive() -> None:
    gentle = act("throttle", 0.8, budget_id="gentle")
    harsh = act("throttle", 0.2, budget_id="harsh")
    assert most_restrictive([gentle, harsh]) is harsh
    assert most_restrictive([harsh, gentle]) is harsh


@pytest.mark.parametrize("perm", list(itertools.permutations(ORDER)))
def test_most_restrictive_ignores_order(perm: tuple[EnforcementAction, ...]) -> None:
    assert most_restrictive(list(perm)) is BLOCK
    assert most_restrictive([a for a in perm if a is not BLOCK]) is THROTTLE
    assert most_restrictive([a for a in perm if a not in (BLOCK, THROTTLE)]) is BYPASS


def test_most_restrictive_over_real_decisions() -> None:
    tenant = budget(Decimal(100))
    queue = budget(Decimal(10), id="b2", queue_name="ml", policy=EnforcementPolicy(throttle_factor=0.2))
    actions = [run(tenant, "80"), run(queue, "9.5")]
    winner = most_restrictive(actions)
    assert (winner.type, winner.factor, winner.budget_id) == ("throttle", 0.2, "b2")
    bypassed = [run(tenant, "80", priority=9), run(queue, "9.5", priority=9)]
    assert most_restrictive(bypassed).bypass is True


@settings(max_examples=300)
@given(
    cases=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=200),  # spend
            st.sampled_from([False, True]),  # warn only
            st.sampled_from([Decimal("0.9"), Decimal("1.0")]),  # block threshold
            st.sampled_from([0.25, 0.5]),  # throttle factor
        ),
        min_size=0,
        max_size=6,
    ),
    priority=st.sampled_from([5, 9]),
)
def test_decide_each_picks_what_most_restrictive_picks_and_keeps_every_bypass(
    cases: list[tuple[int, bool, Decimal, float]], priority: int
) -> None:
    from jobbudget.domain.enforcement import decide_each

    entries = []
    for i, (spend, warn_only, block, factor) in enumerate(cases):
        b = budget(
            id=f"b{i}",
            throttle_threshold=Decimal("0.8"),
            block_threshold=block,
            policy=EnforcementPolicy(warn_only=warn_only, throttle_factor=factor),
        )
        entries.append((b, Thresholds.of(b), first_window(b.period), Decimal(spend)))
    full = [decide(budget=b, thresholds=t, window=w, spend=s, priority=priority, now=NOW) for b, t, w, s in entries]
    chosen = decide_each(entries, priority=priority, now=NOW)
    assert most_restrictive(chosen) == most_restrictive(full)
    assert [a for a in chosen if a.bypass] == [a for a in full if a.bypass]
