"""Helpers for driving the TUI in tests: wait for worker threads to deliver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds (data comes from thread workers)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)
        await asyncio.sleep(0)
    await pilot.pause()
