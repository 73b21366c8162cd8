"""The operator endpoints behind the terminal UI: ``GET /v1/dashboard``,
``GET /v1/budgets/{id}/trends`` and ``POST /v1/budgets/{id}/channels/{index}/test``:
what they return, who may see and do what, and that no channel secret ever leaves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import FakeClock
from jobbudget import Budget, BudgetPeriod, JobMetrics, NotificationChannel
from jobbudget.domain.money import round_money
from receivers import Receiver, http_receivers
from test_api_support import Api, error_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NO_BASE: dict[str, Any] = {
    "cost_model": {"cpu_time_weight": "0.0001", "base_job_weight": "0"}
}  # a job costs exactly cpu_time × 0.0001
SECRETS = ("s3cr3t-path-token", "k3y-for-signing", "xoxb-slack-token", "pa55word")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


@pytest.fixture
def api_config() -> dict[str, Any]:
    return NO_BASE


def job(job_id: str, cost: str, *, tenant: str = "acme", queue: str = "q1", ts: datetime | None = None) -> JobMetrics:
    zero = Decimal(0)
    return JobMetrics(job_id=job_id, tenant_id=tenant, queue_name=queue, cpu_time=Decimal(cost) * 10_000,
                      memory_mb_seconds=zero, payload_bytes=zero, redis_ops=zero, network_bytes=zero,
                      timestamp=ts)  # fmt: skip


def channels(url: str) -> tuple[NotificationChannel, ...]:
    return (
        NotificationChannel(type="webhook", target=url, metadata={"secret": "k3y-for-signing"}),
        NotificationChannel(type="slack", target="https://hooks.slack.com/services/T0001/B0002/xoxb-slack-token"),
        NotificationChannel(type="email", target="ops@example.com", metadata={"password": "pa55word"}),
    )


def make_budget(tenant: str, amount: str, url: str, queue: str = "") -> Budget:
    return Budget(tenant_id=tenant, queue_name=queue, amount=Decimal(amount), period=BudgetPeriod("monthly"),
                  notifications=channels(url))  # fmt: skip


def setup(api: Api, url: str = "http://127.0.0.1:9/in/s3cr3t-path-token") -> dict[str, str]:
    """acme at 80 % of its 100 (two queues), globex at 10 % of its 50."""
    service = api.service
    acme = service.create_budget(make_budget("acme", "100", url))
    globex = service.create_budget(make_budget("globex", "50", url))
    jan = datetime(2024, 1, 10, 9, tzinfo=UTC)
    service.process_job_costs(
        [
            job("a1", "50", ts=jan),
            job("a2", "20", queue="q2", ts=jan + timedelta(days=3)),
            job("a3", "10", ts=datetime(2024, 1, 15, 11, tzinfo=UTC)),
            job("a-dec", "7", ts=datetime(2023, 12, 20, 8, tzinfo=UTC)),  # inside the 30 days, not the period
            job("g1", "5", tenant="globex", ts=jan),
        ]
    )
    assert acme.id is not None and globex.id is not None
    return {"acme": acme.id, "globex": globex.id}


def no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- the dashboard ---------------------------------------------------------------------
def test_the_dashboard_lists_every_budget_with_status_and_the_drivers(api: Api) -> None:
    ids = setup(api)
    r = api.get("/v1/dashboard")
    assert r.status_code == 200, r.text
    no_secrets(r.text)
    body = r.json()
    views = {v["budget"]["id"]: v for v in body["budgets"]}
    assert set(views) == set(ids.values())
    acme, globex = views[ids["acme"]], views[ids["globex"]]
    assert (acme["status"], Decimal(acme["spend"]), Decimal(acme["utilization"])) == (
        "Warning",
        Decimal(80),
        Decimal("0.8"),
    )
    assert (globex["status"], Decimal(globex["spend"])) == ("OK", Decimal(5))
    assert acme["period_start"] == "2024-01-01" and acme["period_end"] == "2024-01-31"
    drivers = [(d["tenant_id"], d["queue_name"], Decimal(d["total_cost"]), d["job_count"]) for d in body["drivers"]]
    assert drivers == [
        ("acme", "q1", Decimal(60), 2),
        ("acme", "q2", Decimal(20), 1),
        ("globex", "q1", Decimal(5), 1),
    ]  # this month only
    assert Decimal(body["total_spend"]) == 85 and body["total_jobs"] == 4
    assert body["since"] == "2024-01-01" and body["until"] == "2024-01-15"
    assert body["active_alerts"] == 1  # acme's warning
    assert Decimal(body["drivers"][0]["percentage"]) > Decimal(body["drivers"][1]["percentage"])
    assert api.service.dashboard().budgets[0].budget.notifications[0].target.endswith("/***")
    # top limits the drivers; bad values name the field
    assert len(api.get("/v1/dashboard", params={"top": 1}).json()["drivers"]) == 1
    assert error_of(api.get("/v1/dashboard", params={"top": 101}))["field"] == "top"


def test_a_tenant_key_sees_only_its_own_tenant(api: Api) -> None:
    ids = setup(api)
    for who in ("acme", "acme-reporter"):
        body = api.get("/v1/dashboard", who).json()
        assert [v["budget"]["id"] for v in body["budgets"]] == [ids["acme"]]
        assert {d["tenant_id"] for d in body["drivers"]} == {"acme"}
        assert Decimal(body["total_spend"]) == 80
        assert api.get("/v1/dashboard", who, params={"tenant": "acme"}).json()["budgets"] == body["budgets"]
        other = api.get("/v1/dashboard", who, params={"tenant": "globex"})
        assert other.status_code == 404 and "globex" not in str(other.json().get("budgets", ""))
        assert error_of(other)["code"]
    mine = api.get("/v1/dashboard", "globex").json()
    assert [v["budget"]["id"] for v in mine["budgets"]] == [ids["globex"]]
    assert mine["active_alerts"] == 0
    # an admin (or a global reporter) may narrow to one tenant
    scoped = api.get("/v1/dashboard", "reporter", params={"tenant": "globex"}).json()
    assert [v["budget"]["id"] for v in scoped["budgets"]] == [ids["globex"]]
    assert api.client.get("/v1/dashboard").status_code == 401


# -- trends --------------------------------------------------------------------------
def test_trends_are_thirty_zero_filled_days_summing_to_the_total(api: Api, clock: FakeClock) -> None:
    ids = setup(api)
    r = api.get(f"/v1/budgets/{ids['acme']}/trends")
    assert r.status_code == 200, r.text
    no_secrets(r.text)
    body = r.json()
    days = [(date.fromisoformat(d), Decimal(v)) for d, v in body["daily"]]
    today = clock.now.date()
    assert [d for d, _ in days] == [today - timedelta(days=29 - i) for i in range(30)]
    assert sum(v for _, v in days) == Decimal(body["total"]) == 87  # December's 7 is in the window
    spend = dict(days)
    assert spend[date(2024, 1, 10)] == 50 and spend[date(2024, 1, 13)] == 20 and spend[date(2024, 1, 15)] == 10
    assert spend[date(2023, 12, 20)] == 7
    assert sum(1 for _, v in days if v == 0) == 26
    assert body["jobs"] == 4
    assert Decimal(body["daily_pace"]) == round_money(Decimal(100) / 31)  # January has 31 days
    assert body["budget"]["id"] == ids["acme"]
    assert {c["name"] for c in body["components"]} == {"CPU", "Memory", "Payload", "Redis", "Network", "Base"}
    assert sum(Decimal(c["cost"]) for c in body["components"]) == 87
    week = api.get(f"/v1/budgets/{ids['acme']}/trends", params={"days": 7}).json()
    assert len(week["daily"]) == 7 and Decimal(week["total"]) == 80


def test_trends_are_scoped_and_validated(api: Api) -> None:
    ids = setup(api)
    assert api.get(f"/v1/budgets/{ids['acme']}/trends", "acme").status_code == 200
    assert api.get(f"/v1/budgets/{ids['acme']}/trends", "acme-reporter").status_code == 200
    hidden = api.get(f"/v1/budgets/{ids['globex']}/trends", "acme")
    assert hidden.status_code == 404 and "globex" not in hidden.text
    assert api.get("/v1/budgets/no-such-budget/trends").status_code == 404
    for days in (0, 367, "many"):
        r = api.get(f"/v1/budgets/{ids['acme']}/trends", params={"days": days})
        assert r.status_code == 422 and error_of(r)["field"] == "days"


# -- test messages ----------------------------------------------------------------------
def test_a_test_message_goes_once_to_the_channel(api: Api, receiver: Receiver) -> None:
    ids = setup(api, url=receiver.url("/in/s3cr3t-path-token"))
    r = api.post(f"/v1/budgets/{ids['acme']}/channels/0/test", "acme")
    assert r.status_code == 204 and r.content == b""
    assert len(receiver.requests) == 1  # sent before the answer
    assert receiver.requests[0].path == "/in/s3cr3t-path-token"  # the real target, with the stored secret
    assert api.post(f"/v1/budgets/{ids['acme']}/channels/0/test").status_code == 204  # admin
    assert len(receiver.requests) == 2  # the next one: nothing else came between


def test_test_messages_are_validated_and_authorized(api: Api, receiver: Receiver) -> None:
    ids = setup(api, url=receiver.url("/in/s3cr3t-path-token"))
    for index in (3, 100, -1):
        r = api.post(f"/v1/budgets/{ids['acme']}/channels/{index}/test")
        assert r.status_code == 422, r.text
        assert error_of(r)["field"] == "index"
        no_secrets(r.text)
    for who in ("reporter", "acme-reporter"):
        assert api.post(f"/v1/budgets/{ids['acme']}/channels/0/test", who).status_code == 403
    assert api.post(f"/v1/budgets/{ids['globex']}/channels/0/test", "acme").status_code == 404
    assert api.post("/v1/budgets/no-such-budget/channels/0/test").status_code == 404
    assert api.client.post(f"/v1/budgets/{ids['acme']}/channels/0/test").status_code == 401
    assert api.post(f"/v1/budgets/{ids['acme']}/channels/0/test").status_code == 204  # one that is sent ...
    assert len(receiver.requests) == 1  # ... and is all that arrived


def test_a_failing_channel_answers_an_error_without_its_secrets(api: Api) -> None:
    ids = setup(api, url="http://127.0.0.1:9/in/s3cr3t-path-token")
    r = api.post(f"/v1/budgets/{ids['acme']}/channels/0/test")
    assert r.status_code >= 400, r.text
    no_secrets(r.text)


def test_no_secret_in_any_answer(api: Api) -> None:
    ids = setup(api)
    paths = ["/v1/dashboard", "/v1/alerts", "/v1/budgets", f"/v1/budgets/{ids['acme']}",
             f"/v1/budgets/{ids['acme']}/trends", f"/v1/budgets/{ids['acme']}/status"]  # fmt: skip
    for path in paths:
        for who in ("admin", "acme", "reporter"):
            r = api.get(path, who)
            assert r.status_code == 200, (path, who, r.text)
            no_secrets(r.text)
