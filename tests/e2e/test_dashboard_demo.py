"""Issue 20's "done when", as a new user does it: ``jobbudget demo``, then ``jobbudget
serve`` on the demo database with the ``--at`` the demo prints, sign in with the key it
prints, see the demo's budgets, charts and alerts, and watch a job change them live.
The screenshots in the README are taken here, so they show what the code draws now."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from .browser import chromium, sign_in
from .server import LiveServer, jobbudget_command

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SHOTS = ("dashboard-overview.png", "dashboard-budget.png", "dashboard-alerts.png", "dashboard-phone.png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


#: Pixels that may differ before a picture is replaced: antialiasing varies a little from
#: run to run, and Chromium's PNG bytes vary even for the same pixels.
CHANGED_PIXELS = 200
_DIFFERENT = """async ([old, fresh]) => {
  const load = async (b64) => { const i = new Image(); i.src = `data:image/png;base64,${b64}`; await i.decode(); return i; };
  const [a, b] = [await load(old), await load(fresh)];
  if (a.width !== b.width || a.height !== b.height) return Infinity;
  const pixels = (img) => { const c = new OffscreenCanvas(img.width, img.height); const g = c.getContext('2d');
                            g.drawImage(img, 0, 0); return g.getImageData(0, 0, img.width, img.height).data; };
  const [p, q] = [pixels(a), pixels(b)];
  let n = 0;
  for (let i = 0; i < p.length; i += 4) if (Math.abs(p[i] - q[i]) + Math.abs(p[i+1] - q[i+1]) + Math.abs(p[i+2] - q[i+2]) > 24) n++;
  return n;
}"""


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Take the picture, and replace the one in docs/images when it shows something else."""
    IMAGES.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover state in the picture
    fresh = page.screenshot(full_page=full_page, animations="disabled", caret="hide")
    path = IMAGES / name
    if path.exists():
        old = base64.b64encode(path.read_bytes()).decode()
        changed = page.evaluate(_DIFFERENT, [old, base64.b64encode(fresh).decode()])
        if changed <= CHANGED_PIXELS:
            return
    path.write_bytes(fresh)


def test_the_demo_in_the_dashboard(tmp_path: Path, start_server: Any, browser: Browser) -> None:
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    done = subprocess.run(
        [jobbudget_command(), "demo", "--database-url", database, "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    demo = json.loads(done.stdout)
    month_end = demo["month"]["end"]
    server: LiveServer = start_server(database_url=database, args=["--at", f"{month_end}T12:00:00Z"])
    assert f"Dashboard: {server.url}/" in server.log()  # the address serve prints

    phone = browser.new_page(viewport={"width": 390, "height": 760}, is_mobile=True)  # the demo as it ends
    sign_in(phone, server, demo["dashboard_key"])
    expect(phone.locator("#live")).to_have_text("● Live")
    shoot(phone, "dashboard-phone.png")
    phone.close()

    page = browser.new_page(viewport={"width": 1280, "height": 820})
    sign_in(page, server, demo["dashboard_key"])
    rows = page.locator("#budgets tbody tr")
    expect(rows).to_have_count(len(demo["budgets"]))
    expect(page.locator("#live")).to_have_text("● Live")
    states = {b["action"]["type"] for b in demo["budgets"]}
    expect(page.locator("#budgets .badge", has_text="Block").first).to_be_visible()
    assert "block" in states
    alerts_card = page.locator(".card", has_text="Active alerts").locator("b")
    assert int(alerts_card.inner_text()) > 0
    shoot(page, "dashboard-overview.png")

    top = page.locator("#budgets tbody tr", has_text="Warning").first
    spend_before = top.locator("td[data-col=spend]").inner_text()
    tenant = top.locator("td a").inner_text()
    with server.client(demo["dashboard_key"]) as client:
        job = {"job_id": "dashboard-live", "tenant_id": tenant, "queue_name": "q_1w", "cpu_time": 36_000_000,
               "memory_mb_seconds": 0}  # fmt: skip
        assert client.post("/v1/jobs", json=job).status_code == 200
    expect(top.locator("td[data-col=spend]")).not_to_have_text(spend_before, timeout=5000)  # live, no reload

    page.locator("#budgets tbody tr", has_text="Block").first.locator("a").click()
    expect(page.locator("#period-chart svg[role=img]")).to_be_visible()
    expect(page.locator("#components tbody tr").first).to_be_visible()
    expect(page.locator("#live")).to_have_text("● Live")
    shoot(page, "dashboard-budget.png", full_page=True)

    page.goto(f"{server.url}/#/alerts")
    expect(page.locator("#alerts tbody tr").first).to_be_visible()
    shoot(page, "dashboard-alerts.png")
    page.close()


def test_the_readme_shows_every_screenshot() -> None:
    readme = (IMAGES.parents[1] / "README.md").read_text(encoding="utf-8")
    for name in SHOTS:
        assert f"docs/images/{name}" in readme, name
        assert (IMAGES / name).stat().st_size > 10_000, name
