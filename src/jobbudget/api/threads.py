"""Where route code runs: never anything on the event loop that may wait.

The event loop runs only code that does no I/O and waits on no lock: parsing,
authorization (:func:`jobbudget.domain.apikeys.can`), the key cache's lock-free reads
(:func:`.auth.key_of`), building responses.  Every call into the service that may
query the database or Redis, or wait for the service's write lock (held across
database I/O by ingestion, budget changes, resyncs and period rolls), runs in a
worker thread: plain ``def`` routes (FastAPI runs them in anyio's default pool, 40
threads), or :func:`in_admission_thread`.

Admission (``POST /v1/check`` and ``/v1/admit``: the hot path) has a pool of its own
of :data:`ADMISSION_THREADS` threads, so that

* checks never queue behind slow routes (reports, forecasts, 10,000-job batches) that
  hold every thread of the default pool, and
* checks stuck behind a period roll or a stalled Redis cannot take the default pool
  from every other route.

The hop costs a check about 0.15 ms of latency and a fifth more server CPU (1.24 ->
1.4 ms sequentially on a busy 2-core machine, SQLite), and lets the loop read the
next requests while a check runs.  Requests beyond a pool's size wait for a thread
as coroutines (cheap); how many a server accepts at once is ``http_max_connections``
(uvicorn's ``limit_concurrency``: 503 beyond it).  ``/healthz`` needs no thread at
all: it answers even when both pools are busy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

__all__ = ["ADMISSION_THREADS", "admission_pool", "in_admission_thread"]

#: Worker threads for admission checks, per server process (as many as anyio's
#: default pool: a check is CPU-bound from memory, or waits a Redis round trip).
ADMISSION_THREADS = 40

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def admission_pool() -> ThreadPoolExecutor:
    """The admission pool of this process (threads are started as needed), bound to
    no event loop.  A plain executor rather than an anyio limiter: under concurrency
    its busy threads take the next check without a wake-up (a hop: 19-31 us of CPU
    against 65-77 us for ``anyio.to_thread`` in a micro-benchmark)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(ADMISSION_THREADS, thread_name_prefix="jobbudget-admission")
    return _pool


async def in_admission_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread of the admission pool."""
    return await asyncio.get_running_loop().run_in_executor(admission_pool(), partial(fn, *args, **kwargs))
