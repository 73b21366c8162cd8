"""The calibration use case: fit the cost model to benchmarks, optionally apply it,
and record the outcome so that metrics can export the cost model drift.

Every run (applied or not) adds an audit entry of kind ``"calibration"`` whose
details are the JSON form of :class:`CalibrationRecord`; :func:`latest_calibration`
reads the newest one back (``cost_model_drift_percent = 100 × drift``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.calibration import BenchmarkResult, CalibrationReport, ModelCalibrator
from ..domain.cost import CostModel
from ..domain.errors import ValidationError
from ..domain.records import AuditEntry
from ..ports import AuditLog
from .readmodel import CostModelOwner

__all__ = ["CALIBRATION_KIND", "CalibrationOutcome", "CalibrationRecord", "latest_calibration", "run_calibration"]

CALIBRATION_KIND = "calibration"


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    """What a calibration run found (stored in the audit log).  ``drift`` is the
    mean signed relative error of the model in force before the run (positive: it
    overcharges); ``cost_model_version`` is the version in force after it."""

    at: datetime
    drift: float
    accuracy_before: float
    accuracy_after: float
    cross_validated_accuracy: float
    benchmarks: int
    applied: bool
    cost_model_version: int
    recommended_action: str
    actor: str = "calibrate"

    @property
    def drift_percent(self) -> float:
        """The design document's ``cost_model_drift_percent`` metric."""
        return self.drift * 100

    def details(self) -> dict[str, Any]:
        """The audit-entry details (JSON types only)."""
        return {
            "drift": self.drift,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "cross_validated_accuracy": self.cross_validated_accuracy,
            "benchmarks": self.benchmarks,
            "applied": self.applied,
            "cost_model_version": self.cost_model_version,
            "recommended_action": self.recommended_action,
        }


@dataclass(frozen=True, slots=True)
class CalibrationOutcome:
    """The calibrated model, its report, and whether it was applied."""

    model: CostModel
    report: CalibrationReport
    record: CalibrationRecord

    @property
    def applied(self) -> bool:
        return self.record.applied

    @property
    def cost_model_version(self) -> int:
        return self.record.cost_model_version


def run_calibration(
    source: CostModelOwner, benchmarks: Iterable[BenchmarkResult], *, apply: bool, actor: str = "calibrate"
) -> CalibrationOutcome:
    """Fit the current cost model to ``benchmarks``; with ``apply`` store the
    calibrated model as a new version (jobs already priced keep their cost).  The
    run is recorded in the audit log either way."""
    calibrator = ModelCalibrator()
    calibrator.add_benchmarks(benchmarks)
    model = calibrator.calibrate_model(source.get_cost_model())
    report = calibrator.get_calibration_report()
    version = source.update_cost_model(model, actor=actor).version if apply else source.get_cost_model_version()
    record = CalibrationRecord(
        at=source.now(),
        drift=report.drift,
        accuracy_before=report.accuracy_before,
        accuracy_after=report.accuracy_after,
        cross_validated_accuracy=report.cross_validated_accuracy,
        benchmarks=report.benchmarks,
        applied=apply,
        cost_model_version=version,
        recommended_action=report.recommended_action,
        actor=actor,
    )
    source.store.add_audit([AuditEntry(at=record.at, kind=CALIBRATION_KIND, actor=actor, details=record.details())])
    return CalibrationOutcome(model=model, report=report, record=record)


def latest_calibration(store: AuditLog) -> CalibrationRecord | None:
    """The newest recorded calibration, or None when there has been none."""
    entries = store.list_audit(kind=CALIBRATION_KIND, limit=1)
    return record_from_audit(entries[0]) if entries else None


def record_from_audit(entry: AuditEntry) -> CalibrationRecord:
    """Read a ``calibration`` audit entry back (ValidationError if it is malformed)."""
    d = entry.details
    try:
        return CalibrationRecord(
            at=entry.at,
            drift=float(d["drift"]),
            accuracy_before=float(d["accuracy_before"]),
            accuracy_after=float(d["accuracy_after"]),
            cross_validated_accuracy=float(d["cross_validated_accuracy"]),
            benchmarks=int(d["benchmarks"]),
            applied=bool(d["applied"]),
            cost_model_version=int(d["cost_model_version"]),
            recommended_action=str(d["recommended_action"]),
            actor=entry.actor,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError("audit.details", entry.kind, f"not a calibration record ({exc})") from None
