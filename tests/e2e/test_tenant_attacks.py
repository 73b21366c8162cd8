"""A tenant with a key plays the attacker against the real ``jobbudget serve``: e-mail
header injection (captured by a real SMTP server), lifting the operator's budget,
settling another tenant's admission, and back-dated jobs."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, NotificationChannel
from receivers import free_port

from .conftest import StartServer
from .server import LiveServer

#: RFC 2047 encoded words that Python's e-mail package decodes into CR/LF: a Reply-To
#: header and a body of the attacker's in the operator's mail, from the trusted sender.
REPLY_TO = "=?utf-8?q?x=0D=0AReply-To:_a@evil.example=0D=0A=0D=0APhish?="
BCC = "=?utf-8?q?x=0D=0ABcc:_b@evil.example?="
MAIL_HEADERS = {
    "subject", "from", "to", "date", "message-id", "x-jobbudget-event-id", "auto-submitted",
    "mime-version", "content-type",
}  # fmt: skip


class Capture:
    """An SMTP server keeping each message as received (raw bytes)."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        return "250 accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Capture, int]]:
    capture, port = Capture(), free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield capture, port
    finally:
        controller.stop()


def tenant_key(server: LiveServer, tenant: str) -> str:
    made: dict[str, str] = json.loads(server.cli("apikey", "create", "--role", "tenant", "--tenant", tenant, "--json"))
    return made["key"]


def headers_of(raw: bytes) -> list[str]:
    block = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii", "replace")
    return [line.split(":", 1)[0].lower() for line in block.split("\n") if line and not line[0].isspace()]


def job(job_id: str, tenant: str, cpu: int, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "tenant_id": tenant, "queue_name": "ml", "cpu_time": cpu, "memory_mb_seconds": 0, **extra}


PRICES = {"cpu_time_weight": "1", "base_job_weight": "0"}  # a job costs its CPU seconds in dollars


def test_no_tenant_text_becomes_a_mail_header(
    start_server: StartServer, smtp: tuple[Capture, int], tmp_path: Path
) -> None:
    capture, port = smtp
    # A budget stored before identifiers and channels were checked (legacy data): its
    # channel's subject_prefix holds an encoded word; the send itself must defuse it.
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    channel = NotificationChannel(type="email", target="acme-ops@example.com", metadata={"subject_prefix": "[acme]"})
    with BudgetService(Config(database_url=url, cost_model=PRICES)) as service:
        legacy = service.create_budget(
            Budget(tenant_id="acme", amount=Decimal(100), period=BudgetPeriod("monthly"), notifications=(channel,))
        )
    with sqlite3.connect(tmp_path / "legacy.db") as db:
        hostile = [{"type": "email", "target": "acme-ops@example.com", "metadata": {"subject_prefix": BCC}}]
        db.execute("UPDATE budgets SET notifications = ? WHERE id = ?", (json.dumps(hostile), legacy.id))
    config = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "JobBudget <alerts@operator.example>",
        "notification_channels": [{"type": "email", "target": "platform@operator.example"}],
        "cost_model": PRICES,
    }
    server = start_server(database_url=url, config=config, env={"JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND": "true"})
    key = tenant_key(server, "acme")
    with server.client(key) as client:
        # the attacks of the issue are refused at the door, naming the field
        for bad, field in (
            ({"queue_name": REPLY_TO}, "queue_name"),
            ({"notifications": [{"type": "email", "target": "me@acme.example", "metadata": {"subject_prefix": BCC}}]},
             "notifications.metadata.subject_prefix"),
            ({"notifications": [{"type": "email", "target": f"{REPLY_TO} <me@acme.example>"}]}, "notifications.target"),
        ):  # fmt: skip
            refused = client.post("/v1/budgets", json={"tenant_id": "acme", "amount": "10", **bad})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["field"].startswith(field), refused.text
        refused = client.post("/v1/jobs", json=job("j0", "acme", 1) | {"queue_name": REPLY_TO})
        assert refused.status_code == 422 and refused.json()["error"]["field"].endswith("queue_name")
        # a job crosses the legacy budget's thresholds: the mails go out
        assert client.post("/v1/jobs", json=job("j1", "acme", 95)).status_code == 200
    deadline = time.monotonic() + 20
    while len(capture.raw) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(capture.raw) >= 2, server.log()  # the operator's channel and the tenant's
    for raw in capture.raw:
        names = headers_of(raw)
        assert set(names) <= MAIL_HEADERS and len(names) == len(set(names)), names
        assert b"evil.example" not in raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")


def test_back_dated_jobs_cannot_escape_the_current_period(start_server: StartServer) -> None:
    server = start_server(config={"cost_model": PRICES, "late_job_window": "2d"})
    key = tenant_key(server, "acme")
    with server.client() as admin:
        made = admin.post("/v1/budgets", json={"tenant_id": "acme", "amount": "100"})
        assert made.status_code == 201
    now = time.time()

    def iso(seconds_ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds_ago))

    with server.client(key) as client:
        for when in (iso(40 * 86400), "1971-01-01T00:00:00Z"):  # the attacks
            refused = client.post("/v1/jobs", json=job("old", "acme", 50, timestamp=when))
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["field"] == "timestamp" and "late_job_window" in error["message"], error
        batch = {"jobs": [job("ok", "acme", 1), job("old", "acme", 50, timestamp=iso(3 * 86400))]}
        refused = client.post("/v1/jobs", json=batch)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "jobs[1].timestamp"
        # within the window a late job counts where it belongs: here, this period
        assert client.post("/v1/jobs", json=job("late", "acme", 102, timestamp=iso(3600))).status_code == 200
        assert client.post("/v1/check", json={"tenant_id": "acme"}).json()["type"] == "block"
    with server.client() as admin:  # an operator may import history
        assert admin.post("/v1/jobs", json=job("history", "acme", 5, timestamp=iso(40 * 86400))).status_code == 200


def test_a_job_never_settles_another_tenants_reservation(start_server: StartServer) -> None:
    server = start_server(config={"cost_model": PRICES})
    acme, globex = tenant_key(server, "acme"), tenant_key(server, "globex")
    with server.client() as admin:
        assert admin.post("/v1/budgets", json={"tenant_id": "acme", "amount": "10"}).status_code == 201
    with server.client(acme) as client:
        held = client.post("/v1/admit", json={"tenant_id": "acme", "estimated_cost": "9"}).json()
        assert held["allowed"] and held["reservation_id"]
        assert not client.post("/v1/admit", json={"tenant_id": "acme", "estimated_cost": "2"}).json()["allowed"]
    with server.client(globex) as client:  # globex reports its own job with acme's reservation
        stolen = client.post("/v1/jobs", json=job("g1", "globex", 1) | {"reservation_id": held["reservation_id"]})
        assert stolen.status_code == 200
    with server.client(acme) as client:  # acme's hold is intact: still no room for 2 more
        assert not client.post("/v1/admit", json={"tenant_id": "acme", "estimated_cost": "2"}).json()["allowed"]
        released = client.request("DELETE", f"/v1/reservations/{held['reservation_id']}").json()
        assert released == {"released": True}


def test_a_team_key_stays_in_its_subtree_and_never_loosens_the_operator(start_server: StartServer) -> None:
    """A key bound to a team reads its tenants and nothing above or beside them; it
    cannot move the tree, refund, credit or raise, nor loosen an operator's budget."""
    server = start_server(config={"cost_model": {**PRICES, "resources": {"gpu": "0.001"}}})
    with server.client() as admin:
        for node, parent in (("acme", "research"), ("beta", "research"), ("research", "uni"), ("gamma", "uni")):
            assert admin.put(f"/v1/tree/{node}", json={"parent": parent}).status_code == 200
        org = admin.post("/v1/budgets", json={"tenant_id": "uni", "amount": "1000"}).json()
        capped = admin.post("/v1/budgets", json={"tenant_id": "acme", "amount": "50"}).json()
        other = admin.post("/v1/budgets", json={"tenant_id": "gamma", "amount": "50"}).json()
        stored = admin.post("/v1/jobs", json={"jobs": [job("a1", "acme", 10), job("g1", "gamma", 20)]})
        assert stored.status_code == 200, stored.text
        assert admin.post("/v1/jobs/gamma/g1/refund", json={"reason": "preempted"}).status_code == 200
    team = tenant_key(server, "research")
    with server.client(team) as lead:
        assert {n["node"] for n in lead.get("/v1/tree").json()["nodes"]} == {"acme", "beta"}
        assert lead.get(f"/v1/budgets/{capped['id']}").status_code == 200
        for hidden in (org["id"], other["id"]):
            assert lead.get(f"/v1/budgets/{hidden}").status_code == 404
            assert lead.get(f"/v1/budgets/{hidden}/raises").status_code == 404
        assert lead.get("/v1/adjustments", params={"tenant": "gamma"}).status_code == 404
        assert lead.get("/v1/adjustments").json() == []  # gamma's refund is not the team's business
        assert lead.get("/v1/reports", params={"tenant": "uni"}).status_code == 404
        assert lead.get("/v1/reports", params={"tenant": "gamma"}).status_code == 404
        denied = [
            lead.put("/v1/tree/acme", json={"parent": ""}),
            lead.put("/v1/tree/gamma", json={"parent": "research"}),  # adopt another team's tenant
            lead.post("/v1/jobs/acme/a1/refund", json={"reason": "mine"}),
            lead.post("/v1/adjustments", json={"tenant_id": "acme", "amount": "-40", "reason": "free money"}),
            lead.post(
                f"/v1/budgets/{capped['id']}/raises",
                json={"amount": "1000", "expires_at": "2030-01-01T00:00:00Z", "approver": "me", "reason": "x"},
            ),
            lead.patch(f"/v1/budgets/{capped['id']}", json={"amount": "100000"}),
            lead.delete(f"/v1/budgets/{capped['id']}"),
            lead.post("/v1/jobs", json=job("x1", "gamma", 1)),  # another team's tenant
        ]
        assert [r.status_code for r in denied] == [403] * len(denied), [(r.status_code, r.text) for r in denied]
    with server.client() as admin:  # nothing of that reached the ledger
        assert admin.get(f"/v1/budgets/{capped['id']}").json()["amount"] == "50"
        assert [a["kind"] for a in admin.get("/v1/adjustments").json()] == ["refund"]
        assert {n["node"]: n["parent"] for n in admin.get("/v1/tree").json()["nodes"]}["gamma"] == "uni"
    anonymous = httpx.Client(base_url=server.url, timeout=10)
    with anonymous:
        assert anonymous.get("/v1/tree").status_code == 401
        assert anonymous.post("/v1/adjustments", json={}).status_code == 401
