"""Resource sampling shared by the integrations: CPU seconds and memory MB·s of a
stretch of code running in this process.

* CPU seconds: the delta of :func:`time.process_time` (user + system CPU of every
  thread of the process) between :meth:`ResourceMeter.start` and
  :meth:`ResourceMeter.stop`.
* Memory MB·s: the process's resident set size, in MB (1 MB = 1048576 bytes, as the
  cost engine counts), integrated over wall time by the trapezoid rule.  A daemon
  thread reads ``/proc/self/statm`` every ``interval`` seconds (default 20 ms); where
  there is no ``/proc`` the peak RSS from :func:`resource.getrusage` is used instead,
  which over-estimates.

Both are whole-process figures: with a worker running one job at a time (Celery
``--pool=solo`` or prefork with concurrency 1 per child, RQ's work horse) they are
the job's; with several jobs in threads of one process they include the others'.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from dataclasses import dataclass

__all__ = ["ResourceMeter", "Usage", "rss_bytes"]

_MB = 1048576.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def rss_bytes() -> int:
    """The resident set size of this process now, in bytes."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes, Linux: KiB


@dataclass(frozen=True, slots=True)
class Usage:
    """What a measured stretch of code used."""

    cpu_seconds: float
    memory_mb_seconds: float
    wall_seconds: float
    peak_rss_mb: float

    def as_dict(self) -> dict[str, float]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_mb_seconds": self.memory_mb_seconds,
            "wall_seconds": self.wall_seconds,
            "peak_rss_mb": self.peak_rss_mb,
        }

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Usage:
        return cls(**{k: float(data[k]) for k in ("cpu_seconds", "memory_mb_seconds", "wall_seconds", "peak_rss_mb")})


class ResourceMeter:
    """Measures CPU seconds and memory MB·s between :meth:`start` and :meth:`stop`.
    One use per instance."""

    def __init__(self, *, interval: float = 0.02) -> None:
        if not interval > 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cpu0 = 0.0
        self._t0 = 0.0
        self._last_t = 0.0
        self._last_mb = 0.0
        self._area = 0.0
        self._peak = 0.0

    def start(self) -> ResourceMeter:
        if self._thread is not None:
            raise RuntimeError("a ResourceMeter measures once")
        self._cpu0 = time.process_time()
        self._t0 = self._last_t = time.perf_counter()
        self._last_mb = self._peak = rss_bytes() / _MB
        self._thread = threading.Thread(target=self._run, name="jobbudget-rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        mb = rss_bytes() / _MB
        now = time.perf_counter()
        with self._lock:
            self._area += (now - self._last_t) * (mb + self._last_mb) / 2
            self._last_t, self._last_mb = now, mb
            self._peak = max(self._peak, mb)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def stop(self) -> Usage:
        """Stop sampling and return the usage (call once)."""
        if self._thread is None:
            raise RuntimeError("stop() before start()")
        cpu = time.process_time() - self._cpu0
        self._stop.set()
        self._thread.join()
        self._sample()  # the tail since the last sample
        with self._lock:
            return Usage(
                cpu_seconds=max(cpu, 0.0),
                memory_mb_seconds=self._area,
                wall_seconds=self._last_t - self._t0,
                peak_rss_mb=self._peak,
            )
