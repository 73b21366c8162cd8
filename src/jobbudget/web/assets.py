"""Serving the dashboard's files with their security headers."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources
from pathlib import PurePath
from typing import Annotated

from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse, Response

from ..api.errors import error_body
from ..render.html import REPORT_CSS

__all__ = ["ASSETS", "content_security_policy", "install_dashboard", "security_headers"]

_MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: The files of ``static/`` a browser may fetch (every file there), with their media types.
ASSETS = {
    f.name: _MEDIA[PurePath(f.name).suffix]
    for f in resources.files(__package__).joinpath("static").iterdir()
    if f.is_file() and PurePath(f.name).suffix in _MEDIA
}


def _style_hash(css: str) -> str:
    digest = hashlib.sha256(css.encode()).digest()  # the exact text between <style> and </style>
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@cache
def content_security_policy() -> str:
    """Scripts, styles, images and connections from this origin only (the WebSocket
    included); the HTML report's inline style by its hash; no plugins, no framing, no
    forms posted elsewhere."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' {_style_hash(REPORT_CSS)}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-src 'self'",
            "child-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        )
    )


def security_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-cache",
    }


@cache
def _read(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _asset(name: str) -> Response:
    return Response(_read(name), media_type=ASSETS[name], headers=security_headers())


def install_dashboard(app: FastAPI) -> None:
    """``GET /`` (the dashboard) and ``GET /ui/{asset}`` (its files), no key needed:
    they hold no data; every datum comes from ``/v1`` with the key."""

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return _asset("index.html")

    @app.get("/ui/{name}", include_in_schema=False)
    async def asset(name: Annotated[str, Path(max_length=40)]) -> Response:
        if name not in ASSETS or name == "index.html":
            return JSONResponse(error_body("NOT_FOUND", "no such file"), status_code=404, headers=security_headers())
        return _asset(name)
