"""Admissions and settlements in one Redis round trip each.

``admit`` is one script over every budget period covering the job: it drops expired
holds, reads spend and reserved totals, and holds the estimate on all of them if
every one stays within its limit (all or nothing, atomically), remembering which
periods it holds under ``<prefix>:{tenant}:hold:<id>``.  A release that knows only the
id (an operator's) finds the tenant with a ``SCAN``; every other release and every
settlement knows the tenant.

``settle`` is one script per tenant: it adds the jobs' costs to their periods' spend
and drops the reservations they settle.  A tenant's keys share a Redis Cluster hash
slot (the tenant is the hash tag); the periods a hold covers are read from its index
inside the script, all in that slot.

Money travels as integer nano-dollars in decimal strings (see
:mod:`.redis_ledger` for why and for the exact comparison ``fits``)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis

from ..domain.money import from_nanos, to_nanos
from ..domain.records import Reservation, SpendKey
from .redis_ledger import _PRELUDE, _call, _escape, _millis

__all__ = ["Admitted", "RedisHolds"]

_HOLD_SLACK_SECONDS = 60

# KEYS: hold index, then per period: spend, reserved, res hash, resexp zset
# ARGV: now_ms, reservation id, estimate, expiry_ms, index ttl s, then a limit per period ('' = none)
_ADMIT = (
    _PRELUDE
    + """
local n = (#KEYS - 1) / 4
local out = {}
for i = 0, n - 1 do
  local b = 2 + i * 4
  drop_expired(KEYS[b + 2], KEYS[b + 3], KEYS[b + 1], ARGV[1])
  out[#out + 1] = redis.call('GET', KEYS[b]) or '0'
  out[#out + 1] = redis.call('GET', KEYS[b + 1]) or '0'
end
local granted = 1
for i = 0, n - 1 do
  local limit = ARGV[6 + i]
  if limit ~= '' and not fits(out[2 * i + 1], out[2 * i + 2], ARGV[3], limit) then granted = 0 end
end
if granted == 1 then
  local names = {}
  for i = 0, n - 1 do
    local b = 2 + i * 4
    redis.call('INCRBY', KEYS[b + 1], ARGV[3])
    redis.call('HSET', KEYS[b + 2], ARGV[2], ARGV[3])
    redis.call('ZADD', KEYS[b + 3], ARGV[4], ARGV[2])
    names[#names + 1] = KEYS[b + 1] .. '\\n' .. KEYS[b + 2] .. '\\n' .. KEYS[b + 3]
  end
  redis.call('SET', KEYS[1], table.concat(names, '\\n'), 'EX', ARGV[5])
end
table.insert(out, 1, granted)
return out
"""
)

# KEYS: spend keys (ARGV[1] of them), then hold indexes
# ARGV: count of spend keys, an amount per spend key, then a reservation id per hold index
_SETTLE = """
local m = tonumber(ARGV[1])
for i = 1, m do redis.call('INCRBY', KEYS[i], ARGV[i + 1]) end
local released = 0
for j = m + 1, #KEYS do
  local index = redis.call('GET', KEYS[j])
  if index then
    local id = ARGV[j + 1]
    local names = {}
    for name in string.gmatch(index, '[^\\n]+') do names[#names + 1] = name end
    local held = false
    for p = 1, #names, 3 do
      local est = redis.call('HGET', names[p + 1], id)
      redis.call('ZREM', names[p + 2], id)
      if est then
        redis.call('DECRBY', names[p], est)
        redis.call('HDEL', names[p + 1], id)
        held = true
      end
    end
    if held then released = released + 1 end
    redis.call('DEL', KEYS[j])
  end
end
return released
"""

# KEYS: hold index.  ARGV: now_ms, reservation id.  1 if the hold is still open.
_OPEN = (
    _PRELUDE
    + """
local index = redis.call('GET', KEYS[1])
if not index then return 0 end
local names = {}
for name in string.gmatch(index, '[^\\n]+') do names[#names + 1] = name end
local open = 0
for p = 1, #names, 3 do
  drop_expired(names[p + 1], names[p + 2], names[p], ARGV[1])
  if redis.call('HEXISTS', names[p + 1], ARGV[2]) == 1 then open = 1 end
end
if open == 0 then redis.call('DEL', KEYS[1]) end
return open
"""
)


@dataclass(frozen=True, slots=True)
class Admitted:
    """Whether the hold was taken, and each period's spend plus reserved before it."""

    granted: bool
    totals: list[Decimal]


class _Script:
    """A Lua script run with EVALSHA (loaded once when Redis does not know it)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = _sha1(source)

    def load(self) -> None:
        self._client.script_load(self.source)

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _pack(command: Sequence[Any]) -> bytes:
    """A command in RESP, the way Redis reads it (redis-py's general packer costs more
    than the round trip for a script with twenty arguments)."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _unescape(text: str) -> str:
    return text.replace("%3A", ":").replace("%7D", "}").replace("%7B", "{").replace("%25", "%")


def _glob(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _sha1(source: str) -> str:
    import hashlib

    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class RedisHolds:
    """Reservations and metered spend of budget periods, one round trip each."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._names: dict[tuple[str, SpendKey], tuple[str, str, str, str]] = {}
        self._local = threading.local()  # each thread's own connection (no pool per call)
        self._made: list[Any] = []
        self._made_lock = threading.Lock()
        self._admit = _Script(client, _ADMIT)
        self._settle = _Script(client, _SETTLE)
        self._open = _Script(client, _OPEN)

    def _connection(self) -> Any:
        """This thread's connection: a pool checkout per call cost a fifth of a
        round trip.  Made again after a fork; reconnects by itself after an error."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._client.connection_pool.make_connection()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._made_lock:
                self._made.append(conn)
        try:  # what the pool checks at checkout: a socket the server closed (a restart) is replaced
            if conn.can_read(timeout=0):
                conn.disconnect()
        except (redis.ConnectionError, OSError):
            conn.disconnect()
        return conn

    def close(self) -> None:
        with self._made_lock:
            made, self._made = self._made, []
        for conn in made:
            with contextlib.suppress(Exception):
                conn.disconnect()

    # -- key names ----------------------------------------------------------------
    def _periods(self, tenant_id: str, key: SpendKey) -> tuple[str, str, str, str]:
        """spend, reserved, res and resexp of a period (built once: every admission
        and settlement of the period names them)."""
        names = self._names.get((tenant_id, key))
        if names is None:
            if len(self._names) > 100_000:
                self._names.clear()
            tag = _escape(tenant_id)
            spend, reserved, res, resexp = (self._period(tag, k, key) for k in ("spend", "reserved", "res", "resexp"))
            names = self._names[(tenant_id, key)] = (spend, reserved, res, resexp)
        return names

    def _period(self, tag: str, kind: str, key: SpendKey) -> str:
        return f"{self._prefix}:{{{tag}}}:{kind}:{_escape(key.budget_id)}:{key.period_start.isoformat()}"

    def _index(self, tag: str, reservation_id: str) -> str:
        return f"{self._prefix}:{{{tag}}}:hold:{_escape(reservation_id)}"

    # -- round trips ----------------------------------------------------------------
    def _run(self, commands: Sequence[tuple[Any, ...]], scripts: Sequence[_Script]) -> list[Any]:
        """Send ``commands`` in one round trip; scripts Redis does not know (a restart,
        a flush) are loaded and the commands sent again."""

        def once() -> list[Any]:
            conn = self._connection()
            try:
                conn.send_packed_command([b"".join(_pack(c) for c in commands)])
                replies: list[Any] = []
                for _ in commands:  # every reply is read, errors included, before one is raised
                    try:
                        replies.append(conn.read_response())
                    except redis.exceptions.ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                conn.disconnect()  # a half-read reply must not reach the next call
                raise
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies

        def run() -> list[Any]:
            try:
                return once()
            except redis.exceptions.NoScriptError:
                for script in scripts:
                    script.load()
                return once()

        return _call(run)

    def admit(
        self, reservation: Reservation, limits: Sequence[tuple[SpendKey, Decimal | None]], *, now: datetime, ttl: float
    ) -> Admitted:
        tag = _escape(reservation.tenant_id)
        keys = [self._index(tag, reservation.id)]
        nodes = reservation.nodes or (reservation.tenant_id,) * len(limits)
        for (key, _), node in zip(limits, nodes, strict=True):
            keys += self._periods(node, key)
        now_ms = _millis(now)
        expiry_ms = now_ms + max(1, round(ttl * 1000))
        index_ttl = int(ttl) + _HOLD_SLACK_SECONDS
        args: list[Any] = [now_ms, reservation.id, str(to_nanos(reservation.amount)), expiry_ms, index_ttl]
        args += ["" if limit is None else str(to_nanos(limit)) for _, limit in limits]
        reply = self._run([self._admit.command(keys, args)], [self._admit])[0]
        raw = [int(v) for v in reply[1:]]
        return Admitted(bool(int(reply[0])), [from_nanos(raw[i] + raw[i + 1]) for i in range(0, len(raw), 2)])

    def settle(self, spend: Sequence[tuple[str, SpendKey, Decimal]], holds: Sequence[tuple[str, str]]) -> int:
        """Add ``spend`` (tenant, period, amount) and drop the holds (reservation id,
        tenant): one script per tenant, one round trip.  Returns how many were open."""
        tenants: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {}
        for tenant, key, amount in spend:
            spend_keys, amounts, _, _ = tenants.setdefault(tenant, ([], [], [], []))
            spend_keys.append(self._periods(tenant, key)[0])
            amounts.append(str(to_nanos(amount)))
        for reservation_id, tenant in holds:
            _, _, indexes, ids = tenants.setdefault(tenant, ([], [], [], []))
            indexes.append(self._index(_escape(tenant), reservation_id))
            ids.append(reservation_id)
        if not tenants:
            return 0
        commands = [
            self._settle.command([*spend_keys, *indexes], [len(spend_keys), *amounts, *ids])
            for spend_keys, amounts, indexes, ids in tenants.values()
        ]
        replies = self._run(commands, [self._settle])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(int(r) for r in replies)

    def release(self, reservation_id: str, *, tenant_id: str | None) -> bool:
        if tenant_id is None:  # an operator's release: find the tenant (a scan, rare)
            pattern = f"{self._prefix}:{{*}}:hold:{_glob(_escape(reservation_id))}"
            found = _call(lambda: next(iter(self._client.scan_iter(match=pattern, count=1000)), None))
            if found is None:
                return False
            name = found.decode() if isinstance(found, bytes) else str(found)
            tenant_id = _unescape(name[len(self._prefix) + 2 : name.rindex("}:hold:")])
        return self.settle([], [(reservation_id, tenant_id)]) > 0

    def open_count(self, now: datetime) -> int:
        """Holds still open (expired ones dropped as they are found): a scan, for
        operators and tests, not for the hot path."""
        pattern = f"{self._prefix}:{{*}}:hold:*"
        names = _call(lambda: list(self._client.scan_iter(match=pattern, count=1000)))
        now_ms = _millis(now)
        count = 0
        for raw in names:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            reservation_id = _unescape(name.rsplit(":hold:", 1)[1])
            reply = self._run([self._open.command([name], [now_ms, reservation_id])], [self._open])[0]
            count += int(reply)
        return count
