"""Slurm's value formats as ``sacct`` prints them: durations, sizes, times, counts
and TRES lists (``billing=12,cpu=12,gres/gpu=2,mem=31000M,node=1``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from ..domain.errors import ValidationError

__all__ = [
    "blank",
    "parse_slurm_duration",
    "parse_slurm_size",
    "parse_slurm_time",
    "parse_tres",
    "whole",
]

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_DURATION = re.compile(r"^(?:([0-9]{1,9})-)?(?:([0-9]{1,12}):)?([0-9]{1,15}):([0-9]{1,15})(?:\.([0-9]{1,15}))?$")
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTP]?)([cn]?)$", re.IGNORECASE)
_MISSING = frozenset({"", "unknown", "none", "n/a", "invalid"})
_MISSING_AS_WRITTEN = frozenset({"", "Unknown", "None"})
#: Slurm before 18.08 kept ReqMem's per-CPU flag in bit 31 of the number, and some
#: exports print it: ``2147486648Mn`` is 3000 MB per CPU.
_MEM_PER_CPU_FLAG = 2**31


def blank(text: str) -> bool:
    """Empty, ``Unknown``, ``None``, ``N/A`` or ``INVALID``: no value."""
    if text in _MISSING_AS_WRITTEN:
        return True
    if text[:1].isdigit():  # the common case: a number, a size, a duration or a time
        return False
    return text.strip().lower() in _MISSING


def whole(column: str, text: str) -> int | None:
    """A count such as AllocCPUS; None when blank."""
    text = text.strip()
    if blank(text):
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 30:
        raise ValidationError(column, text, "must be a whole number (at most 30 digits)")
    return int(text)


def parse_slurm_duration(column: str, text: str) -> Decimal | None:
    """``[DD-][HH:]MM:SS[.fff]`` (or whole seconds) as seconds; None when blank/Unknown."""
    if blank(text):
        return None
    text = text.strip()
    if text.isascii() and text.isdigit():
        return Decimal(text)
    m = _DURATION.match(text)
    if m is None:
        raise ValidationError(column, text, "must be a Slurm duration such as 1-02:03:04 or 05:06.789")
    days, hours, minutes, seconds, fraction = m.groups()
    total = ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + int(seconds)
    return Decimal(f"{total}.{fraction}") if fraction else Decimal(total)


def parse_slurm_size(column: str, text: str, *, default_unit: str = "") -> tuple[Decimal, str] | None:
    """``1234K``, ``12.5M``, ``3G`` (1024-based) as bytes, with ReqMem's per-core
    ``c`` / per-node ``n`` suffix ('' when absent); a bare number is in
    ``default_unit``.  A number with Slurm's old per-CPU flag bit set (``2147486648Mn``)
    is read as the per-CPU amount it stands for (``3000Mc``).  None when blank."""
    if blank(text):
        return None
    text = text.strip()
    if text[-1:] == "K" and text[:-1].isascii() and text[:-1].isdigit():  # MaxRSS as sacct prints it
        return Decimal(text[:-1]) * 1024, ""
    m = _SIZE.match(text)
    if m is None:
        raise ValidationError(column, text, "must be a size such as 1234K, 12.5M or 3G")
    number, unit, per = m.groups()
    amount = Decimal(number)
    unit = (unit or default_unit).upper()
    if unit == "M" and amount >= _MEM_PER_CPU_FLAG and amount == amount.to_integral_value():
        amount, per = amount - _MEM_PER_CPU_FLAG, "c"  # 2**31 MB (2 PiB) is no real request
    return amount * _UNITS[unit], per.lower()


def parse_slurm_time(column: str, text: str, zone: tzinfo) -> datetime | None:
    """``2026-11-02T10:00:00`` in the cluster's time zone, as aware UTC; None when blank/Unknown."""
    if blank(text):
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(column, text, "must be a date-time such as 2026-11-02T10:00:00") from None
    if value.tzinfo is None:
        if zone is UTC:
            return value.replace(tzinfo=UTC)
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValidationError(column, text, "is out of range") from None


def parse_tres(column: str, text: str) -> dict[str, str]:
    """A TRES list as ``{name: value}`` (``cpu=12,mem=31000M,gres/gpu:a100=4``); the
    values stay text (each kind has its own unit)."""
    out: dict[str, str] = {}
    if blank(text):
        return out
    for item in text.split(","):
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ValidationError(column, text, "must be a TRES list such as cpu=4,mem=8G,node=1")
        out[name.strip().lower()] = value.strip()
    return out
