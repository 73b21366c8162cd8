"""What an anonymous client can cost the real server: a request without a valid key is
answered 401 from its headers, before its body is read; an oversized body 413 from its
Content-Length; and while eight clients upload 16 MiB bodies with no key, a real
check is answered as fast as usual."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from .server import LiveServer

SIXTEEN_MIB = 16 * 1024 * 1024


def first_reply(server: LiveServer, headers: dict[str, str], send_body: bool = False) -> tuple[int, float]:
    """Send a POST's headers (and, with ``send_body``, a 16 MiB body); the status of
    the reply and the seconds until it came."""
    lines = ["POST /v1/jobs HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if send_body:
            chunk = b"[" + b"1," * (1 << 20)
            sent = 0
            try:
                while sent < SIXTEEN_MIB:
                    conn.sendall(chunk)
                    sent += len(chunk)
            except OSError:  # the server answered and closed: it did not want the body
                pass
        reply = conn.recv(4096).decode("latin-1")
        took = time.monotonic() - started
    return int(reply.split(" ", 2)[1]), took


def test_no_key_is_answered_before_the_body_is_read(live_server: LiveServer) -> None:
    length = {"Content-Length": str(SIXTEEN_MIB)}
    for headers in (
        length,
        {**length, "Authorization": "Bearer jb_aaaaaaaa_" + "a" * 43},
        {**length, "Authorization": "Basic x"},
    ):
        status, took = first_reply(live_server, headers)  # the body is never sent
        assert status == 401 and took < 0.5, (headers, status, took)
    too_big = {"Content-Length": str(SIXTEEN_MIB + 1), "Authorization": f"Bearer {live_server.admin_key}"}
    status, took = first_reply(live_server, too_big)
    assert status == 413 and took < 0.5


def test_anonymous_uploads_do_not_slow_real_requests(live_server: LiveServer) -> None:
    def check() -> float:
        with live_server.client() as client:
            started = time.monotonic()
            assert client.post("/v1/check", json={"tenant_id": "quiet"}).status_code == 200
            return time.monotonic() - started

    baseline = min(check() for _ in range(5))
    statuses: list[int] = []
    uploads = [
        threading.Thread(
            target=lambda: statuses.append(first_reply(live_server, {"Content-Length": str(SIXTEEN_MIB)}, True)[0])
        )
        for _ in range(8)
    ]
    for thread in uploads:
        thread.start()
    during = [check() for _ in range(10)]
    for thread in uploads:
        thread.join(timeout=60)
    assert statuses == [401] * 8
    assert max(during) < max(0.25, 20 * baseline), (baseline, during)
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200
