"""``/v1/ws``: live budget status with tenant isolation, and the key by header, query
parameter or first message (TestClient WebSocket)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.api import live, live_auth, live_hub
from jobbudget.api.app import create_app
from jobbudget.storage.memory import MemoryStore
from private_servers import wait_until


@pytest.fixture
def setup(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(live, "MIN_PUSH_SECONDS", 0.0)
    monkeypatch.setattr(live_hub, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(live_hub, "REAUTH_SECONDS", 0.05)
    service = BudgetService(
        Config(cost_model={"cpu_time_weight": "0.0001", "base_job_weight": "0"}), clock=clock, store=MemoryStore()
    )
    acme = service.create_budget(Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly")))
    globex = service.create_budget(Budget(tenant_id="globex", amount=Decimal(100), period=BudgetPeriod("monthly")))
    keys = {
        "acme": service.create_api_key(role="tenant", tenant_id="acme")[1],
        "admin": service.create_api_key(role="admin")[1],
    }
    yield service, TestClient(create_app(service)), keys, acme, globex
    service.close()


def next_of(ws: Any, kind: str) -> dict[str, Any]:
    for _ in range(50):
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def test_status_pushed_on_change(setup: Any) -> None:
    service, client, keys, acme, _ = setup
    with client.websocket_connect(f"/v1/ws?token={keys['acme']}") as ws:
        ws.send_json({"subscribe": {"tenant": "acme"}})
        assert next_of(ws, "subscribed")["budgets"] == [acme.id]
        first = next_of(ws, "status")
        assert first["budget_id"] == acme.id and first["current_spend"] == "0" and first["action"] == "allow"
        service.process_job_cost(JobMetrics("j1", "acme", "q", Decimal(950_000), 0, 0, 0, 0))  # $95
        pushed = next_of(ws, "status")
        assert Decimal(pushed["current_spend"]) == Decimal(95) and pushed["action"] == "throttle"


def test_other_tenants_budgets_look_unknown(setup: Any) -> None:
    _, client, keys, acme, globex = setup
    with client.websocket_connect("/v1/ws", headers={"Authorization": f"Bearer {keys['acme']}"}) as ws:
        ws.send_json({"subscribe": {"budgets": [globex.id, acme.id, "no-such-budget"]}})
        errors = [ws.receive_json(), ws.receive_json()]
        assert [e["code"] for e in errors] == ["BUDGET_NOT_FOUND", "BUDGET_NOT_FOUND"]
        assert next_of(ws, "subscribed")["budgets"] == [acme.id]
        ws.send_json({"subscribe": {"tenant": "globex"}})  # ignored after the first subscription
    with client.websocket_connect(f"/v1/ws?token={keys['acme']}") as ws:
        ws.send_json({"subscribe": {"tenant": "globex"}})
        assert ws.receive_json()["code"] == "TENANT_NOT_FOUND"
        assert next_of(ws, "subscribed")["budgets"] == []
    with client.websocket_connect(f"/v1/ws?token={keys['admin']}") as ws:
        ws.send_json({"subscribe": {"budgets": [globex.id]}})
        assert next_of(ws, "subscribed")["budgets"] == [globex.id]


@pytest.mark.parametrize("one_read", [0, 1000])  # one read of every budget, or a read per id
def test_a_long_subscription_still_hides_other_tenants(
    setup: Any, monkeypatch: pytest.MonkeyPatch, one_read: int
) -> None:
    service, client, keys, acme, globex = setup
    monkeypatch.setattr(live, "ONE_READ", one_read)
    more = [
        service.create_budget(
            Budget(tenant_id="acme", queue_name=f"q{i}", amount=Decimal(5), period=BudgetPeriod("monthly"))
        )
        for i in range(3)
    ]
    wanted = [globex.id, acme.id, "no-such-budget", *(b.id for b in more)]
    with client.websocket_connect("/v1/ws", headers={"Authorization": f"Bearer {keys['acme']}"}) as ws:
        ws.send_json({"subscribe": {"budgets": wanted}})
        errors = [ws.receive_json(), ws.receive_json()]
        assert [e["message"] for e in errors] == [
            f"budget not found: {globex.id!r}",
            "budget not found: 'no-such-budget'",
        ]
        assert next_of(ws, "subscribed")["budgets"] == [acme.id, *(b.id for b in more)]


def test_bad_key_is_refused(setup: Any) -> None:
    _, client, _, _, _ = setup
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/v1/ws?token=jb_nope_nope") as ws:
        ws.receive_json()
    assert closed.value.code == 4401


def test_an_oversized_subscription_is_refused_before_any_lookup(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a server with a larger WebSocket frame limit than jobbudget serve's (plain
    uvicorn allows 16 MiB), the handler itself refuses a message over 128 KiB unread."""
    service, client, keys, _, _ = setup
    looked_up: list[str] = []
    monkeypatch.setattr(service, "get_budget", looked_up.append)
    ids = [f"budget-{i}" for i in range(100_000)]
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(f"/v1/ws?token={keys['admin']}") as ws:
        ws.send_json({"subscribe": {"budgets": ids}})
        error = ws.receive_json()
        ws.receive_json()
    assert error == {"type": "error", "code": "PAYLOAD_TOO_LARGE", "message": closed.value.reason}
    assert closed.value.code == 4400 and closed.value.reason == "the message is over the limit of 131072 bytes"
    assert looked_up == []


def test_statuses_are_read_only_when_something_changed(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    service, client, keys, acme, _ = setup
    reads: list[str] = []
    status_of = service.get_budget_status

    def counted(budget_id: str) -> Any:
        reads.append(budget_id)
        return status_of(budget_id)

    monkeypatch.setattr(service, "get_budget_status", counted)
    polls: list[int] = []
    live_version = service.live_version

    def polled() -> Any:
        polls.append(1)
        return live_version()

    monkeypatch.setattr(service, "live_version", polled)  # the hub asks it at every poll
    with client.websocket_connect(f"/v1/ws?token={keys['acme']}") as ws:
        ws.send_json({"subscribe": {"tenant": "acme"}})
        next_of(ws, "status")
        snapshot_reads, seen = len(reads), len(polls)
        wait_until(lambda: len(polls) >= seen + 30, 10)  # 30 polls of the hub with nothing happening
        assert len(reads) == snapshot_reads
        service.process_job_cost(JobMetrics("j1", "acme", "q", Decimal(950_000), 0, 0, 0, 0))  # $95
        pushed = next_of(ws, "status")
        assert pushed["budget_id"] == acme.id and Decimal(pushed["current_spend"]) == Decimal(95)
        assert reads[snapshot_reads:].count(acme.id) == 1


@pytest.mark.parametrize("by_message", [False, True], ids=["query", "first message"])
def test_a_revoked_key_is_closed(setup: Any, by_message: bool) -> None:
    service, client, keys, _, _ = setup
    key = service.authenticate(keys["acme"])
    url = "/v1/ws" if by_message else f"/v1/ws?token={keys['acme']}"
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url) as ws:
        if by_message:
            ws.send_json({"auth": keys["acme"]})
        ws.send_json({"subscribe": {"tenant": "acme"}})
        next_of(ws, "status")
        service.revoke_api_key(key.id)
        for _ in range(100):
            ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (4401, "API key revoked")


def closed_with(ws: Any) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes: its code and reason, and the messages before."""
    messages: list[dict[str, Any]] = []
    with pytest.raises(WebSocketDisconnect) as closed:
        for _ in range(100):
            messages.append(ws.receive_json())
    return closed.value.code, closed.value.reason, messages


@pytest.mark.parametrize("wait", [True, False], ids=["waiting for the answer", "pipelined"])
def test_the_key_in_the_first_message(setup: Any, wait: bool) -> None:
    service, client, keys, acme, _ = setup
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"auth": keys["acme"]})
        if wait:
            assert ws.receive_json() == {"type": "authenticated"}
        ws.send_json({"subscribe": {"tenant": "acme"}})
        if not wait:
            assert ws.receive_json() == {"type": "authenticated"}
        assert ws.receive_json() == {"type": "subscribed", "budgets": [acme.id]}
        assert next_of(ws, "status")["current_spend"] == "0"
        service.process_job_cost(JobMetrics("j1", "acme", "q", Decimal(950_000), 0, 0, 0, 0))  # $95
        assert Decimal(next_of(ws, "status")["current_spend"]) == Decimal(95)


@pytest.mark.parametrize("who", ["made up", "well formed, unknown", "revoked"])
def test_a_wrong_key_in_the_first_message_is_refused(setup: Any, who: str) -> None:
    service, client, keys, _, _ = setup
    made_up = {"made up": "jb_nope_nope", "well formed, unknown": "jb_" + "a" * 8 + "_" + "b" * 43}
    if who == "revoked":
        service.revoke_api_key(service.authenticate(keys["acme"]).id)
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"auth": made_up.get(who, keys["acme"])})
        ws.send_json({"subscribe": {"tenant": "acme"}})
        assert closed_with(ws) == (4401, "missing, unknown or revoked API key", [])


SHAPE = 'send {"auth": "KEY"} first, or the key in an Authorization: Bearer header'
NOT_A_KEY = "auth must be an API key: 1 to 256 characters"
#: The first message -> the error's code, the reason (and message) it starts with, its field.
MALFORMED_AUTH: dict[str, tuple[str | bytes, str, str, str | None]] = {
    "binary": (b"\x00", "INVALID_JSON", "send the authentication as a JSON text message, not binary", None),
    "not JSON": ("jb_key", "INVALID_JSON", "not JSON: Expecting value", None),
    "over 1 KiB": (
        json.dumps({"auth": "k" * 2000}),
        "PAYLOAD_TOO_LARGE",
        "the message is over the limit of 1024",
        None,
    ),
    "a list": ('["jb_key"]', "VALIDATION_FAILED", SHAPE, None),
    "a subscription first": ('{"subscribe": {"tenant": "acme"}}', "VALIDATION_FAILED", SHAPE, None),
    "another key beside auth": ('{"auth": "jb_key", "more": 1}', "VALIDATION_FAILED", SHAPE, None),
    "the same key twice": ('{"auth": "a", "auth": "b"}', "INVALID_JSON", "not JSON: an object has the same key", None),
    "a number": ('{"auth": 5}', "VALIDATION_FAILED", NOT_A_KEY, "auth"),
    "empty": ('{"auth": ""}', "VALIDATION_FAILED", NOT_A_KEY, "auth"),
    "too long": (json.dumps({"auth": "k" * 257}), "VALIDATION_FAILED", NOT_A_KEY, "auth"),
}


@pytest.mark.parametrize("case", list(MALFORMED_AUTH))
def test_a_malformed_first_message_is_refused_before_any_lookup(
    setup: Any, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    service, client, _, _, _ = setup
    sent, code, reason, field = MALFORMED_AUTH[case]
    looked_up: list[object] = []
    monkeypatch.setattr(service, "authenticate", lambda *args, **_: looked_up.append(args))
    with client.websocket_connect("/v1/ws") as ws:
        if isinstance(sent, bytes):
            ws.send_bytes(sent)
        else:
            ws.send_text(sent)
        close_code, close_reason, messages = closed_with(ws)
    assert close_code == 4400 and close_reason.startswith(reason), (close_code, close_reason)
    error = {"type": "error", "code": code, "message": close_reason}
    assert messages == [error if field is None else {**error, "field": field}]
    assert looked_up == []


def test_silence_instead_of_the_key_is_closed(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client, _, _, _ = setup
    monkeypatch.setattr(live_auth, "AUTH_SECONDS", 0.2)
    with client.websocket_connect("/v1/ws") as ws:
        assert closed_with(ws) == (4401, "no authentication within 0.2 s", [])


def test_sockets_waiting_for_their_key_are_bounded(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client, keys, acme, _ = setup
    monkeypatch.setattr(live_hub, "MAX_ANONYMOUS_SOCKETS", 2)
    # ``with client``: one event loop for every socket, as in the server's process
    with client, client.websocket_connect("/v1/ws") as first, client.websocket_connect("/v1/ws"):
        with client.websocket_connect("/v1/ws") as third:
            too_many = "too many sockets waiting to authenticate; try later"
            assert closed_with(third) == (1013, too_many, [])
        with client.websocket_connect(f"/v1/ws?token={keys['acme']}") as by_query:  # not counted
            by_query.send_json({"subscribe": {"tenant": "acme"}})
            assert next_of(by_query, "subscribed")["budgets"] == [acme.id]
        first.send_json({"auth": keys["acme"]})  # authenticated: no longer counted
        assert first.receive_json() == {"type": "authenticated"}
        with client.websocket_connect("/v1/ws") as another:
            another.send_json({"auth": keys["admin"]})
            assert another.receive_json() == {"type": "authenticated"}


def test_one_client_address_cannot_hold_every_waiting_place(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Anonymous sockets are bounded per client address too, so one client (or a page
    its visitors' browsers open) cannot keep everyone else's dashboard from connecting."""
    _, client, keys, _, _ = setup
    monkeypatch.setattr(live_hub, "MAX_ANONYMOUS_PER_CLIENT", 2)
    with client, client.websocket_connect("/v1/ws"), client.websocket_connect("/v1/ws") as second:
        with client.websocket_connect("/v1/ws") as third:
            assert closed_with(third) == (1013, "too many sockets waiting to authenticate; try later", [])
        second.send_json({"auth": keys["acme"]})
        assert second.receive_json() == {"type": "authenticated"}


@pytest.mark.parametrize(
    ("origin", "refused"),
    [("http://evil.example", True), ("null", True), ("http://testserver.evil.example", True),
     ("http://testserver", False), ("https://TESTSERVER", False), (None, False)],
)  # fmt: skip
def test_a_page_of_another_site_cannot_open_the_stream(setup: Any, origin: str | None, refused: bool) -> None:
    _, client, keys, acme, _ = setup
    headers = {} if origin is None else {"origin": origin}
    if origin == "https://TESTSERVER":  # behind a proxy that sends its own host and the page's
        headers = {"origin": "https://budgets.example.com", "x-forwarded-host": "budgets.example.com"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        if refused:
            assert closed_with(ws) == (4403, "a page of another site may not open this stream", [])
            return
        ws.send_json({"auth": keys["acme"]})
        ws.send_json({"subscribe": {"tenant": "acme"}})
        assert next_of(ws, "subscribed")["budgets"] == [acme.id]


def test_the_amount_pushed_is_the_amount_in_force(setup: Any, clock: FakeClock) -> None:
    service, client, keys, acme, _ = setup
    service.raise_budget(acme.id, "50", expires_at=clock() + timedelta(days=2), approver="cfo", reason="launch")
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"auth": keys["acme"]})
        ws.send_json({"subscribe": {"budgets": [acme.id]}})
        first = next_of(ws, "status")
        assert Decimal(first["budget_amount"]) == Decimal(150)  # 100 + the raise, as utilization counts it
        service.process_job_cost(JobMetrics("j1", "acme", "q", Decimal(1_200_000), 0, 0, 0, 0))  # $120
        pushed = next_of(ws, "status")
        assert Decimal(pushed["budget_amount"]) == Decimal(150) and Decimal(pushed["utilization"]) == Decimal("0.8")
