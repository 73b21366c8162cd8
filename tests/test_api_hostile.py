"""Hostile input to the HTTP API, over every backend: wrong types, NaN, huge numbers,
-0, strings for numbers, deep nesting, invalid UTF-8, control characters, unknown
fields and absurd dates all get a 4xx JSON error, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from test_api_support import Api, budget, error_of, job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


HOSTILE_JOB_VALUES: list[Any] = ["10", True, None, [], {}, -1, "NaN", 10**400]


@pytest.mark.parametrize("value", HOSTILE_JOB_VALUES, ids=repr)
def test_hostile_job_numbers_are_rejected(api: Api, value: Any) -> None:
    try:
        raw = json.dumps(job("h", cpu_time=value))
    except ValueError:
        raw = json.dumps(job("h")).replace('"cpu_time": 10', f'"cpu_time": {value}')
    r = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert error_of(r)["field"] is not None


RAW_BODIES = [
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": NaN}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": Infinity}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": -Infinity}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1e308}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1e999999}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1' + b"0" * 5000 + b"}",
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "extra": 1}',
    b'{"job_id": "\xff\xfe", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"jobs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"jobs": []}',
    b'{"jobs": "many"}',
    b"[]",
    b'"text"',
    b"",
    b"{",
    b'{"job_id": "h\\u0000", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "timestamp": "2024-01-01T00:00:00"}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "timestamp": "2099-01-01T00:00:00Z"}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "priority": 11}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "timestamp": "0001-01-01T00:00:00+01:00"}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "timestamp": "1969-12-31T23:59:59Z"}',
    rb'{"job_id": "h", "tenant_id": "acme\ud800", "queue_name": "q", "cpu_time": 1}',
    rb'{"job_id": "h", "tenant_id": "acme", "queue_name": "q\u0000", "cpu_time": 1}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "priority": 5.5}',
    b'{"job_id": "' + b"x" * 5000 + b'", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1}',
    b'{"job_id": "h", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1e17}',
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=lambda b: repr(b[:60]))
def test_hostile_bodies_get_4xx(api: Api, raw: bytes) -> None:
    r = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    error_of(r)


def test_minus_zero_is_zero(api: Api) -> None:
    raw = json.dumps(job("z")).replace('"cpu_time": 10', '"cpu_time": -0.0')
    r = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["jobs"][0]["cost_breakdown"]["cpu_cost"] == "0.000000000"  # never "0E-9"


HOSTILE_BUDGETS: list[Any] = [
    {"amount": "1e308"},
    {"amount": "NaN"},
    {"amount": "-0"},
    {"amount": [1]},
    {"amount": True},
    {"period": {"type": "fortnightly"}},
    {"period": {"timezone": "../../etc/passwd"}},
    {"period": {"type": "custom"}},
    {"period": {"type": "monthly", "start_date": "9999-12-01"}},
    {"period": {"type": "yearly", "start_date": "0001-01-01", "timezone": "Asia/Tokyo"}},
    {"period": {"type": "custom", "start_date": "2024-01-01", "end_date": "9999-12-31"}},
    {"period": "monthly"},
    {"currency": "XXX"},
    {"warning_threshold": "2", "throttle_threshold": "1"},
    {"enforcement_policy": {"throttle_factor": 0}},
    {"enforcement_policy": {"emergency_priority": "9"}},
    {"notifications": [{"type": "pager", "target": "x"}]},
    {"notifications": [{"type": "email", "target": "not an address"}]},
    {"tags": {"a": 1}},
    {"tags": {"a": "nul\u0000"}},
    {"tags": {"nul\u0000": "a"}},
    {"notifications": [{"type": "webhook", "target": "https://x.example/\u0000"}]},
    {"notifications": [{"type": "webhook", "target": "https://x.example/", "metadata": {"k": "\u0000"}}]},
    {"period": {"timezone": "UTC\u0000"}},
    {"tenant_id": ""},
    {"tenant_id": "a\nb"},
    {"queue_name": "q" * 500},
]


@pytest.mark.parametrize("extra", HOSTILE_BUDGETS, ids=repr)
def test_hostile_budgets_get_4xx(api: Api, extra: dict[str, Any]) -> None:
    r = api.post("/v1/budgets", json=budget(**extra))
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert error_of(r)["field"] is not None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/forecast",
        "/v1/forecast?tenant=" + "x" * 300,
        "/v1/forecast?tenant=%00",
        "/v1/budgets?tenant=%00",
        "/v1/alerts?tenant=a%00b",
        "/v1/reports?tenant=acme&period=2024%00",
        "/v1/forecast?tenant=acme&queue=%ff%00",
        "/v1/reports?tenant=acme&period=9999-99",
        "/v1/reports?tenant=acme&period=9999",
        "/v1/reports?tenant=acme&period=9999-12",
        "/v1/reports?tenant=acme&period=0001-01",
        "/v1/reports?tenant=acme&from=0001-01-01&to=9000-12-31",
        "/v1/reports?tenant=acme&from=2000-01-01&to=2030-12-31",
        "/v1/reports?tenant=acme&from=2024-02-01&to=2024-01-01",
        "/v1/reports?tenant=acme&from=2024-01-01",
        "/v1/reports?tenant=acme&from=0000-01-01&to=9999-12-31",
        "/v1/reports?tenant=acme&period=2024-01&from=2024-01-01&to=2024-01-02",
        "/v1/alerts?limit=-1",
        "/v1/alerts?limit=abc",
        "/v1/budgets/" + "x" * 300,
        "/v1/budgets/%00",
        "/v1/budgets/%ff%fe/status",
        "/v1/budgets?include_inactive=maybe",
    ],
)
def test_hostile_queries_get_4xx(api: Api, path: str) -> None:
    r = api.get(path)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    error_of(r)


@pytest.mark.parametrize(
    "body",
    [{"tenant_id": "acme", "priority": "5"}, {"tenant_id": "acme", "priority": 99}, {"tenant_id": 5}, {}, []],
    ids=repr,
)
def test_hostile_checks_get_4xx(api: Api, body: Any) -> None:
    r = api.post("/v1/check", json=body)
    assert 400 <= r.status_code < 500, r.text
    error_of(r)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"\xff\xfe", "text/csv"),
        (b"not,a,header\n1,2,3\n", "text/csv"),
        (b'{"benchmarks": 1}', "application/json"),
        (b'[{"actual_cost": NaN}]', "application/json"),
        (b"[" * 50_000, "application/json"),
        (b"x", "application/xml"),
    ],
)
def test_hostile_calibration_gets_4xx(api: Api, content: bytes, kind: str) -> None:
    r = api.post("/v1/calibration", content=content, headers={"Content-Type": kind})
    assert 400 <= r.status_code < 500, r.text
    error_of(r)
