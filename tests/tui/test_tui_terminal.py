"""The real ``jobbudget tui`` command in a real pseudo-terminal (tmux), on the demo
database: what a person sees on screen, keys included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import IN_CI

BIN = Path(sys.executable).parent / "jobbudget"
pytestmark = pytest.mark.slow


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True, timeout=10).stdout


def _screen(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session)


def _wait_for(session: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")


@pytest.fixture
def demo_db(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    done = subprocess.run(
        [str(BIN), "demo", "--database-url", url, "--json"], check=True, capture_output=True, text=True, timeout=120
    )
    month_end = json.loads(done.stdout)["month"]["end"]
    return url, f"{month_end}T23:59:59Z"


def test_tui_command_in_a_terminal_shows_every_tab_and_quits(demo_db: tuple[str, str]) -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is needed for the terminal test")
        pytest.skip("tmux is not installed")
    url, at = demo_db
    session = f"jobbudget-{uuid.uuid4().hex[:8]}"
    command = f"{BIN} tui --database-url {url} --at {at}; echo EXITED-$?; sleep 30"
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command], check=True, env=env, timeout=10
    )
    try:
        _wait_for(session, "month to date")
        screen = _wait_for(session, "q Quit")
        assert "1 Overview" in screen and "4 Alerts" in screen and "q Quit" in screen
        assert "Block" in screen and "budgets" in screen
        _tmux("send-keys", "-t", session, "2")
        screen = _wait_for(session, "Cost by component")
        assert "daily spend" in screen and "pace" in screen
        _tmux("send-keys", "-t", session, "4")
        screen = _wait_for(session, "block")
        _tmux("send-keys", "-t", session, "3")
        _wait_for(session, "Save")
        _tmux("send-keys", "-t", session, "1")
        _tmux("send-keys", "-t", session, "?")
        _wait_for(session, "jobbudget: keys")
        _tmux("send-keys", "-t", session, "Escape")  # alone: ESC then q at once would read as Alt+q
        deadline = time.monotonic() + 10
        while "jobbudget: keys" in _screen(session) and time.monotonic() < deadline:
            time.sleep(0.2)
        _tmux("send-keys", "-t", session, "q")
        _wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)


def test_demo_with_tui_opens_the_ui_on_the_demo_data(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is needed for the terminal test")
        pytest.skip("tmux is not installed")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    session = f"jobbudget-{uuid.uuid4().hex[:8]}"
    command = f"{BIN} demo --tui --database-url {url}; echo EXITED-$?; sleep 30"
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command], check=True, env=env, timeout=10
    )
    try:
        screen = _wait_for(session, "month to date", timeout=90)
        assert "Mar 01" in screen  # the demo's month, not today's empty period
        _wait_for(session, "q Quit")
        _tmux("send-keys", "-t", session, "q")
        _wait_for(session, "EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
