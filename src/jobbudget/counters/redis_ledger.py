"""Shared hot spend counters and reservations in Redis, one set of keys per budget period.

Every read-modify-write is one Lua script, so any number of processes on any number of
hosts enforce one budget as if they were one process.  Keys carry the tenant as a Redis
Cluster hash tag, so one tenant's keys share a slot and a script may touch them all.

Money is integer nano-dollars everywhere.  Redis keeps totals in 64-bit integer keys
updated with ``INCRBY``/``DECRBY`` (exact); Lua numbers are doubles, exact only below
2**53 nanos (about $9M), so the scripts never do money arithmetic on Lua numbers: amounts
travel as decimal strings, ``INCRBY`` gets those strings, and the admission test
``spend + reserved + estimate <= limit`` splits each number into a high part (nanos //
1e9) and a low part (nanos % 1e9), both far below 2**53, and compares those exactly.
Each amount given is at most $1e9 (1e18 nanos) in size, like a budget amount; totals
may reach 2**63 - 1 nanos (about $9.2e9), beyond which Redis refuses the update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import redis

from ..domain.errors import StorageError, StorageUnavailableError, ValidationError
from ..domain.money import from_nanos, to_nanos

__all__ = ["RedisLedger", "Reservation", "SpendSnapshot"]

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_NANOS = 10**18  # $1e9, the largest budget amount: the bound of every amount given
_MAX_TOTAL = 2**63 - 1  # a Redis integer: totals past it fail (StorageError), never wrap
_SETTLED_TTL_SECONDS = 2 * 24 * 3600

# Scripts are not rolled back on error, so each does the one write that can fail (an
# INCRBY past 2**63 - 1) first.  Shared by the scripts: exact ``a + b + c <= d`` on decimal-string integers, and dropping
# reservations whose expiry score is at or before ARGV[1] (unix ms).
_PRELUDE = """
local function split(s)
  s = s or '0'
  local neg = string.sub(s, 1, 1) == '-'
  if neg then s = string.sub(s, 2) end
  local n = #s
  local lo = tonumber(string.sub(s, math.max(1, n - 8)))
  local hi = 0
  if n > 9 then hi = tonumber(string.sub(s, 1, n - 9)) end
  if neg then return -hi, -lo end
  return hi, lo
end
local function fits(a, b, c, d)
  local ah, al = split(a)
  local bh, bl = split(b)
  local ch, cl = split(c)
  local dh, dl = split(d)
  local h = ah + bh + ch - dh
  local l = al + bl + cl - dl
  local carry = math.floor(l / 1000000000)
  h = h + carry
  l = l - carry * 1000000000
  return h < 0 or (h == 0 and l == 0)
end
local function drop_expired(res, exp, total, now_ms)
  local ids = redis.call('ZRANGEBYSCORE', exp, '-inf', now_ms)
  for _, id in ipairs(ids) do
    local est = redis.call('HGET', res, id)
    if est then
      redis.call('DECRBY', total, est)
      redis.call('HDEL', res, id)
    end
    redis.call('ZREM', exp, id)
  end
  return #ids
end
"""

# KEYS: spend, reserved total, res hash, resexp zset, settled marker
# ARGV: now_ms, reservation_id, estimate, limit ('' = none), expiry_ms
_RESERVE = (
    _PRELUDE
    + """
drop_expired(KEYS[3], KEYS[4], KEYS[2], ARGV[1])
local granted = 1
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 and redis.call('EXISTS', KEYS[5]) == 0 then
  local spend = redis.call('GET', KEYS[1]) or '0'
  local reserved = redis.call('GET', KEYS[2]) or '0'
  if ARGV[4] == '' or fits(spend, reserved, ARGV[3], ARGV[4]) then
    redis.call('INCRBY', KEYS[2], ARGV[3])
    redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
    redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
  else
    granted = 0
  end
end
return {granted, redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0'}
"""
)

# KEYS: spend, reserved total, res hash, resexp zset, settled marker
# ARGV: reservation_id, actual, marker ttl seconds
_SETTLE = """
if redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
  local est = redis.call('HGET', KEYS[3], ARGV[1])
  if est then
    redis.call('DECRBY', KEYS[2], est)
    redis.call('HDEL', KEYS[3], ARGV[1])
  end
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('SET', KEYS[5], ARGV[2], 'EX', ARGV[3])
end
return redis.call('GET', KEYS[1]) or '0'
"""

# KEYS: reserved total, res hash, resexp zset.  ARGV: reservation_id
_RELEASE = """
local est = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if not est then return 0 end
redis.call('DECRBY', KEYS[1], est)
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

# KEYS: spend, reserved total, res hash, resexp zset.  ARGV: now_ms
_SNAPSHOT = (
    _PRELUDE
    + """
local dropped = drop_expired(KEYS[3], KEYS[4], KEYS[2], ARGV[1])
return {redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0',
        redis.call('HLEN', KEYS[3]), dropped}
"""
)


@dataclass(frozen=True, slots=True)
class SpendSnapshot:
    """Spend and reserved amounts of one budget period, and how many reservations are open."""

    spend: Decimal
    reserved: Decimal
    reservations: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of :meth:`RedisLedger.reserve`, with the totals right after it."""

    granted: bool
    spend: Decimal
    reserved: Decimal
    reservation_id: str


def _escape(text: str) -> str:
    """Injective escaping that leaves no ``{``, ``}`` or ``:`` (key delimiters) in ``text``."""
    return text.replace("%", "%25").replace("{", "%7B").replace("}", "%7D").replace(":", "%3A")


def _require_id(field: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string")
    return value


def _nanos(field: str, value: Decimal, *, signed: bool = False, bound: int = _MAX_NANOS) -> int:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(field, value, "must be a finite Decimal")
    if value < 0 and not signed:
        raise ValidationError(field, value, "must not be negative")
    try:
        nanos = to_nanos(value)
    except ValueError:
        raise ValidationError(field, value, "must be a whole number of nano-dollars") from None
    if abs(nanos) > bound:
        raise ValidationError(field, value, f"must be at most {from_nanos(bound)} dollars in size")
    return nanos


def _millis(now: datetime) -> int:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValidationError("now", now, "must be a timezone-aware datetime")
    return (now - _EPOCH) // timedelta(milliseconds=1)


class RedisLedger:
    """Spend counters and reservations of budget periods, shared through one Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = "jb") -> None:
        self._client = client
        self._prefix = _require_id("prefix", prefix)
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)
        self._snapshot = client.register_script(_SNAPSHOT)

    def _key(self, tenant_id: str, kind: str, budget_id: str, period_start: date) -> str:
        tag = _escape(_require_id("tenant_id", tenant_id))
        budget = _escape(_require_id("budget_id", budget_id))
        return f"{self._prefix}:{{{tag}}}:{kind}:{budget}:{period_start.isoformat()}"

    def _keys(self, tenant_id: str, budget_id: str, period_start: date) -> list[str]:
        """spend, reserved total, reservation hash, expiry sorted set."""
        return [self._key(tenant_id, kind, budget_id, period_start) for kind in ("spend", "reserved", "res", "resexp")]

    def _settled_key(self, tenant_id: str, budget_id: str, period_start: date, reservation_id: str) -> str:
        return f"{self._key(tenant_id, 'settled', budget_id, period_start)}:{_escape(reservation_id)}"

    def set_spend(self, *, tenant_id: str, budget_id: str, period_start: date, spend: Decimal) -> None:
        """Overwrite the spend of a period (rebuilding it from the ledger of record)."""
        nanos = _nanos("spend", spend, signed=True, bound=_MAX_TOTAL)
        key = self._key(tenant_id, "spend", budget_id, period_start)
        _call(lambda: self._client.set(key, str(nanos)))

    def add_spend(self, *, tenant_id: str, budget_id: str, period_start: date, amount: Decimal) -> Decimal:
        """Add ``amount`` (may be negative, a correction) and return the new spend."""
        nanos = _nanos("amount", amount, signed=True)
        key = self._key(tenant_id, "spend", budget_id, period_start)
        return from_nanos(int(_call(lambda: self._client.incrby(key, nanos))))

    def spend(self, *, tenant_id: str, budget_id: str, period_start: date) -> Decimal:
        key = self._key(tenant_id, "spend", budget_id, period_start)
        return from_nanos(_int(_call(lambda: self._client.get(key))))

    def snapshot(self, *, tenant_id: str, budget_id: str, period_start: date, now: datetime) -> SpendSnapshot:
        """Spend, reserved total and open reservations, after dropping the expired ones."""
        keys, now_ms = self._keys(tenant_id, budget_id, period_start), _millis(now)
        spend, reserved, count, _ = _call(lambda: self._snapshot(keys=keys, args=[now_ms]))
        return SpendSnapshot(from_nanos(_int(spend)), from_nanos(_int(reserved)), int(count))

    def totals(self, entries: Sequence[tuple[str, str, date]]) -> list[tuple[Decimal, Decimal]]:
        """(spend, reserved) of each (tenant, budget, period start) in one ``MGET``
        (one round trip; a tenant's keys share a hash slot).  Holds that expired but
        were not yet swept still count (the safe side) until the next ``expire``."""
        keys: list[str] = []
        for tenant_id, budget_id, period_start in entries:
            spend_key, reserved_key = self._keys(tenant_id, budget_id, period_start)[:2]
            keys += (spend_key, reserved_key)
        values: list[Any] = _call(lambda: self._client.mget(keys)) if keys else []
        return [(from_nanos(_int(values[i])), from_nanos(_int(values[i + 1]))) for i in range(0, len(values), 2)]

    def expire_many(self, entries: Sequence[tuple[str, str, date]], *, now: datetime) -> int:
        """Drop the expired holds of several periods in one round trip (a pipeline)."""
        now_ms = _millis(now)

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for tenant_id, budget_id, period_start in entries:
                self._snapshot(keys=self._keys(tenant_id, budget_id, period_start), args=[now_ms], client=pipe)
            return pipe.execute()

        replies = _call(run) if entries else []
        return sum(int(r[3]) for r in replies)

    def reserve(
        self,
        *,
        tenant_id: str,
        budget_id: str,
        period_start: date,
        reservation_id: str,
        estimate: Decimal,
        limit: Decimal | None,
        now: datetime,
        ttl_seconds: float,
    ) -> Reservation:
        """Hold ``estimate`` for ``ttl_seconds`` if ``spend + reserved + estimate <= limit``.

        Idempotent: an open (or already settled) ``reservation_id`` is reported as granted
        and nothing more is counted.  Expired reservations are dropped first.
        """
        _require_id("reservation_id", reservation_id)
        est = _nanos("estimate", estimate)
        lim = "" if limit is None else str(_nanos("limit", limit, signed=True))
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int | float) or not 0 < ttl_seconds < 10**9:
            raise ValidationError("ttl_seconds", ttl_seconds, "must be a positive number of seconds")
        now_ms = _millis(now)
        expiry_ms = now_ms + max(1, round(ttl_seconds * 1000))
        keys = [
            *self._keys(tenant_id, budget_id, period_start),
            self._settled_key(tenant_id, budget_id, period_start, reservation_id),
        ]
        args: list[str | int] = [now_ms, reservation_id, str(est), lim, expiry_ms]
        granted, spend, reserved = _call(lambda: self._reserve(keys=keys, args=args))
        return Reservation(bool(int(granted)), from_nanos(_int(spend)), from_nanos(_int(reserved)), reservation_id)

    def settle(
        self, *, tenant_id: str, budget_id: str, period_start: date, reservation_id: str, actual: Decimal
    ) -> Decimal:
        """Drop the reservation (if open) and add ``actual`` to spend; returns the new
        spend.  A second settle of the same id within two days adds nothing."""
        _require_id("reservation_id", reservation_id)
        nanos = _nanos("actual", actual)
        keys = [
            *self._keys(tenant_id, budget_id, period_start),
            self._settled_key(tenant_id, budget_id, period_start, reservation_id),
        ]
        args: list[str | int] = [reservation_id, str(nanos), _SETTLED_TTL_SECONDS]
        return from_nanos(_int(_call(lambda: self._settle(keys=keys, args=args))))

    def release(self, *, tenant_id: str, budget_id: str, period_start: date, reservation_id: str) -> bool:
        """Drop a reservation without spending; True if it was open."""
        _require_id("reservation_id", reservation_id)
        keys = self._keys(tenant_id, budget_id, period_start)[1:]
        return bool(int(_call(lambda: self._release(keys=keys, args=[reservation_id]))))

    def expire(self, *, tenant_id: str, budget_id: str, period_start: date, now: datetime) -> int:
        """Drop reservations expired at ``now``; returns how many."""
        keys, now_ms = self._keys(tenant_id, budget_id, period_start), _millis(now)
        result: Sequence[Any] = _call(lambda: self._snapshot(keys=keys, args=[now_ms]))
        return int(result[3])


def _int(value: Any) -> int:
    """A Redis integer reply or string (bytes or str; None means 0) as an int."""
    return 0 if value is None else int(value)


def _call(operation: Callable[[], _T]) -> _T:
    try:
        return operation()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StorageUnavailableError(f"Redis unavailable: {exc}") from exc
    except redis.RedisError as exc:
        if isinstance(exc, _CANNOT_SERVE) or str(exc).startswith(("MISCONF", "OOM", "READONLY")):
            raise StorageUnavailableError(f"Redis unavailable: {exc}") from exc
        raise StorageError(f"Redis error: {exc}") from exc


#: Replies of a server that is up but cannot serve writes now (out of memory, a
#: read-only replica, failing to save, ...): handled like an outage, with
#: ``redis_failure_mode``, not like a bug.
_CANNOT_SERVE = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)
