"""Helpers for driving the TUI in tests: wait for worker threads to deliver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(
    pilot: Pilot[None],
    condition: Callable[[], bool],
    *,
    timeout: float = 20.0,
    what: str | Callable[[], str] = "",
) -> None:
    """Let the app run until ``condition()`` holds (data comes from thread workers);
    ``what`` (or a callable giving it at the time) names what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {described or condition}")
        await pilot.pause(0.02)
        await asyncio.sleep(0)
    await pilot.pause()
