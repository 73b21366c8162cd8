"""The body of every test job: records when it ran in a marker file, burns CPU,
holds memory."""

from __future__ import annotations

import json
import os
import time


def run_workload(marker: str, *, cpu: float = 0.0, mb: int = 0, hold: float = 0.0) -> None:
    started = time.time()
    block = bytearray(mb * 1048576)
    for i in range(0, len(block), 4096):  # touch every page so it is resident
        block[i] = 1
    cpu0 = time.process_time()
    x = 0
    while time.process_time() - cpu0 < cpu:
        x += 1
    deadline = time.perf_counter() + hold
    while time.perf_counter() < deadline:
        time.sleep(0.01)
    del block
    ended = time.time()
    with open(marker, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "start": started, "end": ended}) + "\n")
