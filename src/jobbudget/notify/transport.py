"""The HTTP transport of webhook and Slack deliveries: it connects only to addresses
the outbound policy allows (:mod:`jobbudget.domain.outbound`), checked when the
connection is made.

The check lives in the connection pool's **network backend** (httpcore's public
``NetworkBackend`` interface): when a new connection is needed, the host is resolved
**once**, **every** address it resolved to is checked (one refused address refuses the
request), and the socket is opened to one of those checked addresses, by number.  A
DNS answer that changes between a check and the connection (rebinding) therefore
cannot send a request anywhere unchecked.  Everything above the socket is httpcore's
own: the request keeps its URL, so the ``Host`` header, TLS SNI and certificate
verification are for the host name, as without the check; and pooled connections are
kept per host name, so one host's verified connection never carries another's request.
Redirects are not followed (the senders' client does not), and proxies from the
environment are not used: the address connected to must be the address checked.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import httpcore
import httpx

from ..domain.outbound import IPAddress, OutboundPolicy, literal_address
from .base import TargetNotAllowedError

__all__ = ["CheckedBackend", "CheckedTransport", "Resolver", "system_resolver"]

#: ``(host, port)`` → every address the host resolves to (as text).
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer (``getaddrinfo``): every IPv4 and IPv6 address, in order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class CheckedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses ``policy`` allows (see the module)."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._sockets = httpcore.SyncBackend()

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all allowed; raises
        :class:`TargetNotAllowedError` when one is not, ``httpcore.ConnectError`` when
        it does not resolve."""
        try:
            answers = list(self._resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
        if not answers:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        checked = []
        for text in answers:
            address = _address(text)
            if address is None:
                raise TargetNotAllowedError(f"target not allowed: {host} resolved to {text}, not an address")
            reason = self._policy.refusal(address, host=host)
            if reason is not None:
                raise TargetNotAllowedError(f"target not allowed: {reason}")
            checked.append(text if "%" in text else str(address))  # a link-local address keeps its zone
        return checked

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in self.checked_addresses(host, port):
            try:  # a numeric host: the socket layer looks nothing up
                return self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address, as socket.create_connection does
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        raise TargetNotAllowedError("target not allowed: notifications are not sent to Unix sockets")


def _address(text: str) -> IPAddress | None:
    return literal_address(text.split("%", 1)[0]) if text else None


#: httpcore's exceptions as httpx's, which have the same names (most specific first).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = tuple(
    (getattr(httpcore, name), getattr(httpx, name))
    for name in (
        "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException", "ConnectError",
        "ReadError", "WriteError", "NetworkError", "UnsupportedProtocol", "LocalProtocolError",
        "RemoteProtocolError", "ProtocolError",
    )
)  # fmt: skip


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class CheckedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore connection pool whose network backend is a
    :class:`CheckedBackend`.  TLS is verified against the certifi roots (or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), for the URL's host name."""

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver = system_resolver) -> None:
        self.backend = CheckedBackend(policy, resolver)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=self.backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream), extensions=answer.extensions
        )

    def close(self) -> None:
        with _as_httpx_errors():
            self._pool.close()
