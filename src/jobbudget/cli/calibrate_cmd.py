"""``jobbudget calibrate``: fit the cost model to real infrastructure costs."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..domain.codec import cost_model_to_mapping
from ..domain.errors import ValidationError
from .common import ConfigOption, DatabaseOption, JsonOption, Settings, cli_errors, emit_json, open_service, out_console

if TYPE_CHECKING:
    from ..analytics.calibration import CalibrationOutcome

__all__ = ["LABELS", "calibrate", "plain_weight"]

#: Weight -> (label, unit) for tables.
LABELS = {
    "cpu_time_weight": ("CPU", "$/CPU-second"),
    "memory_weight": ("Memory", "$/MB·second"),
    "payload_weight": ("Payload", "$/KB"),
    "redis_ops_weight": ("Redis", "$/operation"),
    "network_weight": ("Network", "$/MB"),
    "base_job_weight": ("Base", "$/job"),
    "environment_multiplier": ("Environment multiplier", "×"),
}
_ACTION_STYLES = {"apply the calibrated model": "bold green", "collect more benchmarks": "yellow"}


def calibrate(
    benchmarks: Annotated[
        Path,
        typer.Argument(metavar="BENCHMARKS.csv", dir_okay=False, help="CSV of benchmark results.", show_default=False),
    ],
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Store the calibrated model as a new version (priced jobs keep their cost)."),
    ] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Fit the cost model's weights to jobs whose real infrastructure cost is known.

    BENCHMARKS.csv has a header naming actual_cost, cpu_time, memory_mb_seconds,
    payload_bytes, redis_ops, network_bytes and timestamp (ISO-8601 with offset), and
    optionally job_type, calculated_cost and infrastructure_cost.  At least 10 rows.
    Prints the accuracy of the current and calibrated models (in sample and 5-fold
    cross-validated), the current model's drift (positive: it overcharges), the old
    and new weights and a recommendation.  Every run is recorded in the audit log.
    """
    # Imported here: the fit needs numpy, which other commands should not pay for.
    from ..analytics.calibration import run_calibration
    from ..domain.calibration_io import read_benchmarks_csv

    settings = Settings(config, database_url, json)
    with cli_errors():
        text = _read(benchmarks)
        with open_service(settings, creates=apply) as service:  # a dry run needs a database to read
            items = read_benchmarks_csv(
                io.StringIO(text, newline=""), model=service.get_cost_model(), source=str(benchmarks)
            )
            outcome = run_calibration(service, items, apply=apply)
    if json:
        emit_json(
            {
                "benchmarks_file": str(benchmarks),
                "report": outcome.report,
                "calibrated_model": cost_model_to_mapping(outcome.model),
                "applied": outcome.applied,
                "cost_model_version": outcome.cost_model_version,
            }
        )
    else:
        _print_calibration(outcome)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError("benchmarks", str(path), f"cannot read file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError("benchmarks", str(path), "is not UTF-8 text") from None


def plain_weight(value: Decimal) -> str:
    """Positional notation for tables (``0.0000000011``, not ``1.1E-9``)."""
    return format(value, "f")


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ratio(ratio: float | None) -> str:
    """``4.00× (+300.0%)``: a price ratio as people say it, never capped."""
    if ratio is None:
        return "an unknown multiple of"
    return f"{ratio:.2f}× ({(ratio - 1) * 100:+.1f}%)"


def _print_calibration(outcome: CalibrationOutcome) -> None:
    r = outcome.report
    console = out_console()
    console.print(
        f"Calibrated against {r.benchmarks} benchmarks (environment multiplier {r.environment_multiplier} kept)."
    )
    console.print(
        f"The current model charges {_ratio(r.price_ratio_before)} what the jobs really cost, "
        f"the calibrated one {_ratio(r.price_ratio_after)} (median over the benchmarks)."
    )
    console.print(
        f"Accuracy score (1 − mean error, each error capped at 100 %): current model {_pct(r.accuracy_before)}, "
        f"calibrated {_pct(r.accuracy_after)} in sample, {_pct(r.cross_validated_accuracy)} cross-validated "
        f"({r.folds}-fold)."
    )
    table = Table(title="Weights", title_justify="left")
    table.add_column("Component")
    table.add_column("Unit")
    table.add_column("Current", justify="right")
    table.add_column("Calibrated", justify="right")
    table.add_column("Change", justify="right")
    for change in r.weight_changes:
        label, unit = LABELS[change.name]
        if change.relative_change is None:
            delta = Text("new", style="yellow")
        else:
            style = "" if abs(change.relative_change) < 0.05 else "yellow"
            delta = Text(f"{change.relative_change * 100:+.1f}%", style=style)
        table.add_row(label, unit, plain_weight(change.old), plain_weight(change.new), delta)
    console.print(table)
    for missing in r.unidentified_components:
        label = LABELS[missing.name][0]
        console.print(f"Kept the current {label} weight: {escape(missing.reason)}.")
    style = _ACTION_STYLES.get(r.recommended_action, "")
    console.print(Text("Recommendation: ") + Text(r.recommended_action, style=style) + Text("."))
    if outcome.applied:
        console.print(f"Applied: cost model version {outcome.cost_model_version} prices new jobs from now on.")
    else:
        console.print(
            f"Not applied (cost model version {outcome.cost_model_version} stays in force); "
            "run again with --apply to store the calibrated model."
        )
