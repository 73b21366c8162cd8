"""The dashboard's files as the server sends them (issue 20): every page and asset with
a Content-Security-Policy that allows no inline script, the report's one inline style
allowed by its hash, no file outside the list, and client code that never turns data
into markup.  What the pages do is tested in a real browser (tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from decimal import Decimal
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from jobbudget.web import ASSETS
from test_api_dashboard import setup
from test_api_support import Api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
STATIC = resources.files("jobbudget.web").joinpath("static")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api_config() -> dict[str, Any]:
    return {"cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}}


def policy(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_every_page_and_asset_goes_out_with_a_strict_policy(api: Api) -> None:
    for path in ["/", *(f"/ui/{name}" for name in ASSETS if name != "index.html")]:
        response = api.client.get(path)
        assert response.status_code == 200, path
        csp = policy(response.headers["content-security-policy"])
        assert csp["script-src"] == ["'self'"], path  # no unsafe-inline, no unsafe-eval, no CDN
        assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
        assert csp["connect-src"] == ["'self'"] and csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert "'unsafe-inline'" not in csp["style-src"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        expected = ASSETS["index.html" if path == "/" else path.removeprefix("/ui/")]
        assert response.headers["content-type"] == expected
        assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "path",
    ["/ui/index.html", "/ui/nope.js", "/ui/..%2F__init__.py", "/ui/%2e%2e%2fassets.py", "/ui/../assets.py",
     "/ui/app.js%00.css", "/ui/" + "a" * 100, "/ui/APP.JS"],
)  # fmt: skip
def test_nothing_but_the_listed_files_is_served(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code in (404, 422), path
    assert "import " not in response.text and "def " not in response.text


def test_the_pages_hold_no_inline_script_or_style_and_the_code_builds_no_markup() -> None:
    class Check(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names = {name for name, _ in attrs}
            assert not {n for n in names if n.startswith("on")}, (tag, attrs)
            assert "style" not in names, (tag, attrs)
            if tag == "script":
                assert "src" in names, "inline script"
            assert tag != "style", "inline style"

    Check().feed(STATIC.joinpath("index.html").read_text(encoding="utf-8"))
    for name in ASSETS:
        if not name.endswith(".js"):
            continue
        code = STATIC.joinpath(name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "setAttribute(\"style\"", "localStorage", "document.cookie", "?token="):  # fmt: skip
            assert sink not in code, f"{name} uses {sink}"


def test_every_asset_is_in_the_package() -> None:
    listed = {p.name for p in Path(str(STATIC)).iterdir() if p.is_file()}
    assert listed == set(ASSETS)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["jobbudget"]
    for name in ASSETS:
        assert any(fnmatch(f"web/static/{name}", p) for p in patterns), name


def test_the_report_shown_in_the_dashboard_has_only_the_style_the_policy_allows(api: Api) -> None:
    setup(api)
    html = api.get("/v1/reports?tenant=acme&period=2024-01&format=html").text
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    assert len(styles) == 1
    digest = "'sha256-" + base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode() + "'"
    csp = policy(api.client.get("/").headers["content-security-policy"])
    assert digest in csp["style-src"]
    assert " style=" not in html and "<script" not in html  # a style attribute would need unsafe-inline


@pytest.mark.parametrize(
    ("who", "role", "tenant", "write", "admin"),
    [("admin", "admin", None, True, True), ("acme", "tenant", "acme", True, False),
     ("reporter", "reporter", None, False, False), ("acme-reporter", "reporter", "acme", False, False)],
)  # fmt: skip
def test_whoami_tells_the_dashboard_what_a_key_may_do(
    api: Api, who: str, role: str, tenant: str | None, write: bool, admin: bool
) -> None:
    body = api.get("/v1/whoami", who).json()
    assert (body["role"], body["tenant_id"], body["can_write"], body["can_admin"]) == (role, tenant, write, admin)
    assert api.keys[who] not in str(body) and set(body) == {
        "id",
        "name",
        "role",
        "tenant_id",
        "below",
        "can_write",
        "can_admin",
        "now",
    }


def test_whoami_needs_a_key(api: Api) -> None:
    assert api.client.get("/v1/whoami").status_code == 401
    assert api.client.get("/v1/whoami", headers={"Authorization": "Bearer jb_nope_nope"}).status_code == 401


def test_trends_list_cost_by_queue_adding_up_to_the_total(api: Api) -> None:
    ids = setup(api)
    trends = api.get(f"/v1/budgets/{ids['acme']}/trends?days=30").json()
    queues = {q["name"]: q for q in trends["queues"]}
    assert list(queues) == ["q1", "q2"]  # most expensive first
    assert sum(Decimal(q["cost"]) for q in queues.values()) == Decimal(trends["total"])
    assert queues["q2"]["cost"] == "20.000000000" and queues["q2"]["jobs"] == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"tenant_id": "x" * 80, "amount": "10"}, "tenant_id", "tenant_id: must be at most 50 characters (got 80)"),
        ({"tenant_id": "acme"}, "amount", "amount: is required"),
        (
            {"tenant_id": "acme", "amount": "ten"},
            "amount",
            "amount: must be a decimal number such as 12.50 (got 'ten')",
        ),
        ({"tenant_id": "acme", "amount": "2e9"}, "amount", "amount: must be at most 1,000,000,000 (got 2000000000)"),
    ],
)
def test_the_forms_messages_are_in_the_users_words(api: Api, body: dict[str, Any], field: str, message: str) -> None:
    """What the dashboard shows next to a field is the API's message: no Pydantic
    jargon ("items after validation"), no exponent form in a limit."""
    error = api.post("/v1/budgets", json=body).json()["error"]
    assert (error["field"], error["message"]) == (field, message)
    assert api.get("/v1/budgets").json() == []  # nothing stored
