"""The hot state shared by every process (:class:`jobbudget.ports.SharedState`) on
Redis: spend and open reservations per budget period, kept by
:class:`~jobbudget.counters.redis_ledger.RedisLedger`.

A reservation covering several budgets (a tenant-wide and a queue budget) is taken
one budget at a time and rolled back if any refuses, so a refusal never leaves a hold
behind and a grant never passes any limit.  Which budgets a reservation holds is kept
under its id (``<prefix>:rsv:<id>``, expiring with it), so ``release`` needs only the
id.  A marker key (``<prefix>:epoch``) written when the counters are loaded tells a
Redis that lost its data (restart, flush, eviction) from one that has it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import redis

from ..domain.errors import StorageUnavailableError
from ..domain.records import Reservation, SpendKey
from .redis_ledger import RedisLedger, _call

__all__ = ["RedisSharedState", "connect"]

_INDEX_SLACK_SECONDS = 60


def connect(url: str, *, timeout: float = 0.5) -> redis.Redis:
    """A client that fails fast (no retries with backoff): a dead Redis must turn into
    a decision by ``redis_failure_mode`` within a request, not after seconds."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client: redis.Redis = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    return client


class RedisSharedState:
    def __init__(self, client: redis.Redis, *, prefix: str = "jb") -> None:
        self._client = client
        self._prefix = prefix
        self.ledger = RedisLedger(client, prefix=prefix)

    def close(self) -> None:
        self._client.close()

    # -- numbers ------------------------------------------------------------------
    def totals(self, keys: Sequence[tuple[str, SpendKey]], *, now: datetime) -> list[Decimal]:
        pairs = self.ledger.totals([(t, k.budget_id, k.period_start) for t, k in keys])
        return [spend + reserved for spend, reserved in pairs]

    def spends(self, keys: Sequence[tuple[str, SpendKey]]) -> list[Decimal]:
        return [spend for spend, _ in self.ledger.totals([(t, k.budget_id, k.period_start) for t, k in keys])]

    def sweep(self, keys: Sequence[tuple[str, SpendKey]], *, now: datetime) -> int:
        """Release the expired holds of these periods (the service does it every second)."""
        return self.ledger.expire_many([(t, k.budget_id, k.period_start) for t, k in keys], now=now)

    def add_spend(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        for tenant_id, key, amount in entries:
            self.ledger.add_spend(
                tenant_id=tenant_id, budget_id=key.budget_id, period_start=key.period_start, amount=amount
            )

    def load(self, entries: Sequence[tuple[str, SpendKey, Decimal]]) -> None:
        """Overwrite the spend of each period from the ledger, then mark Redis loaded."""
        for tenant_id, key, spend in entries:
            self.ledger.set_spend(
                tenant_id=tenant_id, budget_id=key.budget_id, period_start=key.period_start, spend=spend
            )
        _call(lambda: self._client.set(f"{self._prefix}:epoch", "loaded"))

    def loaded(self) -> bool:
        """False when Redis has lost the counters (or never had them)."""
        return bool(_call(lambda: self._client.exists(f"{self._prefix}:epoch")))

    # -- reservations -------------------------------------------------------------
    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool:
        ttl = max(1.0, (reservation.expires_at - now).total_seconds())
        self._remember(reservation, ttl)
        taken: list[SpendKey] = []
        try:
            for key, limit in limits:
                result = self.ledger.reserve(
                    tenant_id=reservation.tenant_id,
                    budget_id=key.budget_id,
                    period_start=key.period_start,
                    reservation_id=reservation.id,
                    estimate=reservation.amount,
                    limit=limit,
                    now=now,
                    ttl_seconds=ttl,
                )
                if not result.granted:
                    self._undo(reservation, taken)
                    return False
                taken.append(key)
        except StorageUnavailableError:
            self._undo_quietly(reservation, taken)
            raise
        return True

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        raw = _call(lambda: self._client.get(self._index_key(reservation_id)))
        if raw is None:
            return False
        data: dict[str, Any] = json.loads(raw)
        if tenant_id is not None and data["tenant_id"] != tenant_id:
            return False  # another tenant's: as if it did not exist
        keys = [SpendKey(b, date.fromisoformat(p)) for b, p in data["keys"]]
        released = False
        for key in keys:
            released |= self.ledger.release(
                tenant_id=data["tenant_id"],
                budget_id=key.budget_id,
                period_start=key.period_start,
                reservation_id=reservation_id,
            )
        _call(lambda: self._client.delete(self._index_key(reservation_id)))
        return released

    def open_reservations(self, now: datetime) -> int:
        """Open reservations of every process (counts the reservation index keys,
        dropping expired ones as it goes)."""
        count = 0
        for raw_key in _call(lambda: list(self._client.scan_iter(match=f"{self._prefix}:rsv:*", count=1000))):
            raw = self._get(raw_key)
            if raw is None:
                continue
            data = json.loads(raw)
            keys = [SpendKey(b, date.fromisoformat(p)) for b, p in data["keys"]]
            entries = [(data["tenant_id"], k.budget_id, k.period_start) for k in keys]
            self.ledger.expire_many(entries, now=now)
            if any(reserved > 0 for _, reserved in self.ledger.totals(entries)):
                count += 1
        return count

    def _get(self, key: Any) -> Any:
        return _call(lambda: self._client.get(key))

    def _index_key(self, reservation_id: str) -> str:
        return f"{self._prefix}:rsv:{reservation_id}"

    def _remember(self, reservation: Reservation, ttl: float) -> None:
        data = {
            "tenant_id": reservation.tenant_id,
            "keys": [[k.budget_id, k.period_start.isoformat()] for k in reservation.keys],
        }
        expiry = int(ttl) + _INDEX_SLACK_SECONDS
        _call(lambda: self._client.set(self._index_key(reservation.id), json.dumps(data), ex=expiry))

    def _undo(self, reservation: Reservation, taken: Sequence[SpendKey]) -> None:
        for key in taken:
            self.ledger.release(
                tenant_id=reservation.tenant_id,
                budget_id=key.budget_id,
                period_start=key.period_start,
                reservation_id=reservation.id,
            )
        _call(lambda: self._client.delete(self._index_key(reservation.id)))

    def _undo_quietly(self, reservation: Reservation, taken: Sequence[SpendKey]) -> None:
        with contextlib.suppress(StorageUnavailableError):  # the holds expire with their TTL
            self._undo(reservation, taken)
