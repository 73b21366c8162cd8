"""A real ``jobbudget serve`` process on a free port of 127.0.0.1, for end-to-end tests.

:func:`start_server` creates the database and an admin key with the installed console
script (``jobbudget apikey create``), starts ``jobbudget serve`` in a new process group
with its output in a log file, and returns once ``/readyz`` answers 200.  Options cover
what later tests need: a YAML configuration (``config``), environment variables
(``env``), ``--workers`` and any other arguments.  :meth:`LiveServer.stop` sends a
signal and measures how long the server takes to exit; :meth:`LiveServer.kill` ends
the whole process group (workers included) and is safe to call at any time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from receivers import free_port

__all__ = ["STARTUP_SECONDS", "LiveServer", "ServerFailedError", "jobbudget_command", "start_server"]

#: Generous: two cores shared with other tests, and every worker imports FastAPI.
STARTUP_SECONDS = 30.0
_PORT_TAKEN = "address already in use"


class ServerFailedError(RuntimeError):
    """The server did not start, or did not stop in time; the message ends with its log."""


def jobbudget_command() -> str:
    """The ``jobbudget`` console script installed beside this interpreter."""
    found = shutil.which("jobbudget", path=str(Path(sys.prefix) / "bin")) or shutil.which("jobbudget")
    if found is None:
        raise ServerFailedError(f"no jobbudget console script in {sys.prefix}/bin: pip install -e '.[api]'")
    return found


@dataclass(eq=False)  # a process handle: equal only to itself
class LiveServer:
    """A running ``jobbudget serve``: where it listens, its admin key and database, and
    its log (stdout and stderr of every process it started)."""

    url: str
    admin_key: str
    database_url: str
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    command: list[str]
    env: dict[str, str] = field(repr=False)
    config_path: Path | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def headers(self, key: str | None = None) -> dict[str, str]:
        """``Authorization`` for ``key`` (default: the admin key)."""
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    def client(self, key: str | None = None, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(key), timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far, from
        ``/proc/PID/stat`` (Linux; 10 ms resolution)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii")
        fields = stat.rsplit(")", 1)[1].split()  # after the command name: state is field 3
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def cli(self, *args: str) -> str:
        """Run another ``jobbudget`` command on this server's database and configuration."""
        return _run_cli(self.env, self.database_url, self.config_path, *args)

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, group: bool = False, timeout: float = 30.0) -> float:
        """Send ``sig`` (to the whole process group with ``group``, as Ctrl-C in a
        terminal does) and return the seconds until the server exited.  A server still
        running after ``timeout`` is killed and :class:`ServerFailedError` raised."""
        if not self.running():
            raise ServerFailedError(f"the server had already exited ({self.process.returncode})\n{self.log()}")
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerFailedError(f"still running {timeout} s after {sig.name}\n{self.log()}") from None
        return time.monotonic() - started

    def relaunch(self, timeout: float = STARTUP_SECONDS) -> None:
        """Start the same command again (same port, database and log) after the server
        was stopped or killed, and wait until it is ready: clients see a lost connection
        come back."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_ready(self, timeout)

    def kill(self) -> None:
        """SIGKILL the process group (the server and any workers it left); idempotent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def _run_cli(env: Mapping[str, str], database_url: str, config_path: Path | None, *args: str) -> str:
    command = [jobbudget_command(), *args, "--database-url", database_url]
    if config_path is not None:
        command += ["--config", str(config_path)]
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ServerFailedError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def start_server(
    workdir: Path,
    *,
    workers: int = 1,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    prepare: Sequence[Sequence[str]] = (),
    database_url: str | None = None,
    startup_timeout: float = STARTUP_SECONDS,
) -> LiveServer:
    """Start ``jobbudget serve`` in ``workdir`` (its working directory, database, config
    file and log) and wait until it is ready.  ``config`` is written as YAML and passed
    with ``--config``; ``env`` is added to this process's environment; ``args`` are
    further ``serve`` arguments; ``prepare`` holds ``jobbudget`` commands (argument
    lists, e.g. ``["budget", "create", ...]``) run on the database before the server
    starts.  The database is a SQLite file in ``workdir`` unless ``database_url`` or
    ``config`` names one."""
    workdir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in (env or {}):
        # the workers' metric files go with the rest of the server, not into /tmp
        (workdir / "metrics").mkdir(exist_ok=True)
        full_env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
    config_path: Path | None = None
    if config is not None:
        config_path = workdir / "jobbudget.yaml"
        config_path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
    url = database_url or str((config or {}).get("database_url") or f"sqlite:///{workdir / 'jobbudget.db'}")
    created = json.loads(_run_cli(full_env, url, config_path, "apikey", "create", "--role", "admin", "--json"))
    for command in prepare:
        _run_cli(full_env, url, config_path, *command)
    for attempt in range(3):  # another process may take the free port before the server binds it
        server = _launch(workdir, created["key"], url, config_path, full_env, workers, args, attempt)
        try:
            _wait_ready(server, startup_timeout)
            return server
        except ServerFailedError:
            server.kill()
            if _PORT_TAKEN not in server.log().lower() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _launch(
    workdir: Path,
    key: str,
    database_url: str,
    config_path: Path | None,
    env: dict[str, str],
    workers: int,
    args: Sequence[str],
    attempt: int,
) -> LiveServer:
    port = free_port()
    command = [jobbudget_command(), "serve", "--port", str(port), "--workers", str(workers)]
    command += ["--database-url", database_url, *args]
    if config_path is not None:
        command += ["--config", str(config_path)]
    log_path = workdir / f"server-{attempt}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return LiveServer(
        url=f"http://127.0.0.1:{port}",
        admin_key=key,
        database_url=database_url,
        workdir=workdir,
        log_path=log_path,
        process=process,
        command=command,
        env=env,
        config_path=config_path,
    )


def _wait_ready(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not server.running():
            raise ServerFailedError(f"jobbudget serve exited with {server.process.returncode}\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailedError(f"/readyz did not answer 200 within {timeout} s\n{server.log()}")
        time.sleep(0.1)
