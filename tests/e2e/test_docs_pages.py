"""``/docs`` (Swagger UI) and ``/redoc`` work offline: every script, style sheet, icon
and schema their HTML refers to is served by the server itself, with the right
content type, and nothing points to another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from .server import LiveServer

#: Attributes that make a browser fetch something (``spec-url``: ReDoc's schema).
FETCHED = {"src", "href", "spec-url"}
#: Swagger UI is given its schema in the inline script: ``url: '/openapi.json'``.
SCRIPT_URL = re.compile(r"""\burl:\s*['"]([^'"]+)['"]""")
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


class _Fetched(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in FETCHED and value]


def _fetched_by(html: str) -> list[str]:
    parser = _Fetched()
    parser.feed(html)
    return parser.urls + SCRIPT_URL.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_of_the_page_comes_from_this_server(live_server: LiveServer, page: str) -> None:
    response = httpx.get(live_server.url + page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert not re.findall(r"(?:https?:)?//[\w.-]+", response.text), "the page names another host"
    urls = _fetched_by(response.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith("openapi.json") for u in urls), urls
    for url in urls:
        absolute = urljoin(live_server.url + page, url)
        assert urlsplit(absolute).netloc == urlsplit(live_server.url).netloc, f"{url} is off-host"
        asset = httpx.get(absolute)
        assert asset.status_code == 200, (url, asset.status_code)
        suffix = "." + urlsplit(absolute).path.rsplit(".", 1)[-1]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), (url, asset.headers["content-type"])
        assert asset.content, url
