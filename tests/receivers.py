"""Real receivers for the delivery tests: an HTTP server and an SMTP server (aiosmtpd),
both on 127.0.0.1, that record what arrives and answer as a test scripts them."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from jobbudget.domain.outbound import OutboundPolicy, literal_address

__all__ = [
    "LOCAL",
    "Mailbox",
    "Receiver",
    "Reply",
    "Request",
    "free_port",
    "http_receivers",
    "loopback_names",
    "self_signed",
    "smtp_server",
]

#: The outbound policy that lets a sender reach these receivers: 127.0.0.1 allowed on
#: purpose (the default refuses loopback addresses).
LOCAL = OutboundPolicy.of(["127.0.0.1/32"])

EVENT_HEADER = "webhook-id"  # Standard Webhooks: the event (or digest) id


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (until someone binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    echo: bool = False  # answer with the request's path and headers, as a careless server might


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.perf_counter() on arrival

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers.get(EVENT_HEADER, "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout) and left is expected


class Receiver:
    """An HTTP server on 127.0.0.1 answering POSTs: first the scripted replies in order,
    then ``default``.  ``requests`` holds everything that arrived.  With ``tls`` (a
    server-side context) it speaks HTTPS."""

    def __init__(self, port: int = 0, default: Reply | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.default = default or Reply()
        self.script: list[Reply] = []
        self.requests: list[Request] = []
        self.on_request: Callable[[Request], None] | None = None  # runs before the answer
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = int(self._httpd.server_address[1])
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def then(self, *replies: Reply) -> Receiver:
        with self._lock:
            self.script.extend(replies)
        return self

    def event_ids(self) -> Counter[str]:
        """How often each event id (the ``webhook-id`` header) arrived."""
        with self._lock:
            return Counter(r.event_id for r in self.requests)

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` requests have arrived (False on timeout)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _record(self, request: Request) -> Reply:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.path, headers, body, time.perf_counter())
                reply = receiver._record(request)
                if receiver.on_request is not None:
                    receiver.on_request(request)
                if reply.delay:
                    receiver._stop.wait(reply.delay)
                answer = f"{self.path} {headers}".encode() if reply.echo else b"ok"
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def http_receivers() -> Iterator[Callable[..., Receiver]]:
    """Start receivers with ``start(port=0, default=Reply(...), tls=None)``; all stop at the end."""
    running: list[Receiver] = []

    def start(port: int = 0, default: Reply | None = None, tls: ssl.SSLContext | None = None) -> Receiver:
        receiver = Receiver(port, default, tls)
        running.append(receiver)
        return receiver

    try:
        yield start
    finally:
        for receiver in running:
            receiver.close()


@dataclass
class Mailbox:
    """aiosmtpd handler keeping the messages it accepts; with ``refusal`` (a reply such
    as ``"550 <{address}> unknown"``) it rejects every recipient, repeating the address
    as many servers do."""

    password: str | None = None
    refusal: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refusal:
            return self.refusal.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """Run ``mailbox`` as an SMTP server on 127.0.0.1; yields its port."""
    port = free_port()
    options: dict[str, Any] = {"authenticator": mailbox.authenticate, "auth_require_tls": False}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def loopback_names() -> list[str]:
    """Names of this machine (its host name, /etc/hosts) that resolve to loopback only."""
    candidates = {socket.gethostname()}
    try:
        for line in Path("/etc/hosts").read_text(encoding="utf-8").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) > 1 and fields[0].startswith("127."):
                candidates.update(fields[1:])
    except OSError:
        pass
    found = []
    for name in sorted(candidates):
        if name == "localhost" or name.endswith(".localhost") or literal_address(name) is not None:
            continue  # refused before any lookup: not what this test is about
        try:
            answers = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if answers and all(ipaddress.ip_address(a).is_loopback for a in answers):
            found.append(name)
    return found


def self_signed(folder: Path, subject_alt_name: str) -> tuple[Path, Path]:
    """A one-day self-signed certificate and its key in ``folder``, for ``subject_alt_name``
    (``DNS:hooks.example.test``, ``IP:127.0.0.1``); skips the test without openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    common_name = subject_alt_name.partition(":")[2]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={common_name}",
         "-addext", f"subjectAltName={subject_alt_name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
