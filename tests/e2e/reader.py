"""A reader who copies the documentation's commands into a shell, one by one.

:class:`Reader` has a workspace (the current directory of every command, laid out as
a checkout: ``Makefile``, ``pyproject.toml`` and ``.venv`` beside the files the
documents name), and an environment as after ``. .venv/bin/activate``.  It runs shell
commands with bash, Python snippets with the venv's interpreter, and the commands
that do not end by themselves in the way a person would: ``jobbudget serve`` until it
answers (then it keeps serving the rest of the block), ``jobbudget tui`` in a
terminal until it shows its tabs (then ``q``), and queue workers until they have
metered the job the snippet before sent them.

What a reader would type differently is rewritten, each rule named in
:func:`Reader.rewrite`: the documents' example host names and ports become the test's
servers, and placeholders (``BUDGET_ID``, ``URL``) real values.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from receivers import free_port

from .snippets import ROOT

__all__ = ["Completed", "Reader", "SnippetFailedError"]

_RESERVATION = re.compile(r'"reservation_id":\s*"([A-Za-z0-9]+)"')
_KEY = re.compile(r"\bjb_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")
_EXAMPLE_HOSTS = re.compile(r"\b(?:localhost|127\.0\.0\.1|budgets):8080\b")
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


class SnippetFailedError(AssertionError):
    """A documented command did not do what the documentation says."""


@dataclass(frozen=True)
class Completed:
    command: str
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"$ {self.command}\n(exit {self.returncode})\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Reader:
    """One reader's workspace, environment and what the commands started."""

    workspace: Path
    env: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    rules: list[tuple[str, str]] = field(default_factory=list)  # (literal text, replacement)
    server_url: str | None = None  # where the documents' example host:8080 goes
    ran: list[str] = field(default_factory=list)  # every command, as run
    _daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # -- the shell --------------------------------------------------------------------
    def rewrite(self, text: str) -> str:
        """``text`` as this reader types it.  Rules, in order:

        * ``localhost:8080``, ``127.0.0.1:8080``, ``budgets:8080`` (the documents'
          example server) are the server this reader talks to: the last one a command
          started, else the test's;
        * ``curl`` gets ``-sS --fail-with-body``, so an HTTP error fails the command as
          it would alarm a person reading the answer;
        * the literal replacements in ``rules`` (set per document: a PostgreSQL URL
          that names the reader's server, a Redis URL, a cron line's schedule);
        * the placeholders in ``values`` (``BUDGET_ID``, ``URL``), as whole words.
        """
        if self.server_url is not None:
            text = _EXAMPLE_HOSTS.sub(self.server_url.removeprefix("http://"), text)
        text = re.sub(r"(^|\|\s*|&&\s*)curl ", r"\1curl -sS --fail-with-body ", text)
        for literal, replacement in self.rules:
            text = text.replace(literal, replacement)
        for name, value in self.values.items():
            text = re.sub(rf"\b{re.escape(name)}\b", lambda _, shown=value: shown, text)
        return text

    def run(self, command: str, *, timeout: float = 180, check: bool = True, rewrite: bool = True) -> Completed:
        """Run one documented command with bash; a long-running one (``serve``, ``tui``,
        a queue worker) as described in the module docstring."""
        typed = self.rewrite(command) if rewrite else command
        self.ran.append(typed)
        if re.match(r"jobbudget serve\b", typed):
            return self._serve(typed)
        if re.match(r"jobbudget tui\b", typed):
            return self._tui(typed)
        if re.match(r"(rq|celery)\b.*\bworker\b", typed):
            return self._worker(typed)
        proc = subprocess.run(
            ["bash", "-c", typed], cwd=self.workspace, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        done = Completed(typed, proc.returncode, proc.stdout, proc.stderr)
        if check and done.returncode != 0:
            raise SnippetFailedError(done.describe())
        found = _KEY.findall(done.stdout)
        if found and "apikey create" in typed:  # as a person would: export KEY=...
            self.env["KEY"] = found[0]
        reservation = _RESERVATION.search(done.stdout)
        if reservation:  # as a person would: copy the id from the answer
            self.values["RESERVATION_ID"] = reservation[1]
        return done

    def python(
        self, source: str, *, name: str, timeout: float = 180, until_output: bool = False, runner: tuple[str, ...] = ()
    ) -> Completed:
        """Run ``source`` as a program file in the workspace (with ``runner``, another
        interpreter and its options, e.g. Node for JavaScript).  With ``until_output``
        it is a loop that never ends by itself: stopped once it printed a line."""
        script = self.workspace / name
        script.write_text(source, encoding="utf-8")
        argv = [*(runner or (sys.executable,)), name]
        command = f"{Path(runner[0]).name if runner else 'python'} {name}"
        self.ran.append(command)
        if not until_output:
            proc = subprocess.run(
                argv, cwd=self.workspace, env=self.env, capture_output=True, text=True, timeout=timeout
            )
            done = Completed(command, proc.returncode, proc.stdout, proc.stderr)
            if done.returncode != 0:
                raise SnippetFailedError(f"{done.describe()}\n--- program\n{source}")
            return done
        with self._process(argv) as (proc, output):
            line = self._wait(lambda: b"\n" in output(), proc, timeout=30, what="a line of output")
            del line
            return Completed(command, 0, output().decode(), "")

    def write(self, relative: str, text: str) -> Path:
        """Save a file the documents show as a file (``# myapp/tasks.py``), with the
        package's ``__init__.py``."""
        path = self.workspace / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(self.workspace).parents:
            if parent != Path("."):
                (self.workspace / parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
        return path

    def stop_daemons(self) -> None:
        """End what the commands left running (servers), as Ctrl-C would."""
        while self._daemons:
            _stop(self._daemons.pop())

    # -- commands that do not end by themselves -------------------------------------
    def _serve(self, command: str) -> Completed:
        port = free_port()
        command = re.sub(r"--port \d+", f"--port {port}", command)
        if "--port" not in command:
            command += f" --port {port}"
        host = re.search(r"--host (\S+)", command)
        url = f"http://{host.group(1) if host else '127.0.0.1'}:{port}"
        proc = self._spawn(["bash", "-c", f"exec {command}"])
        log = self.workspace / f"serve-{port}.log"
        self._daemons.append(proc)

        def ready() -> bool:
            with suppress(httpx.TransportError):
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            return False

        self._wait(ready, proc, timeout=30, what=f"{url}/readyz to answer 200", log=log)
        self.server_url = url
        return Completed(command, 0, f"serving at {url}", "")

    def _tui(self, command: str) -> Completed:
        with self._process(["bash", "-c", f"exec {command}"], terminal=True) as (proc, output):
            self._wait(lambda: all(t in _plain(output()) for t in (b"Overview", b"Alerts")), proc, 60, "the tabs")
            os.write(self._terminal, b"q")
            deadline = time.monotonic() + 15
            while proc.poll() is None:  # reading on: a terminal nobody reads blocks the program writing to it
                output()
                if time.monotonic() > deadline:
                    raise SnippetFailedError(f"$ {command}\n`q` did not quit the terminal UI within 15 s")
                time.sleep(0.05)
            screen = _plain(output()).decode(errors="replace")
            if proc.returncode != 0:
                raise SnippetFailedError(f"$ {command}\n(exit {proc.returncode})\n{screen[-3000:]}")
            return Completed(command, 0, screen, "")

    def _worker(self, command: str) -> Completed:
        before = self.jobs_stored()
        with self._process(["bash", "-c", f"exec {command}"]) as (proc, output):
            self._wait(lambda: self.jobs_stored() > before, proc, 60, "the worker to meter a job")
            return Completed(command, 0, output().decode(errors="replace"), "")

    def jobs_stored(self) -> int:
        """Jobs in the workspace's default database (``sqlite:///jobbudget.db``)."""
        path = self.workspace / "jobbudget.db"
        if not path.exists():
            return 0
        with suppress(sqlite3.Error), sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM job_costs").fetchone()[0])
        return 0

    _terminal: int = -1

    @contextmanager
    def _process(
        self, argv: list[str], terminal: bool = False
    ) -> Iterator[tuple[subprocess.Popen[bytes], Callable[[], bytes]]]:
        """A child process whose output (a terminal of 120 × 40 with ``terminal``) is
        collected; ended as Ctrl-C would end it when the block leaves."""
        master, slave = pty.openpty()
        if terminal:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**self.env, "TERM": "xterm-256color"} if terminal else self.env
        proc = subprocess.Popen(
            argv, cwd=self.workspace, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self._terminal = master
        collected = bytearray()

        def output() -> bytes:
            while select.select([master], [], [], 0)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child has gone and closed the terminal
                    break
                if not chunk:
                    break
                collected.extend(chunk)
            return bytes(collected)

        try:
            yield proc, output
        finally:
            _stop(proc)
            output()
            os.close(master)

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        port = re.search(r"--port (\d+)", argv[-1])
        log = (self.workspace / f"serve-{port.group(1) if port else 'x'}.log").open("wb")
        with log:
            return subprocess.Popen(
                argv, cwd=self.workspace, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @staticmethod
    def _wait(
        ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {proc.returncode}" if proc.returncode is not None else f"no {what} in {timeout} s"
                shown = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
                raise SnippetFailedError(f"$ {' '.join(map(str, proc.args))}\n{why}\n{shown}")
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the process group (Ctrl-C), then SIGKILL if it lingers."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _plain(screen: bytes) -> bytes:
    """Terminal output without its escape sequences."""
    return _ANSI.sub(b"", screen)


def checkout(workspace: Path) -> None:
    """Lay ``workspace`` out as a checkout: the Makefile and the files it depends on,
    and ``.venv`` (the interpreter running the tests)."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "constraints-openapi-client.txt"):
        (workspace / name).symlink_to(ROOT / name)
    (workspace / ".venv").symlink_to(Path(sys.prefix))
