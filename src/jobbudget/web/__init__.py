"""The web dashboard: a small client (HTML, CSS and ES modules in ``static/``, no build
step, no CDN) served by ``jobbudget serve`` at ``/``, on the HTTP API and WebSocket.

:func:`install_dashboard` adds ``GET /`` and ``GET /ui/{asset}`` to an app.  Every page
and asset goes out with a Content-Security-Policy that allows scripts and styles from
this origin only (no ``unsafe-inline``, no ``eval``), plus the one inline ``<style>`` of
the HTML report (allowed by its hash, so the report can be shown in a sandboxed frame),
and headers that keep the page out of other sites' frames and its address out of
Referer headers.  The key never reaches these routes: the client keeps it in the tab's
``sessionStorage`` and sends it in ``Authorization`` headers (and as the WebSocket's
first message), so no cookie, no CSRF."""

from __future__ import annotations

from .assets import ASSETS, install_dashboard, security_headers

__all__ = ["ASSETS", "install_dashboard", "security_headers"]
