"""How ``jobbudget serve`` runs uvicorn: connection limits and timeouts from the
configuration, a deadline for request heads, and a log that never shows an API key.

uvicorn (0.54, h11) has no timeout for a connection that never completes its request
head: its keep-alive timeout starts only once a response is sent, so a client that
connects and sends nothing, or half a request line, is held until it leaves.
:class:`GuardedH11Protocol` closes such a connection ``http_header_timeout`` seconds
after it was opened (or after its previous response), and when the server is at
``http_max_connections`` a new connection first closes the oldest one still waiting
for its request head, so a flood of idle connections cannot lock real clients out.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import os
import re
import socket
from collections.abc import MutableMapping
from typing import Any, ClassVar
from urllib.parse import unquote_plus

import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import Config
from .live_messages import MAX_MESSAGE_BYTES

__all__ = [
    "HEADER_TIMEOUT_ENV",
    "MAX_CONNECTIONS_ENV",
    "GuardedH11Protocol",
    "RedactTokenFilter",
    "export_settings",
    "log_config",
    "raise_open_files_limit",
    "uvicorn_options",
]

#: The settings the protocol reads in every server process (the worker processes
#: of ``--workers`` inherit them); the names are the configuration's own variables.
HEADER_TIMEOUT_ENV = "JOBBUDGET_HTTP_HEADER_TIMEOUT"
MAX_CONNECTIONS_ENV = "JOBBUDGET_HTTP_MAX_CONNECTIONS"
_DEFAULTS = Config.model_fields
_PARAMETER = re.compile(r"([?&])([^=&\s\"]*)=([^&\s\"]*)")


def _setting(name: str, field: str) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        default: float = _DEFAULTS[field].default
        return default


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once (``TCP_NODELAY``).  asyncio does it only for a socket
    created with ``IPPROTO_TCP``; with ``--workers`` above 1 uvicorn binds the listening
    socket with protocol 0, so its connections kept Nagle's algorithm, and every
    response on a kept-alive connection waited 40 ms for the client's delayed ACK."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (see the module)."""

    #: connections still waiting for their request head, oldest first (one server
    #: per process)
    waiting: ClassVar[dict[GuardedH11Protocol, None]] = {}
    #: connections closed for want of a head whose loss the loop has not reported yet
    #: (still in uvicorn's count of connections)
    closing: ClassVar[set[GuardedH11Protocol]] = set()
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]
        self._await_head()
        # Room for this one under the limit (uvicorn answers 503 at it): close the
        # connections that have waited longest for a request head.  If every other
        # connection is busy, none is closed and uvicorn answers 503.
        limit = int(_setting(MAX_CONNECTIONS_ENV, "http_max_connections"))
        excess = len(self.connections) - len(self.closing) - limit + 1
        if excess > 0:
            for other in list(itertools.islice((p for p in self.waiting if p is not self), excess)):
                other._give_up()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_received()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._head_received()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_head()  # the next request's head (keep-alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_received()
        self.closing.discard(self)
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_received()
        self.waiting[self] = None
        self._head_timer = self.loop.call_later(_setting(HEADER_TIMEOUT_ENV, "http_header_timeout"), self._give_up)

    def _head_received(self) -> None:
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _give_up(self) -> None:
        """No complete request head in time (or room needed): close the connection."""
        self._head_received()
        if not self.transport.is_closing():
            self.closing.add(self)
            self.transport.close()


class RedactTokenFilter(logging.Filter):
    """Masks the value of every ``token`` query parameter (the WebSocket's API key)
    in uvicorn's log records: the access log and its ``WebSocket /v1/ws?...`` lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = _mask(record.msg)
        return True


def _mask(text: str) -> str:
    if "=" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).strip().lower() != "token":
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}=***"

    return _PARAMETER.sub(one, text)


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactTokenFilter` on its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_token"] = {"()": f"{__name__}.RedactTokenFilter"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_token"]
    return config


def export_settings(config: Config, environ: MutableMapping[str, str]) -> None:
    """Put the settings :class:`GuardedH11Protocol` reads into ``environ`` (the server
    process's environment, which its worker processes inherit)."""
    environ[HEADER_TIMEOUT_ENV] = str(config.http_header_timeout)
    environ[MAX_CONNECTIONS_ENV] = str(config.http_max_connections)


def uvicorn_options(config: Config) -> dict[str, Any]:
    """``uvicorn.run`` arguments for ``config``."""
    return {
        "http": f"{__name__}:GuardedH11Protocol",
        "timeout_keep_alive": config.http_keep_alive_timeout,
        "limit_concurrency": config.http_max_connections,
        "backlog": config.http_backlog,
        "h11_max_incomplete_event_size": config.http_max_header_bytes,
        "ws_max_size": MAX_MESSAGE_BYTES,
        "log_config": log_config(),
        "proxy_headers": False,
    }


def raise_open_files_limit(config: Config) -> None:
    """Raise this process's soft limit of open files toward its hard limit, so that
    ``http_max_connections`` connections (and the database's files) fit."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = config.http_max_connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return
