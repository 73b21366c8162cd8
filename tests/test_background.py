"""PeriodicWorker: one failing task neither stops the others nor itself, failures are
logged once a streak, a wake event runs a task early, and stop() is prompt."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from jobbudget.background import PeriodicTask, PeriodicWorker
from jobbudget.config import Config
from jobbudget.domain.errors import StorageUnavailableError
from jobbudget.notify.dispatcher import Dispatcher, DispatchResult
from jobbudget.storage.memory import MemoryStore

FAST = 0.01  # seconds between runs of the tasks here
WAIT = 10.0  # how long a test waits for what must happen


class Counter:
    """Counts calls and lets a test wait for the count to reach a number."""

    def __init__(self, fail: Callable[[int], BaseException | None] = lambda n: None) -> None:
        self.calls = 0
        self._fail = fail
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.calls += 1
            error = self._fail(self.calls)
            self._changed.notify_all()
        if error is not None:
            raise error

    def wait_for(self, calls: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.calls >= calls, timeout=WAIT), f"{self.calls} < {calls} calls"


@pytest.fixture
def workers() -> Iterator[list[PeriodicWorker]]:
    made: list[PeriodicWorker] = []
    yield made
    for worker in made:
        worker.stop()


def started(workers: list[PeriodicWorker], tasks: list[PeriodicTask], **options: float) -> PeriodicWorker:
    worker = PeriodicWorker(tasks, name="test-worker", min_interval=options.pop("min_interval", FAST), **options)
    workers.append(worker)
    worker.start()
    return worker


def test_a_task_that_raises_stops_neither_the_others_nor_itself(
    workers: list[PeriodicWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobbudget")
    broken = Counter(fail=lambda n: RuntimeError(f"boom {n}"))
    healthy = Counter()
    started(workers, [PeriodicTask(broken, FAST, name="broken"), PeriodicTask(healthy, FAST, name="healthy")])
    broken.wait_for(1)
    seen = healthy.calls
    healthy.wait_for(seen + 20)  # the other task goes on ...
    broken.wait_for(5)  # ... and the failing one is tried again at its interval
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once a streak, not once a run
    (error,) = errors
    assert "background broken failed (will retry)" in error.getMessage()
    assert error.exc_info is not None and isinstance(error.exc_info[1], RuntimeError)
    assert "boom 1" in caplog.text and "Traceback" in caplog.text


def test_a_failure_streak_ends_and_a_new_one_is_logged_again(
    workers: list[PeriodicWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobbudget")
    # fails three times, works twice, fails from the sixth call on
    flaky = Counter(fail=lambda n: ValueError(f"bad {n}") if n <= 3 or n >= 6 else None)
    started(workers, [PeriodicTask(flaky, FAST, name="flaky")])
    flaky.wait_for(9)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if "flaky" in r.getMessage()]
    assert messages[:3] == [
        (logging.ERROR, "background flaky failed (will retry)"),
        (logging.INFO, "background flaky works again after 3 failure(s)"),
        (logging.ERROR, "background flaky failed (will retry)"),
    ]


def test_an_expected_outage_is_a_warning_without_traceback(
    workers: list[PeriodicWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobbudget")
    down = Counter(fail=lambda n: StorageUnavailableError("database is down"))
    started(workers, [PeriodicTask(down, FAST, name="resync")])
    down.wait_for(3)
    (record,) = [r for r in caplog.records if "resync" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "database is down" in record.getMessage()


def test_the_old_tuple_form_and_the_one_second_floor(workers: list[PeriodicWorker]) -> None:
    task = Counter()
    worker = PeriodicWorker([(0.001, task)], name="test-worker")  # at most once a second
    workers.append(worker)
    began = time.monotonic()
    worker.start()
    task.wait_for(2)
    assert time.monotonic() - began >= 1.9


def test_a_wake_event_runs_its_task_at_once(workers: list[PeriodicWorker]) -> None:
    wake = threading.Event()
    woken, other = Counter(), Counter()
    started(workers, [PeriodicTask(woken, 3600, wake=wake), PeriodicTask(other, 3600)])
    for expected in (1, 2, 3):
        wake.set()
        woken.wait_for(expected)
    assert other.calls == 0  # a wake runs only the tasks that wait for it


def test_one_worker_waits_on_one_wake_event() -> None:
    tasks = [PeriodicTask(Counter(), 1, wake=threading.Event()), PeriodicTask(Counter(), 1, wake=threading.Event())]
    with pytest.raises(ValueError, match="at most one wake event"):
        PeriodicWorker(tasks)


@pytest.mark.parametrize("with_wake", [False, True])
def test_stop_is_prompt(workers: list[PeriodicWorker], with_wake: bool) -> None:
    wake = threading.Event() if with_wake else None
    first = Counter()
    worker = started(workers, [PeriodicTask(first, 0.05, wake=wake), PeriodicTask(Counter(), 3600)], min_interval=0.05)
    first.wait_for(1)  # the thread is in its loop, waiting for the next run
    began = time.monotonic()
    worker.stop()
    assert time.monotonic() - began < 1.0
    assert worker.stopped
    calls = first.calls
    assert not worker._thread.is_alive()  # nothing runs after stop() returned
    assert first.calls == calls


def test_the_background_dispatcher_survives_a_crash_and_is_woken(workers: list[PeriodicWorker]) -> None:
    dispatcher = Dispatcher(store=MemoryStore(), config=Config(), clock=lambda: datetime(2024, 1, 15, tzinfo=UTC))
    lock, wake = threading.Lock(), threading.Event()
    held: list[bool] = []

    def run(*, timeout: float) -> DispatchResult:
        held.append(lock.locked())
        passes()
        return DispatchResult()

    passes = Counter(fail=lambda n: RuntimeError("sender bug") if n == 1 else None)
    dispatcher.run = run  # type: ignore[method-assign]
    worker = dispatcher.in_background(lock=lock, wake=wake, every=3600)
    workers.append(worker)
    wake.set()
    passes.wait_for(1)  # crashed ...
    wake.set()
    passes.wait_for(2)  # ... and still delivers when woken
    assert held == [True, True]
    worker.stop()
    dispatcher.close()
