"""``/v1/ws``: live budget status with tenant isolation (TestClient WebSocket)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics
from jobbudget.api import live, live_hub
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


def test_a_revoked_key_is_closed(setup: Any) -> None:
    service, client, keys, _, _ = setup
    key = service.authenticate(keys["acme"])
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(f"/v1/ws?token={keys['acme']}") as ws:
        ws.send_json({"subscribe": {"tenant": "acme"}})
        next_of(ws, "status")
        service.revoke_api_key(key.id)
        for _ in range(100):
            ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (4401, "API key revoked")
