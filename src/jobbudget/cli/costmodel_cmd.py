"""``jobbudget costmodel show|presets|set``: the cost model in force, and the named
models to switch to: the built-in ones (``default``, ``production``, ``staging``,
``seed``) and the cloud price tables (``gcp``, ``aws``, ...)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..domain.codec import cost_model_to_mapping
from ..domain.cost import CostModel
from ..domain.money import canonical
from ..domain.resources import family
from ..pricing import BUILT_IN, model_names, named_model, unit_prices
from .calibrate_cmd import LABELS, plain_weight
from .common import ConfigOption, DatabaseOption, JsonOption, Settings, cli_errors, emit_json, open_service, out_console
from .import_prices import parse_prices

__all__ = ["costmodel_app"]

costmodel_app = typer.Typer(
    help="Show the cost model in force, list the named models (built-in and cloud price tables), or switch to one.",
    no_args_is_help=True,
    add_completion=False,
)

PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset", metavar="NAME", help="A named model (see `jobbudget costmodel presets`).", show_default=False
    ),
]
#: What each built-in model is, in a few words.
_BUILT_IN = {
    "default": "cloud list prices in round numbers",
    "production": "default with doubled CPU and memory, ×2",
    "staging": "default at half price",
    "seed": "the design document's example weights",
}
_HOUR = Decimal(3600)
_GIB_IN_MB = Decimal(1024)


def _weights_table(model: CostModel, title: str) -> Table:
    table = Table(title=escape(title), title_justify="left")
    table.add_column("Component")
    table.add_column("Weight", justify="right")
    table.add_column("Unit")
    for name, value in model.to_mapping().items():
        if name in LABELS:
            label, unit = LABELS[name]
            table.add_row(label, plain_weight(value), unit)
    for resource, price in model.resources.items():
        unit = "$/GPU-second" if family(resource) == "gpu" else "$/unit"
        table.add_row(Text(f"resource {resource}"), plain_weight(price), unit)
    for queue, rates in model.queues.items():
        weights = ", ".join(f"{k}={plain_weight(v)}" for k, v in rates.weights.items())
        table.add_row(Text(f"queue {queue}"), f"×{plain_weight(rates.multiplier)}", weights or "multiplier")
    for qos, multiplier in model.qos.items():
        table.add_row(Text(f"QoS {qos}"), f"×{plain_weight(multiplier)}", "multiplier")
    if model.max_tres:
        table.add_row("MAX_TRES", ", ".join(model.max_tres), "only the largest is charged")
    return table


def _model_json(name: str) -> dict[str, Any]:
    """A named model with the unit prices people compare: per core-hour, per GiB-hour
    of memory and per GiB sent (a cloud table's as published, a built-in's derived)."""
    model = named_model(name)
    if name in BUILT_IN:
        k = model.environment_multiplier
        provider, description = "jobbudget", _BUILT_IN[name]
        prices = {
            "cpu_per_vcpu_hour": canonical(model.cpu_time_weight * _HOUR * k),
            "ram_per_gib_hour": canonical(model.memory_weight * _GIB_IN_MB * _HOUR * k),
            "egress_per_gib": canonical(model.network_weight * _GIB_IN_MB * k),
        }
    else:
        table = unit_prices(name)
        provider, description = table.provider, table.description
        prices = {
            "cpu_per_vcpu_hour": table.cpu_per_vcpu_hour,
            "ram_per_gib_hour": table.ram_per_gib_hour,
            "egress_per_gib": table.egress_per_gib,
        }
    return {
        "name": name,
        "provider": provider,
        "description": description,
        "unit_prices": prices,
        "weights": cost_model_to_mapping(model),
    }


@costmodel_app.command("show")
def costmodel_show(
    preset: PresetOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Show the cost model in force (with its version), or a named model's weights."""
    settings = Settings(config, database_url, json)
    with cli_errors():
        if preset is not None:
            data = _model_json(preset)
            if json:
                emit_json({"source": "preset", **data})
                return
            u = data["unit_prices"]
            out_console().print(
                _weights_table(named_model(preset), f"{preset}: {data['description'] or data['provider']}"),
                f"Per vCPU-hour {plain_weight(u['cpu_per_vcpu_hour'])} $, per GiB-hour of memory "
                f"{plain_weight(u['ram_per_gib_hour'])} $, per GiB sent {plain_weight(u['egress_per_gib'])} $.",
            )
            return
        with open_service(settings) as service:
            version = service.get_cost_model_version()
            model = service.get_cost_model()
            stored = next((v for v in service.list_cost_models() if v.version == version), None)
    if json:
        emit_json(
            {
                "source": "database",
                "version": version,
                "created_at": stored.created_at if stored else None,
                "created_by": stored.created_by if stored else None,
                "weights": cost_model_to_mapping(model),
            }
        )
        return
    made = f", set {stored.created_at:%Y-%m-%d %H:%M} UTC by {stored.created_by}" if stored else ""
    out_console().print(_weights_table(model, f"Cost model version {version}{made}"))


@costmodel_app.command("presets")
def costmodel_presets(
    config: ConfigOption = None, database_url: DatabaseOption = None, json: JsonOption = False
) -> None:
    """List the named models: built-in ones and cloud price tables (OpenCost's)."""
    with cli_errors():
        Settings(config, database_url, json).build_config()  # the options are checked like everywhere
        rows = [_model_json(name) for name in model_names()]
    if json:
        emit_json(rows)
        return
    table = Table(title="Named cost models (USD)", title_justify="left")
    table.add_column("Name")
    table.add_column("/vCPU-hour", justify="right")
    table.add_column("/GiB-hour", justify="right")
    table.add_column("/GiB sent", justify="right")
    table.add_column("What")
    for row in rows:
        u: dict[str, Decimal] = row["unit_prices"]
        table.add_row(
            row["name"],
            plain_weight(u["cpu_per_vcpu_hour"]),
            plain_weight(u["ram_per_gib_hour"]),
            plain_weight(u["egress_per_gib"]),
            Text(row["description"] or row["provider"]),
        )
    out_console().print(table)


@costmodel_app.command("set")
def costmodel_set(
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            metavar="NAME",
            help="The named model to price with (see `costmodel presets`); default: the model in force.",
            show_default=False,
        ),
    ] = None,
    price: Annotated[
        list[str] | None,
        typer.Option(
            "--price",
            metavar="NAME=DOLLARS",
            help="Price a named resource, per unit (per GPU-second for gpu, gpu:TYPE), e.g. --price gpu=0.0008 "
            "--price gpu:h100=0.0012; repeat for more.",
        ),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Price new jobs with a named model, or with named resources' prices added to the
    model in force, from now on (a new model version; nothing changes when the prices
    are those in force already).

    Jobs already priced keep their cost and the version that priced them.
    """
    settings = Settings(config, database_url, json)
    with cli_errors({"preset": "--preset", "--price": "--price"}):
        if preset is None and not price:
            from ..domain.errors import ValidationError

            raise ValidationError("--preset", None, "give --preset NAME, --price NAME=DOLLARS, or both")
        prices = parse_prices(price or ())
        with open_service(settings, creates=True) as service:
            base = named_model(preset) if preset is not None else service.get_cost_model()
            model = replace(base, resources={**base.resources, **prices}) if prices else base
            if model == service.get_cost_model():
                stored = next(v for v in service.list_cost_models() if v.version == service.get_cost_model_version())
                changed = False
            else:
                actor = f"preset:{preset}" if preset is not None else "cli"
                stored, changed = service.update_cost_model(model, actor=actor), True
    if json:
        emit_json(
            {
                "preset": preset,
                "version": stored.version,
                "changed": changed,
                "weights": cost_model_to_mapping(stored.model),
            }
        )
        return
    what = f"preset {escape(preset)}" if preset is not None else "the model in force"
    if prices:
        what += " with " + ", ".join(f"{escape(n)} at {plain_weight(p)} $" for n, p in prices.items())
    if changed:
        out_console().print(f"Cost model version {stored.version} ({what}) prices new jobs from now on.")
    else:
        out_console().print(f"Cost model version {stored.version} already is {what}: nothing changed.")
