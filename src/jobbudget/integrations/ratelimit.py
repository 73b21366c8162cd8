"""Budget-aware rate limiting (the design document's "Integration with Rate
Limiting"), and the pacing the queue integrations use for throttled jobs.

:class:`BudgetAwareRateLimiter` keeps a token bucket per tenant and queue: it holds
at most ``burst`` tokens and refills at ``rate × factor`` tokens per second, where
``factor`` is the throttle factor of the budget decision (1 when the budget allows
or warns).  :meth:`~BudgetAwareRateLimiter.allow` asks
``service.check_budget_compliance`` first: a block refuses without touching the
bucket; otherwise one token (``cost``) is taken if there is one.  Buckets live in
this process, or in Redis (one hash per bucket, updated by a Lua script, so every
process sharing the Redis shares the bucket atomically).

:class:`Pacer` spaces the jobs of a throttled tenant so that they keep at most
``factor`` of a worker busy (see its docstring for the formula).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain.enforcement import EnforcementAction

if TYPE_CHECKING:
    from ..service import BudgetService

__all__ = ["BudgetAwareRateLimiter", "Pacer", "RateDecision"]

# KEYS[1]: the bucket; ARGV: rate per second, burst, now (seconds), cost, ttl (ms).
# Returns {allowed (0/1), tokens left (string), seconds until `cost` tokens (string)}.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local wait = 0
if tokens < cost and rate > 0 then
  wait = (cost - tokens) / rate
end
return {allowed, tostring(tokens), tostring(wait)}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """``allowed``; ``retry_after``: seconds until a refused call may succeed (None
    when the budget blocks: waiting does not help); the budget ``action``; the
    effective ``rate`` and the ``tokens`` left."""

    allowed: bool
    action: EnforcementAction
    rate: float
    tokens: float
    retry_after: float | None


class BudgetAwareRateLimiter:
    """Token buckets per (tenant, queue) whose rate follows the budget.

    ``rate``: tokens per second at full capacity; ``burst``: bucket size (default:
    ``max(1, rate)``).  ``redis``: a redis-py client to share the buckets (keys
    ``{prefix}{tenant}\\x1f{queue}``), or None for buckets in this process.
    ``clock``: seconds, injectable for tests (default :func:`time.time`, which
    processes sharing a Redis bucket must agree on).
    """

    def __init__(
        self,
        service: BudgetService,
        *,
        rate: float,
        burst: float | None = None,
        redis: Any = None,  # Any: a redis.Redis client (optional dependency)
        prefix: str = "jobbudget:rl:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.service = service
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        if not self.burst > 0:
            raise ValueError("burst must be positive")
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._script: Any = redis.register_script(_LUA) if redis is not None else None
        # a full bucket refills within burst / (rate × smallest factor); keep idle ones 10× that
        self._ttl_ms = max(1000, int(self.burst / self.rate * 1000 * 100))

    def allow(self, tenant_id: str, queue_name: str = "", *, priority: int = 5, cost: float = 1.0) -> bool:
        """True when the job may be enqueued now."""
        return self.check(tenant_id, queue_name, priority=priority, cost=cost).allowed

    def check(self, tenant_id: str, queue_name: str = "", *, priority: int = 5, cost: float = 1.0) -> RateDecision:
        action = self.service.check_budget_compliance(tenant_id, queue_name, priority)
        if action.type == "block":
            return RateDecision(False, action, 0.0, 0.0, None)
        rate = self.rate * (action.factor if action.type == "throttle" else 1.0)
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the bucket size {self.burst}")
        if self._script is not None:
            allowed, tokens, wait = self._take_redis(tenant_id, queue_name, rate, cost)
        else:
            allowed, tokens, wait = self._take_local(tenant_id, queue_name, rate, cost)
        return RateDecision(allowed, action, rate, tokens, None if allowed else wait)

    def _take_local(self, tenant_id: str, queue_name: str, rate: float, cost: float) -> tuple[bool, float, float]:
        now = self._clock()
        with self._lock:
            tokens, ts = self._buckets.get((tenant_id, queue_name), (self.burst, now))
            if now > ts:
                tokens, ts = min(self.burst, tokens + (now - ts) * rate), now
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[(tenant_id, queue_name)] = (tokens, ts)
        return allowed, tokens, 0.0 if allowed else (cost - tokens) / rate

    def _take_redis(self, tenant_id: str, queue_name: str, rate: float, cost: float) -> tuple[bool, float, float]:
        key = f"{self._prefix}{tenant_id}\x1f{queue_name}"
        allowed, tokens, wait = self._script(
            keys=[key], args=[repr(rate), repr(self.burst), repr(self._clock()), repr(cost), self._ttl_ms]
        )
        return bool(int(allowed)), float(tokens), float(wait)

    def reset(self, tenant_id: str, queue_name: str = "") -> None:
        """Forget a bucket (it starts full again)."""
        if self._redis is not None:
            self._redis.delete(f"{self._prefix}{tenant_id}\x1f{queue_name}")
        with self._lock:
            self._buckets.pop((tenant_id, queue_name), None)


class Pacer:
    """Spaces the jobs of throttled keys (tenant, queue) in one worker process.

    Throttle factor ``f`` means the key may keep at most ``f`` of the worker busy.
    After one of its jobs ran ``d`` seconds, the key's next job may start
    ``d·(1−f)/f`` seconds after it ended (busy ``d`` out of every ``d/f``).  A job
    that arrives earlier is deferred to the next free slot, :meth:`defer` returning
    the delay, and reserves the slot: the one after it begins ``d_last/f`` later,
    ``d_last`` being the key's last measured duration.  A deferred job runs at its
    slot without asking again.  Start times of a busy throttled key are hence
    ``d/f`` apart: half the throughput at ``f = 0.5``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[Any, float] = {}
        self._last: dict[Any, float] = {}

    def defer(self, key: Any, factor: float) -> float:
        """Seconds the job must wait (0: run it now).  A positive answer reserves its slot."""
        if factor >= 1:
            return 0.0
        now = self._clock()
        with self._lock:
            slot = self._next.get(key, now)
            if slot <= now:
                return 0.0
            self._next[key] = slot + self._last.get(key, 0.0) / factor
            return slot - now

    def finished(self, key: Any, factor: float, duration: float) -> None:
        """Record a job of ``key`` that ran ``duration`` seconds and just ended."""
        now = self._clock()
        with self._lock:
            self._last[key] = duration
            if factor >= 1:
                return
            gap = duration * (1 - factor) / factor
            self._next[key] = max(self._next.get(key, now), now + gap)
