"""Private PostgreSQL and Redis servers that fault tests may stop, kill, restart and
flush without disturbing the shared ones other test runs use (127.0.0.1:5432/6379).

PostgreSQL: a throw-away cluster (``initdb`` as user ``postgres`` when run as root) on
a free port, its socket in its own directory.  Redis: ``redis-server`` as a child
process without persistence, so a restart loses every key, as a crashed cache would.
Without the binaries the tests skip, and fail under ``CI=true``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import IN_CI
from receivers import free_port

__all__ = ["PrivatePostgres", "PrivateRedis", "TcpProxy", "private_postgres", "private_redis", "wait_until"]


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not available")
    pytest.skip(f"{what} not available")


def wait_until(predicate: object, timeout: float, interval: float = 0.05) -> float:
    """Poll ``predicate()`` until true; returns the seconds it took (fails on timeout)."""
    assert callable(predicate)
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(interval)
    return time.monotonic() - started


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.glob("*/bin/pg_ctl")) if root.exists() else []
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """A cluster of its own: ``url`` points at its ``postgres`` database."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None or not (bindir / "initdb").exists():
            _missing("PostgreSQL (initdb, pg_ctl)")
        assert bindir is not None
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="jbpg_"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "-t", "60", "start")
        wait_until(lambda: _listening(self.port), 30)

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: every backend is killed at once, as in a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
        wait_until(lambda: not _listening(self.port), 30)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` on a port of its own, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server")
        assert binary is not None
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, *args, "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: _listening(self.port), 20)

    def kill(self) -> None:
        """SIGKILL: the process and every key are gone at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.proc = None
        wait_until(lambda: not _listening(self.port), 20)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.kill()


class TcpProxy:
    """A TCP relay on 127.0.0.1 to ``target``, to lose a server's connections under a
    running service.  ``cut()`` closes the listener and every relayed connection (the
    server is gone); ``start()`` listens again on the same port (it is back).
    ``cut_after(marker)`` arms a finer fault: the next chunk a client sends that
    contains ``marker`` (e.g. PostgreSQL's ``b"COMMIT\\x00"``) reaches the server, but
    the connection is cut before the answer comes back (``cuts`` counts them)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.cuts = 0
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the same port again
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut_after(self, marker: bytes) -> None:
        self._marker = marker

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            answer_lost = threading.Event()
            for src, dst, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, outbound, answer_lost), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool, answer_lost: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                marker = self._marker
                if outbound and marker is not None and marker in data:
                    self._marker = None
                    self.cuts += 1
                    answer_lost.set()  # from now on nothing reaches the client
                    dst.sendall(data)  # the server acts on it, and its answer ends the connection
                    time.sleep(0.5)
                    break
                if answer_lost.is_set():
                    break
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
