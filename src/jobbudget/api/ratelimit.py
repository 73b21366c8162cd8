"""A sliding-window rate limit, in memory (per server process): at most ``limit`` uses
per ``window`` seconds under each key, such as an API key id or a budget id."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from ..domain.errors import RateLimitedError

__all__ = ["WindowLimiter"]

#: Above this many keys, keys with no use in the window are dropped.
_SWEEP_AT = 10_000


class WindowLimiter:
    """Thread-safe; ``clock`` gives monotonic seconds."""

    def __init__(
        self, limit: int, *, window: float = 60.0, what: str = "requests", clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._what = what
        self._clock = clock
        self._uses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, keys: Mapping[str, str]) -> None:
        """Count one use under every key (``{"API key": "k-1", "budget": "b-7"}``: what
        it is → which one) when each has room; otherwise count nothing and raise :class:`RateLimitedError` with the
        seconds until all of them have room again."""
        with self._lock:
            now = self._clock()
            if len(self._uses) > _SWEEP_AT:
                self._sweep(now)
            wait, full = 0.0, ""
            for kind, key in keys.items():
                uses = self._recent(f"{kind}\n{key}", now)
                if len(uses) >= self.limit:
                    left = uses[0] + self.window - now
                    if left > wait:
                        wait, full = left, kind
            if full:
                per = f"{self.limit} a minute" if self.window == 60 else f"{self.limit} per {self.window:g} s"
                seconds = max(1, math.ceil(wait))
                raise RateLimitedError(
                    f"too many {self._what}: at most {per} per {full}; retry in {seconds} s", retry_after=seconds
                )
            for kind, key in keys.items():
                self._uses[f"{kind}\n{key}"].append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        uses = self._uses.setdefault(key, deque())
        while uses and uses[0] <= now - self.window:
            uses.popleft()
        return uses

    def _sweep(self, now: float) -> None:
        for key in [k for k, uses in self._uses.items() if not uses or uses[-1] <= now - self.window]:
            del self._uses[key]
