"""Structured errors: stable codes and whether retrying can help."""

from __future__ import annotations

from decimal import Decimal

import pytest

import jobbudget
from jobbudget import (
    BudgetError,
    ConflictError,
    EnforcementError,
    JobBudgetError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    ValidationError,
    error_code,
    is_permanent,
    is_retryable,
)


def enforcement_error() -> EnforcementError:
    return EnforcementError(
        action="block",
        current_spend=Decimal("105.5"),
        budget_amount=Decimal(100),
        utilization=Decimal("1.055"),
        budget_id="b1",
    )


@pytest.mark.parametrize(
    ("err", "code", "retryable"),
    [
        (ValidationError("amount", -1, "must be greater than 0"), "VALIDATION_FAILED", False),
        (NotFoundError("budget", "b1"), "BUDGET_NOT_FOUND", False),
        (NotFoundError("cost model", "7"), "COST_MODEL_NOT_FOUND", False),
        (ConflictError("duplicate"), "CONFLICT", False),
        (StorageUnavailableError("connection refused"), "STORAGE_UNAVAILABLE", True),
        (StorageError("disk full"), "STORAGE_ERROR", False),
        (enforcement_error(), "BUDGET_EXCEEDED", False),
        (JobBudgetError("boom"), "INTERNAL", False),
        (RuntimeError("not ours"), "INTERNAL", False),
        (KeyError("x"), "INTERNAL", False),
        (TimeoutError("slow"), "INTERNAL", True),
        (ConnectionResetError("reset"), "INTERNAL", True),
    ],
)
def test_codes_and_retryability(err: BaseException, code: str, retryable: bool) -> None:
    assert error_code(err) == code
    assert is_retryable(err) is retryable
    assert is_permanent(err) is (not retryable)
    if isinstance(err, JobBudgetError):
        assert err.code == code
        assert bool(err.retryable) is retryable


@pytest.mark.parametrize(
    ("cause", "code", "retryable"),
    [
        (StorageUnavailableError("db down"), "STORAGE_UNAVAILABLE", True),
        (ValidationError("tenant_id", "", "must not be empty"), "VALIDATION_FAILED", False),
        (NotFoundError("tenant", "acme"), "TENANT_NOT_FOUND", False),
        (StorageError("read-only"), "STORAGE_ERROR", False),
        (TimeoutError(), "INTERNAL", True),
        (ZeroDivisionError(), "INTERNAL", False),
    ],
)
def test_budget_error_delegates_to_its_cause(cause: BaseException, code: str, retryable: bool) -> None:
    err = BudgetError("record_job", "acme", cause)
    assert err.code == code
    assert err.retryable is retryable
    assert error_code(err) == code
    assert is_retryable(err) is retryable
    assert is_permanent(err) is (not retryable)
    assert err.err is cause
    assert err.operation == "record_job"
    assert err.tenant_id == "acme"
    assert "record_job" in str(err)
    assert "'acme'" in str(err)


def test_nested_budget_errors_delegate_all_the_way_down() -> None:
    inner = BudgetError("flush", "acme", StorageUnavailableError("down"))
    outer = BudgetError("record_job", "acme", inner)
    assert error_code(outer) == "STORAGE_UNAVAILABLE"
    assert is_retryable(outer)


def test_validation_error_carries_field_value_and_reason() -> None:
    err = ValidationError("cpu_time", -1, "must not be negative")
    assert (err.field, err.value, err.reason) == ("cpu_time", -1, "must not be negative")
    assert str(err) == "cpu_time: must not be negative (got -1)"
    assert isinstance(err, ValueError)
    assert isinstance(err, JobBudgetError)


def test_validation_error_shortens_long_values() -> None:
    err = ValidationError("tenant_id", "x" * 500, "too long")
    assert len(str(err)) < 150
    assert str(err).endswith("...)")


def test_not_found_is_a_lookup_error() -> None:
    err = NotFoundError("budget", "b-42")
    assert isinstance(err, LookupError)
    assert (err.kind, err.key) == ("budget", "b-42")
    assert str(err) == "budget not found: 'b-42'"


def test_enforcement_error_reports_the_numbers() -> None:
    err = enforcement_error()
    assert err.action == "block"
    assert err.current_spend == Decimal("105.5")
    assert err.budget_amount == Decimal(100)
    assert err.utilization == Decimal("1.055")
    assert err.budget_id == "b1"
    assert "105.5/100" in str(err)
    assert "105.5%" in str(err)
    custom = EnforcementError(
        action="throttle",
        current_spend=Decimal(1),
        budget_amount=Decimal(1),
        utilization=Decimal(1),
        message="custom message",
    )
    assert str(custom) == "custom message"


def test_every_error_is_exported_and_a_job_budget_error() -> None:
    for cls in (
        BudgetError,
        ConflictError,
        EnforcementError,
        NotFoundError,
        StorageError,
        StorageUnavailableError,
        ValidationError,
    ):
        assert issubclass(cls, JobBudgetError)
        assert getattr(jobbudget, cls.__name__) is cls
        assert cls.__name__ in jobbudget.__all__


def test_codes_are_distinct() -> None:
    codes = {
        error_code(e)
        for e in (
            ValidationError("f", 1, "r"),
            ConflictError(),
            StorageUnavailableError(),
            StorageError(),
            enforcement_error(),
            NotFoundError("budget", "x"),
        )
    }
    assert len(codes) == 6
