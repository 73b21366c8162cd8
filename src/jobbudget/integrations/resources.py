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

What the process cannot see, the job reports itself: :func:`report_resources`
(``report_resources({"gpu:a100": gpu_seconds}, labels={"project": "llm"},
qos="high")``), called in the job's thread while it is metered, adds named
resources (summed per name), labels and a QoS to the job the meter records.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..domain.errors import ValidationError
from ..domain.resources import check_labels, check_resource_name

__all__ = ["ResourceMeter", "Usage", "exact", "report_resources", "rss_bytes"]

_MB = 1048576.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"
_FIGURES = ("cpu_seconds", "memory_mb_seconds", "wall_seconds", "peak_rss_mb")
_current = threading.local()  # the ResourceMeter measuring this thread's job, if any


def rss_bytes() -> int:
    """The resident set size of this process now, in bytes."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes, Linux: KiB


def exact(name: str, value: Any) -> Decimal:
    """A reported quantity as an exact Decimal (a float by its shortest form)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValidationError(f"resources.{name}", value, "must be a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        raise ValidationError(f"resources.{name}", value, "must be a number") from None
    if not number.is_finite() or number < 0:
        raise ValidationError(f"resources.{name}", value, "must be a finite number, 0 or more")
    return number


@dataclass(frozen=True, slots=True)
class Usage:
    """What a measured stretch of code used, plus what the job reported itself
    (:func:`report_resources`): named resources, labels and QoS."""

    cpu_seconds: float
    memory_mb_seconds: float
    wall_seconds: float
    peak_rss_mb: float
    resources: Mapping[str, Decimal] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    qos: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (RQ keeps it in ``job.meta``): quantities as exact strings."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _FIGURES}
        if self.resources:
            out["resources"] = {name: str(q) for name, q in self.resources.items()}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.qos:
            out["qos"] = self.qos
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            cpu_seconds=float(data["cpu_seconds"]),
            memory_mb_seconds=float(data["memory_mb_seconds"]),
            wall_seconds=float(data["wall_seconds"]),
            peak_rss_mb=float(data["peak_rss_mb"]),
            resources={n: exact(n, q) for n, q in (data.get("resources") or {}).items()},
            labels=dict(data.get("labels") or {}),
            qos=str(data.get("qos") or ""),
        )


def report_resources(
    resources: Mapping[str, Any] | None = None, *, labels: Mapping[str, str] | None = None, qos: str | None = None
) -> bool:
    """Add what the running job used beyond CPU and memory to the job this thread's
    meter records: ``{"gpu:a100": 3600}`` (GPU-seconds; quantities of one name add
    up over calls), labels (merged) and the QoS.  Names and numbers are checked
    here, so a mistake fails in the job that made it.  False (nothing recorded) when
    no meter measures this thread (the job runs without the integration)."""
    checked = {check_resource_name("resources.name", n): exact(n, q) for n, q in (resources or {}).items()}
    checked_labels = check_labels("labels", labels)
    running: ResourceMeter | None = getattr(_current, "meter", None)
    if running is None:
        return False
    running.add(checked, checked_labels, qos)
    return True


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
        self._resources: dict[str, Decimal] = {}
        self._labels: dict[str, str] = {}
        self._qos = ""
        self._outer: ResourceMeter | None = None

    def add(self, resources: Mapping[str, Decimal], labels: Mapping[str, str], qos: str | None) -> None:
        """What the job reported (see :func:`report_resources`)."""
        with self._lock:
            for name, quantity in resources.items():
                self._resources[name] = self._resources.get(name, Decimal(0)) + quantity
            self._labels.update(labels)
            if qos is not None:
                self._qos = qos

    def start(self) -> ResourceMeter:
        if self._thread is not None:
            raise RuntimeError("a ResourceMeter measures once")
        self._cpu0 = time.process_time()
        self._t0 = self._last_t = time.perf_counter()
        self._last_mb = self._peak = rss_bytes() / _MB
        self._thread = threading.Thread(target=self._run, name="jobbudget-rss-sampler", daemon=True)
        self._thread.start()
        self._outer, _current.meter = getattr(_current, "meter", None), self
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
        if getattr(_current, "meter", None) is self:
            _current.meter = self._outer
        self._stop.set()
        self._thread.join()
        self._sample()  # the tail since the last sample
        with self._lock:
            return Usage(
                cpu_seconds=max(cpu, 0.0),
                memory_mb_seconds=self._area,
                wall_seconds=self._last_t - self._t0,
                peak_rss_mb=self._peak,
                resources=dict(self._resources),
                labels=dict(self._labels),
                qos=self._qos,
            )
