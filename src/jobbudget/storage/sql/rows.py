"""Conversions between table rows and domain objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from ...domain.budget import Budget
from ...domain.codec import (
    channel_from_mapping,
    cost_model_from_mapping,
    cost_model_to_mapping,
    policy_from_mapping,
    to_jsonable,
)
from ...domain.cost import COMPONENTS, CostBreakdown, JobCost
from ...domain.extras import decode_extras
from ...domain.periods import BudgetPeriod
from ...domain.records import CostModelVersion, DailyCost, ForecastSnapshot, average

COST_COLUMNS = COMPONENTS


def job_cost_from_row(row: Mapping[Any, Any], *, duplicate: bool = False) -> JobCost:
    return JobCost(
        job_id=row["job_id"],
        tenant_id=row["tenant_id"],
        queue_name=row["queue_name"],
        job_type=row["job_type"],
        timestamp=row["ts"],
        total_cost=row["total_cost"],
        cost_breakdown=CostBreakdown(*(row[name] for name in COST_COLUMNS)),
        cost_model_version=row["cost_model_version"],
        duplicate=duplicate,
        resources=(extras := decode_extras(row["extras"])).resources,
        labels=extras.labels,
    )


def budget_row(budget: Budget) -> dict[str, Any]:
    period = budget.period
    return {
        "id": budget.id,
        "tenant_id": budget.tenant_id,
        "queue_name": budget.queue_name,
        "period_type": period.type,
        "period_start": period.start_date,
        "period_end": period.end_date,
        "timezone": period.timezone,
        "recurring": bool(period.recurring),
        "amount": budget.amount,
        "currency": budget.currency,
        "warning_threshold": budget.warning_threshold,
        "throttle_threshold": budget.throttle_threshold,
        "block_threshold": budget.block_threshold,
        "enforcement_policy": to_jsonable(budget.enforcement_policy),
        "notifications": to_jsonable(list(budget.notifications)),
        "tags": dict(budget.tags),
        "labels": dict(budget.labels) or None,
        "active": budget.active,
        "created_at": budget.created_at or datetime.now(UTC),
        "updated_at": budget.updated_at or budget.created_at or datetime.now(UTC),
        "created_by": budget.created_by,
        "owner": budget.owner,
    }


def budget_from_row(row: Mapping[Any, Any]) -> Budget:
    return Budget(
        id=row["id"],
        tenant_id=row["tenant_id"],
        queue_name=row["queue_name"],
        period=BudgetPeriod(
            type=row["period_type"],
            start_date=row["period_start"],
            end_date=row["period_end"],
            timezone=row["timezone"],
            recurring=row["recurring"],
        ),
        amount=row["amount"],
        currency=row["currency"],
        warning_threshold=row["warning_threshold"],
        throttle_threshold=row["throttle_threshold"],
        block_threshold=row["block_threshold"],
        enforcement_policy=policy_from_mapping(row["enforcement_policy"]),
        notifications=tuple(channel_from_mapping(c) for c in row["notifications"]),
        tags=dict(row["tags"]),
        labels=dict(row["labels"] or {}),
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        created_by=row["created_by"],
        owner=row["owner"],
    )


def daily_from_row(row: Mapping[Any, Any]) -> DailyCost:
    return DailyCost(
        tenant_id=row["tenant_id"],
        queue_name=row["queue_name"],
        date=row["date"],
        total_jobs=row["total_jobs"],
        total_cost=row["total_cost"],
        breakdown=CostBreakdown(*(row[name] for name in COST_COLUMNS)),
        avg_job_cost=average(row["total_cost"], row["total_jobs"]),
        max_job_cost=row["max_job_cost"],
        min_job_cost=row["min_job_cost"],
        p95_job_cost=row["p95_job_cost"],
    )


def cost_model_row(version: CostModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "model": cost_model_to_mapping(version.model),
        "created_at": version.created_at,
        "created_by": version.created_by,
    }


def cost_model_from_row(row: Mapping[Any, Any]) -> CostModelVersion:
    return CostModelVersion(
        version=row["version"],
        model=cost_model_from_mapping(row["model"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def snapshot_row(snapshot: ForecastSnapshot) -> dict[str, Any]:
    return {f.name: getattr(snapshot, f.name) for f in fields(snapshot)}


def snapshot_from_row(row: Mapping[Any, Any]) -> ForecastSnapshot:
    return ForecastSnapshot(**{f.name: row[f.name] for f in fields(ForecastSnapshot)})
