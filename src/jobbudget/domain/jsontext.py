"""The one JSON decoder of every input (JSON Lines files, HTTP bodies): numbers are
read exactly (``Decimal`` from their text, never through ``float``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from .errors import ValidationError

__all__ = ["loads_exact"]


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError(key, value, "appears twice in the record")
        out[key] = value
    return out


def loads_exact(data: str | bytes) -> Any:
    """Decode JSON with every number exact: fractions and exponents as ``Decimal``,
    integers as ``int`` (or ``Decimal`` past Python's digit limit for ``int``, so that
    the field's own range check rejects it by name).

    Raises :class:`json.JSONDecodeError` for text that is not JSON (invalid UTF-8,
    ``NaN``/``Infinity``, nesting too deep included) and :class:`ValidationError` for
    an object with the same key twice."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("not UTF-8 text", "", exc.start) from None
    try:
        try:
            return json.loads(data, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            if isinstance(exc, (ValidationError, json.JSONDecodeError)):
                raise
            # an integer over Python's digit limit for int(): read it as a Decimal
            return json.loads(
                data,
                parse_float=Decimal,
                parse_int=Decimal,
                parse_constant=_no_constant,
                object_pairs_hook=_unique_keys,
            )
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
