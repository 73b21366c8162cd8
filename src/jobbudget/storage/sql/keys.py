"""API keys on SQL: only the SHA-256 digest of a key is stored, looked up by its
unique index (the digest of a 256-bit random secret, so an indexed lookup reveals
nothing useful) and compared again in constant time after the fetch."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from ...domain.apikeys import ApiKey
from ...domain.errors import NotFoundError
from .engine import transaction
from .tables import api_keys

__all__ = ["KeysMixin"]

_FIELDS = ("id", "name", "role", "tenant_id", "prefix", "created_at", "revoked_at")


def _key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(**{name: row[name] for name in _FIELDS})


class KeysMixin:
    """The API-key methods of :class:`~jobbudget.storage.sql.store.SqlStore`."""

    engine: Engine

    def add_api_key(self, key: ApiKey, *, key_hash: str) -> None:
        values = {name: getattr(key, name) for name in _FIELDS}
        with transaction(self.engine, write=True) as conn:
            conn.execute(api_keys.insert().values(**values, key_hash=key_hash))

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with transaction(self.engine) as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).mappings().first()
        if row is None or not hmac.compare_digest(str(row["key_hash"]).encode(), key_hash.encode()):
            return None
        return _key(row)

    def list_api_keys(self) -> list[ApiKey]:
        query = select(*(api_keys.c[name] for name in _FIELDS)).order_by(api_keys.c.created_at, api_keys.c.id)
        with transaction(self.engine) as conn:
            return [_key(r) for r in conn.execute(query).mappings()]

    def revoke_api_key(self, key_id: str, *, at: datetime) -> None:
        k = api_keys.c
        with transaction(self.engine, write=True) as conn:
            done = conn.execute(update(api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=at))
            if done.rowcount == 0 and conn.execute(select(k.id).where(k.id == key_id)).first() is None:
                raise NotFoundError("api key", key_id)
