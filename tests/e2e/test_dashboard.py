"""The web dashboard (issue 20) in headless Chromium against a real ``jobbudget serve``:
sign-in, budgets, a budget's charts, live updates over the WebSocket without a reload
(and a lost connection coming back), alerts, controls with the API's messages next to
the field, reports, and what a tenant's or a reporter's key never sees or does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .browser import chromium, contrast_failures, sign_in
from .clients import job
from .server import LiveServer

XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert not problems, problems  # no script error, no CSP violation by our own code


def key_for(server: LiveServer, role: str, tenant: str | None = None, name: str = "") -> str:
    args = ["apikey", "create", "--role", role, "--json"]
    args += ["--tenant", tenant] if tenant else []
    args += ["--name", name] if name else []
    made: dict[str, Any] = json.loads(server.cli(*args))
    return str(made["key"])


def budget(client: httpx.Client, tenant: str, amount: str, queue: str = "ml", **extra: Any) -> str:
    response = client.post("/v1/budgets", json={"tenant_id": tenant, "amount": amount, "queue_name": queue, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def meter(client: httpx.Client, tenant: str, job_id: str, dollars: int) -> Decimal:
    """A job of ``dollars`` (default prices: 100,000 CPU-seconds cost 1 USD plus a few
    nano-dollars of memory); its exact cost as the API priced it."""
    response = client.post("/v1/jobs", json=job(tenant, job_id, cpu_time=dollars * 100_000))
    assert response.status_code == 200, response.text
    return Decimal(response.json()["jobs"][0]["total_cost"])


def row(page: Page, budget_id: str) -> Any:
    return page.locator(f'#budgets tr[data-budget="{budget_id}"]')


def test_sign_in_keeps_the_key_in_the_tab_only(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        acme = budget(admin, "dash-acme", "100")
        globex = budget(admin, "dash-globex", "50")
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, live_server, live_server.admin_key)
    expect(row(page, acme)).to_contain_text("dash-acme")
    expect(row(page, globex)).to_contain_text("dash-globex")  # an admin key sees every tenant
    expect(page.locator("#live")).to_have_text("● Live")
    key = live_server.admin_key
    assert key not in page.url and all(key not in url and "token" not in url for url in sockets), sockets
    assert page.evaluate("document.cookie") == "" and page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.getItem('jobbudget.key')") == key
    assert key not in live_server.log()  # neither the page, its files, the API calls nor the socket logged it
    other_tab = page.context.new_page()  # sessionStorage is per tab
    other_tab.goto(live_server.url + "/")
    expect(other_tab.locator("#signin")).to_be_visible()
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_wrong_key_is_told_next_to_the_field(live_server: LiveServer, page: Page) -> None:
    page.goto(live_server.url + "/")
    page.fill("#f-key", "jb_nope_nope")
    page.click("#signin button[type=submit]")
    expect(page.locator('[data-field="key"] .error')).to_have_text("That key is unknown or revoked.")
    expect(page.locator("#f-key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#nav")).to_be_hidden()


def test_states_change_live_without_a_reload(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        watched = budget(admin, "dash-live", "10")
        sign_in(page, live_server, live_server.admin_key)
        expect(row(page, watched).locator(".badge")).to_have_text("OK")
        expect(page.locator("#live")).to_have_text("● Live")
        page.evaluate("window.__same_page = true")
        delays = []
        for job_id, dollars, state in (("l1", 8, "Warning"), ("l2", 1, "Throttle"), ("l3", 2, "Block")):
            started = time.monotonic()
            meter(admin, "dash-live", job_id, dollars)
            expect(row(page, watched).locator(".badge")).to_have_text(state, timeout=5000)
            delays.append(time.monotonic() - started)
        expect(row(page, watched)).to_contain_text("11.00")
    assert page.evaluate("window.__same_page") is True  # no reload
    assert max(delays) < 3.0, delays  # pushed within about a second (the socket's watch polls every 0.5 s)
    print(f"job metered -> state shown in the browser: {', '.join(f'{d:.2f} s' for d in delays)}")


def test_a_budget_page_draws_its_period_forecast_and_costs(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        shown = budget(admin, "dash-page", "40", queue="")
        for i in range(3):
            response = admin.post(
                "/v1/jobs", json={**job("dash-page", f"p{i}", cpu_time=500_000), "queue_name": f"q{i}"}
            )
            assert response.status_code == 200
        sign_in(page, live_server, live_server.admin_key, f"#/budgets/{shown}")
        expect(page.locator("h1")).to_have_text("dash-page: all queues")
        expect(page.locator("#budget-spend")).to_contain_text("15.00 USD")
        chart = page.locator("#period-chart svg[role=img]")
        expect(chart.locator("title")).to_have_text("Spend over the period")
        assert chart.locator("path.spend").count() == 1 and chart.locator("path.pace").count() == 1
        expect(page.locator("#queues tbody tr")).to_have_count(3)
        expect(page.locator("#components")).to_contain_text("CPU")
        expect(page.locator("#forecast")).to_contain_text("Forecast:")
        meter(admin, "dash-page", "p9", 5)  # live on the budget page too
        expect(page.locator("#budget-spend")).to_contain_text("20.00 USD", timeout=5000)


def test_alerts_are_listed_with_their_deliveries_and_acknowledged(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        channel = {"type": "webhook", "target": "https://hooks.invalid/dash"}
        budget(admin, "dash-alert", "10", notifications=[channel])
        meter(admin, "dash-alert", "a1", 8)
        sign_in(page, live_server, live_server.admin_key, "#/alerts")
        mine = page.locator("#alerts tbody tr", has_text="dash-alert")
        expect(mine).to_have_count(1)
        expect(mine).to_contain_text("Warning")
        expect(mine).to_contain_text("webhook https://hooks.invalid/***")  # delivery status per channel, redacted
        expect(page.locator("#live")).to_have_text("● Live")
        meter(admin, "dash-alert", "a2", 1)  # 9 of 10: a throttle alert appears without a reload
        expect(page.locator("#alerts tbody tr", has_text="dash-alert")).to_have_count(2, timeout=5000)
        mine = page.locator("#alerts tbody tr", has_text="dash-alert").filter(has_text="Warning")
        mine.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#ack-result")).to_contain_text("acknowledged")
        expect(page.locator("#alerts tbody tr", has_text="dash-alert")).to_have_count(1)  # the warning left the list
        page.get_by_role("button", name="History").click()
        acked = page.locator("#alerts tbody tr", has_text="dash-alert").filter(has_text="Warning")
        expect(acked).to_contain_text("acknowledged by")
        listed = {a["event"]["type"]: a for a in admin.get("/v1/alerts", params={"tenant": "dash-alert"}).json()}
        assert listed["warning"]["acknowledged_at"] is not None and listed["throttle"]["acknowledged_at"] is None


def test_controls_show_the_apis_message_next_to_the_field_and_store_nothing(
    live_server: LiveServer, page: Page
) -> None:
    sign_in(page, live_server, live_server.admin_key, "#/budgets/new")
    page.click("#budget-form button[type=submit]")  # empty: every missing field is named at once
    expect(page.locator('[data-field="tenant_id"] .error')).to_contain_text("enter the tenant")
    expect(page.locator('[data-field="amount"] .error')).to_contain_text("enter an amount")
    page.fill("#f-tenant_id", "dash-form")
    page.fill("#f-amount", "-5")
    page.click("#budget-form button[type=submit]")
    error = page.locator('[data-field="amount"] .error')
    expect(error).to_have_text("amount: must be greater than 0 (got -5)")
    expect(page.locator("#f-amount")).to_be_focused()
    page.fill("#f-amount", "25")
    page.fill("#f-throttle_threshold", "0.5")  # below the warning threshold
    page.click("#budget-form button[type=submit]")
    expect(page.locator('[data-field="throttle_threshold"] .error')).to_contain_text(
        "must be at least warning_threshold"
    )
    expect(error).to_have_text("")
    with live_server.client() as admin:
        assert admin.get("/v1/budgets", params={"tenant": "dash-form"}).json() == []  # nothing stored
        page.fill("#f-throttle_threshold", "0.9")
        page.click("#budget-form button[type=submit]")
        expect(page.locator("h1")).to_have_text("dash-form: all queues")
        made = admin.get("/v1/budgets", params={"tenant": "dash-form"}).json()
        assert [b["amount"] for b in made] == ["25"]
        page.get_by_role("link", name="Edit").click()
        expect(page.locator("#f-tenant_id")).to_have_attribute("readonly", "")  # a budget stays with its tenant
        page.fill("#f-amount", "30.50")
        page.click("#budget-form button[type=submit]")
        expect(page.locator("h1")).to_have_text("dash-form: all queues")
        assert Decimal(admin.get(f"/v1/budgets/{made[0]['id']}").json()["amount"]) == Decimal("30.50")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#deactivate")
        expect(page.locator("h1")).to_have_text("Budgets")
        assert admin.get(f"/v1/budgets/{made[0]['id']}").json()["active"] is False


def test_a_test_notification_is_sent_from_the_budget_page(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        shown = budget(
            admin, "dash-notify", "10", notifications=[{"type": "webhook", "target": "https://hooks.invalid/t"}]
        )
    sign_in(page, live_server, live_server.admin_key, f"#/budgets/{shown}")
    page.get_by_role("button", name="Send a test").click()
    # hooks.invalid never resolves: the server says so, and the page shows it
    expect(page.locator("#channel-result")).to_contain_text("The test failed:")


def test_reports_open_in_a_sandboxed_frame_and_download(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        budget(admin, "dash-report", "10")
        cost = meter(admin, "dash-report", "r1", 3)
    sign_in(page, live_server, live_server.admin_key, "#/reports")
    page.fill("#f-tenant", "dash-report")
    page.click("#report-html")
    frame = page.frame_locator("#report-frame")
    expect(frame.locator("h1")).to_have_text("Budget report: dash-report")
    expect(page.locator("#report-frame")).to_have_attribute("sandbox", "")
    with page.expect_download() as csv_download:
        page.click("#report-csv")
    text = open(csv_download.value.path(), encoding="utf-8").read()  # noqa: SIM115 - a download's file
    assert "dash-report" in text or "ml" in text
    with page.expect_download() as json_download:
        page.click("#report-json")
    report = json.loads(open(json_download.value.path(), encoding="utf-8").read())  # noqa: SIM115
    assert Decimal(report["total_spend"]) == cost
    page.fill("#f-period", "2026-13")
    page.click("#report-html")
    expect(page.locator('[data-field="period"] .error')).to_contain_text("period")


def test_a_tenant_key_never_sees_another_tenant(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        mine = budget(admin, "dash-t1", "10")
        theirs = budget(
            admin, "dash-t2", "10", notifications=[{"type": "webhook", "target": "https://hooks.invalid/x"}]
        )
        meter(admin, "dash-t2", "secret-job", 9)  # an alert of the other tenant
    key = key_for(live_server, "tenant", "dash-t1", name="t1 key")
    sign_in(page, live_server, key)
    expect(row(page, mine)).to_be_visible()
    expect(page.locator("#live")).to_have_text("● Live")
    content = page.content()
    assert "dash-t2" not in content and theirs not in content
    page.goto(f"{live_server.url}/#/budgets/{theirs}")
    expect(page.locator("main h1")).to_have_text("Not found")
    expect(page.locator("main")).to_contain_text("budget not found")
    assert "dash-t2" not in page.content()
    page.goto(f"{live_server.url}/#/alerts?all=1")
    expect(page.locator("main h1")).to_have_text("Alerts")
    assert "dash-t2" not in page.content()
    page.goto(f"{live_server.url}/#/reports")
    expect(page.locator("#f-tenant option")).to_have_count(1)
    expect(page.locator("#f-tenant option")).to_have_text("dash-t1")
    page.goto(f"{live_server.url}/#/budgets/new")
    page.fill("#f-tenant_id", "dash-t2")
    page.fill("#f-amount", "1000")
    page.click("#budget-form button[type=submit]")
    expect(page.locator('[data-field="tenant_id"] .error')).to_have_text(
        "a tenant key may not budget for tenant 'dash-t2'"
    )
    with live_server.client() as admin:
        assert len(admin.get("/v1/budgets", params={"tenant": "dash-t2"}).json()) == 1


def test_a_reporter_key_reads_only(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        shown = budget(admin, "dash-read", "10")
        meter(admin, "dash-read", "r1", 9)
    sign_in(page, live_server, key_for(live_server, "reporter", name="finance"))
    expect(page.locator("#who")).to_contain_text("read only")
    expect(page.locator("#nav-new")).to_be_hidden()
    page.goto(f"{live_server.url}/#/budgets/{shown}")
    expect(page.locator("h1")).to_have_text("dash-read: ml")
    assert page.get_by_role("link", name="Edit").count() == 0 and page.locator("#deactivate").count() == 0
    page.goto(f"{live_server.url}/#/budgets/{shown}/edit")  # typed by hand: no form to fill in vain
    expect(page.locator("main h1")).to_have_text("Read only")
    page.goto(f"{live_server.url}/#/alerts")
    expect(page.locator("#alerts tbody tr", has_text="dash-read").first).to_be_visible()
    assert page.get_by_role("button", name="Acknowledge").count() == 0


def test_tenant_supplied_text_is_shown_not_run(live_server: LiveServer, page: Page) -> None:
    with live_server.client() as admin:
        hostile = budget(
            admin, XSS, "10", queue="<script>window.__xss=2</script>", labels={"team": '"><svg onload=window.__xss=3>'}
        )
        meter(admin, XSS, "x1", 0)
    key = key_for(live_server, "admin", name='<b onmouseover="window.__xss=4">me</b>')
    sign_in(page, live_server, key)
    expect(row(page, hostile)).to_contain_text(XSS)
    expect(page.locator("#who")).to_contain_text('<b onmouseover="window.__xss=4">me</b>')
    page.goto(f"{live_server.url}/#/budgets/{hostile}")
    expect(page.locator("h1")).to_contain_text("<script>window.__xss=2</script>")
    page.goto(f"{live_server.url}/#/reports")
    page.fill("#f-tenant", XSS)
    page.click("#report-html")
    expect(page.frame_locator("#report-frame").locator("h1")).to_contain_text(XSS)
    assert page.evaluate("window.__xss") is None


def test_the_policy_stops_an_inline_script_that_got_in_anyway(live_server: LiveServer, browser: Browser) -> None:
    page = browser.new_page()
    try:
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(live_server.url + "/")
        ran = page.evaluate(
            """() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
                       document.body.append(s); return window.__inline === 1; }"""
        )
        assert ran is False
        expect(page.locator("#signin")).to_be_visible()
        assert any("script-src" in v for v in violations), violations
    finally:
        page.close()


def test_a_lost_connection_is_shown_and_comes_back(start_server: Any, page: Page) -> None:
    server: LiveServer = start_server()
    with server.client() as admin:
        watched = budget(admin, "dash-restart", "10")
    sign_in(page, server, server.admin_key)
    expect(page.locator("#live")).to_have_text("● Live")
    server.kill()
    expect(page.locator("#live")).to_have_text("Connection lost: reconnecting…", timeout=5000)
    server.relaunch()
    expect(page.locator("#live")).to_have_text("● Live", timeout=15000)
    with server.client() as admin:
        meter(admin, "dash-restart", "after", 9)
    expect(row(page, watched).locator(".badge")).to_have_text("Throttle", timeout=5000)


def test_keyboard_phone_width_labels_and_contrast(live_server: LiveServer, browser: Browser) -> None:
    with live_server.client() as admin:
        budget(admin, "dash-a11y", "10")
        meter(admin, "dash-a11y", "a1", 8)
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, live_server.admin_key)
        expect(page.locator("#budgets")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # only the table scrolls, in its box
        page.focus(".skip")  # the first stop: "Skip to content", then the header's links
        expect(page.locator(".skip")).to_be_in_viewport()
        seen = set()
        for _ in range(8):
            page.keyboard.press("Tab")
            seen.add(page.evaluate("document.activeElement.textContent.trim()"))
        assert {"Alerts", "Reports", "New budget"} <= seen, seen
        for path in ("#/", "#/budgets/new", "#/reports", "#/alerts?all=1"):
            page.goto(f"{live_server.url}/{path}")
            page.wait_for_selector("main h1")
            unlabelled = page.evaluate(
                """() => [...document.querySelectorAll('input, select')].filter(
                     (c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')).map((c) => c.outerHTML)"""
            )
            assert unlabelled == [], (path, unlabelled)
            failures = contrast_failures(page, "main *, header *")
            assert failures == [], (path, failures)
    finally:
        context.close()


def test_what_the_page_shows_stays_true_as_it_changes(live_server: LiveServer, page: Page) -> None:
    """Found by review: a live update must not swap the amount in force for the stored
    one, nor turn an idle budget (no period in force) into OK; a slow page must not
    replace the page the reader moved on to; a malformed address is not found."""
    with live_server.client() as admin:
        raised = budget(admin, "dash-true", "10")
        response = admin.post(
            f"/v1/budgets/{raised}/raises",
            json={"amount": "20", "expires_at": "2099-01-01T00:00:00Z", "approver": "cfo", "reason": "launch"},
        )
        assert response.status_code in (200, 201), response.text
        later = {"type": "custom", "start_date": "2099-01-01", "end_date": "2099-01-31"}
        idle = budget(admin, "dash-true", "5", queue="later", period=later)
        sign_in(page, live_server, live_server.admin_key)
        expect(row(page, raised)).to_contain_text("30.00 USD")
        expect(row(page, idle).locator(".badge")).to_have_text("Idle")
        expect(page.locator("#live")).to_have_text("● Live")
        meter(admin, "dash-true", "t1", 24)  # 24 of 30: Warning, against the amount in force
    expect(row(page, raised).locator(".badge")).to_have_text("Warning", timeout=5000)
    expect(row(page, raised)).to_contain_text("30.00 USD")
    expect(row(page, idle).locator(".badge")).to_have_text("Idle")
    page.evaluate(
        """() => { const real = window.fetch; window.fetch = (url, options) => String(url).includes('/v1/dashboard')
             ? new Promise((ok) => setTimeout(() => ok(real(url, options)), 1500)) : real(url, options); }"""
    )
    page.evaluate("location.hash = '#/reports?slow'")
    page.evaluate("location.hash = '#/'")  # slow: its data comes in 1.5 s
    page.evaluate("location.hash = '#/alerts'")  # the reader moves on at once
    page.wait_for_timeout(2500)
    expect(page.locator("main h1")).to_have_text("Alerts")
    page.goto(f"{live_server.url}/#/budgets/%E0%A4%A")
    expect(page.locator("main h1")).to_have_text("Not found")


def test_money_and_percentages_never_in_exponent_form(live_server: LiveServer, page: Page) -> None:
    page.goto(f"{live_server.url}/")
    shown = page.evaluate(
        """async () => { const { money, percent } = await import('/ui/dom.js');
             return [money('1E+3'), money('0E-9'), money('1.5e-7'), money('12345678901234567890123.456'),
                     money('-0.005'), money('0.004'), money('NaN'), money('abc'), percent('1e20'), percent('0.953'),
                     money('0.125'), money('0.135'), money('0.1250001'), money('2.675000000'), money('-1234.565')]; }"""
    )
    assert shown == ["1,000.00", "0.00", "< 0.01", "12,345,678,901,234,567,890,123.46", "> -0.01", "< 0.01", "–", "–",
                     "> 999,999 %", "95.3 %", "0.12", "0.14", "0.13", "2.68", "-1,234.56"]  # fmt: skip
    from jobbudget.domain.money import display_money  # the server's own rounding, for the same figures

    for text, seen in zip(["0.125", "0.135", "0.1250001", "2.675000000", "-1234.565"], shown[10:], strict=True):
        assert display_money(Decimal(text)) == seen


def test_a_budget_is_made_with_its_notification_channel(live_server: LiveServer, page: Page) -> None:
    sign_in(page, live_server, live_server.admin_key, "#/budgets/new")
    page.fill("#f-tenant_id", "dash-channel")
    page.fill("#f-amount", "10")
    page.fill("#f-warning_threshold", "75")  # a percentage where a fraction belongs
    page.select_option("#f-notifications-type", "webhook")
    page.fill("#f-notifications-target", "not a url")
    page.click("#budget-form button[type=submit]")
    expect(page.locator('[data-field="warning_threshold"] .error')).to_contain_text("0.75 is 75 %")
    page.fill("#f-warning_threshold", "0.75")
    page.click("#budget-form button[type=submit]")
    expect(page.locator('[data-field="notifications.target"] .error')).to_contain_text("must be an http(s) URL")
    page.fill("#f-notifications-target", "https://hooks.invalid/new")
    page.click("#budget-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("dash-channel: all queues")
    expect(page.locator("main")).to_contain_text("webhook → https://hooks.invalid/***")
    expect(page.get_by_role("button", name="Send a test")).to_be_visible()
