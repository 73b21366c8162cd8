"""The named resources of a Slurm job (GPUs, licences, ``billing``) from what sacct
prints: the TRES lists ``AllocTRES`` (what the job held; ``ReqTRES`` when it is
missing) and, for exports of Slurm before 20.11 without TRES, the GRES lists
``AllocGRES`` / ``ReqGRES`` (``gpu:tesla:2(IDX:0-1)``).

Each count is multiplied by the elapsed seconds: ``gres/gpu:a100=4`` for an hour is
``{"gpu:a100": 14400}`` GPU-seconds.  Slurm lists the untyped GPU total beside the
typed entries it tracks (``gres/gpu=4,gres/gpu:a100=4``): the typed ones are billed,
and only GPUs the typed entries do not account for are billed as untyped ``gpu``, so
nothing is counted twice.  A type is lower-cased (``gres/gpu:V100`` is ``gpu:v100``),
so a price for ``gpu:v100`` applies however the cluster spells it, and a character a
resource name cannot hold becomes ``_`` (``license/matlab@db`` is ``license:matlab_db``).
"""

from __future__ import annotations

import re
from decimal import Decimal

from ..domain.errors import ValidationError
from ..domain.resources import check_resource_name
from .slurm_values import blank, parse_tres

__all__ = ["GPU", "TresColumns", "job_resources", "requested_gpus"]

GPU = "gpu"
_GRES_NOTE = re.compile(r"\([^)]*\)")  # (IDX:0-1), (S:0,1): which devices, not how many
_GRES_PREFIX = re.compile(r"^gres[:/]", re.IGNORECASE)
_NOT_IN_NAME = re.compile(r"[^a-z0-9_.+-]")


class TresColumns:
    """The texts sacct printed for one job (blank when the column is absent)."""

    __slots__ = ("alloc_gres", "alloc_tres", "req_gres", "req_tres")

    def __init__(self, alloc_tres: str = "", req_tres: str = "", alloc_gres: str = "", req_gres: str = "") -> None:
        self.alloc_tres = alloc_tres
        self.req_tres = req_tres
        self.alloc_gres = alloc_gres
        self.req_gres = req_gres


def job_resources(columns: TresColumns, elapsed: Decimal, *, billing: bool = False) -> dict[str, Decimal]:
    """``{resource name: quantity × elapsed}`` of one job; zero quantities are left out.

    GPUs and licences come from AllocTRES (else ReqTRES); without either, GPUs come
    from AllocGRES (else ReqGRES).  ``billing`` adds the ``billing=`` TRES as the
    resource ``billing`` (billing units × seconds)."""
    if not elapsed:
        return {}
    counts: dict[str, Decimal] = {}
    column, text = ("AllocTRES", columns.alloc_tres) if not blank(columns.alloc_tres) else ("ReqTRES", columns.req_tres)
    if not blank(text):
        counts = _from_tres(column, text, billing=billing)
    else:
        column, text = (
            ("AllocGRES", columns.alloc_gres) if not blank(columns.alloc_gres) else ("ReqGRES", columns.req_gres)
        )
        if not blank(text):
            counts = _from_gres(column, text)
    return {name: count * elapsed for name, count in counts.items() if count}


def _from_tres(column: str, text: str, *, billing: bool) -> dict[str, Decimal]:
    untyped: Decimal | None = None
    out: dict[str, Decimal] = {}
    for name, value in parse_tres(column, text).items():
        if name == "gres/gpu":
            untyped = _count(column, name, value)
        elif name.startswith("gres/gpu:"):
            _add(out, _name(column, name, GPU, name[len("gres/gpu:") :]), _count(column, name, value))
        elif name.startswith("license/"):
            _add(out, _name(column, name, "license", name[len("license/") :]), _count(column, name, value))
        elif name == "billing" and billing:
            out["billing"] = _count(column, name, value)
    if untyped is not None:
        rest = untyped - sum((q for n, q in out.items() if n.startswith(GPU + ":")), Decimal(0))
        if rest > 0:
            out[GPU] = rest
    return out


def requested_gpus(column: str, text: str) -> dict[str, Decimal]:
    """The GPUs of a request as Slurm's ``job_submit.lua`` sees it (``tres_per_node``,
    ``tres_per_job``...: ``gres:gpu:a100:2``, ``gres:gpu:1``, ``gres:gpu``, several
    comma-separated): ``{name: count}``, named as the accounting names them."""
    items = (_GRES_PREFIX.sub("", item.strip()).replace("=", ":") for item in text.split(","))
    return _from_gres(column, ",".join(item for item in items if item))


def _from_gres(column: str, text: str) -> dict[str, Decimal]:
    """``gpu:2``, ``gpu:tesla:2(IDX:0-1)``, ``hbm:0,gpu:P100:2(IDX:1,3)``: the counts
    as printed (XDMoD reads them the same way), GPUs only."""
    out: dict[str, Decimal] = {}
    for item in _GRES_NOTE.sub("", text).split(","):
        parts = item.strip().split(":")
        if parts[0].lower() != GPU:
            continue
        count = parts[-1] if len(parts) > 1 and parts[-1].isdigit() else "1"
        kind = parts[1] if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()) else ""
        _add(out, _name(column, item.strip(), GPU, kind) if kind else GPU, _count(column, item.strip(), count))
    return out


def _add(out: dict[str, Decimal], name: str, count: Decimal) -> None:
    out[name] = out.get(name, Decimal(0)) + count


def _name(column: str, entry: str, family: str, kind: str) -> str:
    name = f"{family}:{_NOT_IN_NAME.sub('_', kind.lower())}"
    try:
        return check_resource_name(column, name)
    except ValidationError:
        raise ValidationError(
            column,
            entry,
            f"the type {kind!r} cannot be a resource name (it must start with a letter or digit and "
            "have at most 60 characters)",
        ) from None


def _count(column: str, entry: str, value: str) -> Decimal:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 15:
        raise ValidationError(column, f"{entry}={value}", "must be a whole count such as gres/gpu:a100=4")
    return Decimal(int(text))
