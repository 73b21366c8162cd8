"""The hot state shared by every process (:class:`jobbudget.ports.SharedState`) on
Redis: spend and open reservations per budget period, kept by
:class:`~jobbudget.counters.redis_ledger.RedisLedger`.

A reservation covering several budgets (a tenant-wide and a queue budget) is taken
on all of them at once or on none, in one script (:mod:`.redis_holds`): a refusal
never leaves a hold behind and a grant never passes any limit.  A marker key (``<prefix>:epoch``) written when the counters are loaded tells a
Redis that lost its data (restart, flush, eviction) from one that has it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import redis

from ..domain.records import Reservation, SpendKey
from .redis_holds import RedisHolds
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
        self.holds = RedisHolds(client, prefix=prefix)

    def close(self) -> None:
        self.holds.close()
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

    def settle(self, spend: Sequence[tuple[str, SpendKey, Decimal]], holds: Sequence[tuple[str, str]]) -> None:
        """A committed batch: its spend added and its reservations dropped, one round trip."""
        self.holds.settle(spend, holds)

    # -- reservations -------------------------------------------------------------
    def admit(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> tuple[bool, list[Decimal]]:
        """Hold ``reservation`` on every period if none passes its limit (atomically),
        with each period's spend plus reserved before it: one round trip."""
        ttl = max(1.0, (reservation.expires_at - now).total_seconds())
        admitted = self.holds.admit(reservation, limits, now=now, ttl=ttl)
        return admitted.granted, admitted.totals

    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool:
        return self.admit(reservation, limits=limits, now=now)[0]

    def release(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        return self.holds.release(reservation_id, tenant_id=tenant_id)

    def open_reservations(self, now: datetime) -> int:
        """Open reservations of every process (a scan of the hold indexes, dropping
        expired ones as it goes)."""
        return self.holds.open_count(now)
