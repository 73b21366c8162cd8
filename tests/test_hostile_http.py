"""Hostile input to the HTTP API over memory, SQLite and PostgreSQL: job and budget
bodies, query and path parameters, checks and admissions, calibration uploads, the
body size limit and deep nesting.  Every answer is below 500; a 4xx is ``{"error":
{code, message, field}}`` naming the field where there is one, and after a 4xx the
database is unchanged (every table compared).

Explicit cases that must be refused (wrong types, NaN, huge numbers, strings for
numbers, deep nesting, invalid UTF-8, control characters, unknown fields, absurd
dates), then generated ones that must not crash (hypothesis, ``derandomize=True``):
POST /v1/jobs 40 per backend (x3); POST /v1/budgets 30 per backend; query/path
parameters 60 per backend; POST /v1/check and /v1/admit 30 per backend; plus 8
explicit size/nesting/streaming cases.  test_api_schemathesis.py holds the rest;
test_hostile_inputs.py the library entry points, parsers, configuration and CLI.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobbudget.service import BudgetService
from test_api_support import Api, budget, error_of, job, make_api
from test_hostile_inputs import HOSTILE_NUMBERS, HOSTILE_TEXT, SQL, fast, snapshot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
JSONABLE = [v for v in HOSTILE_NUMBERS if isinstance(v, int | float | str | list | dict | None)]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e308", "1e-30", "-0", "-0.0", "1e999999", "1" + "0" * 400, "1E+18",
               "1e18", "10000000000000000001", "true", '"12"', "[]", "{}", "null", "0.1e-999999"]  # fmt: skip
IDENT_FIELDS = ("job_id", "tenant_id", "queue_name", "job_type")
NUMBER_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes", "priority")
_IDS = itertools.count()
text_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))


def post_raw(api: Api, path: str, raw: str | bytes) -> Any:
    return api.post(path, content=raw, headers={"Content-Type": "application/json"})


def check_answer(api: Api, response: Any, before: object, field: str | None) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = error_of(response)
        if field is not None and error["code"] != "INVALID_JSON":  # NaN is not JSON at all
            assert error["field"] and (field in error["field"] or error["field"].startswith("batch[")), error
        assert snapshot(api.service.store) == before


# -- explicit cases: refused ----------------------------------------------------------
HOSTILE_JOB_VALUES: list[Any] = ["10", True, None, [], {}, -1, "NaN", 10**400]


@pytest.mark.parametrize("value", HOSTILE_JOB_VALUES, ids=repr)
def test_hostile_job_numbers_are_rejected(api: Api, value: Any) -> None:
    try:
        raw = json.dumps(job("h", cpu_time=value))
    except ValueError:
        raw = json.dumps(job("h")).replace('"cpu_time": 10', f'"cpu_time": {value}')
    r = post_raw(api, "/v1/jobs", raw)
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
    b'{"jobs": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",  # 10,000 levels under the default limit
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
    before = snapshot(api.service.store)
    r = post_raw(api, "/v1/jobs", raw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    error_of(r)
    assert snapshot(api.service.store) == before


def test_minus_zero_is_zero(api: Api) -> None:
    raw = json.dumps(job("z")).replace('"cpu_time": 10', '"cpu_time": -0.0')
    r = post_raw(api, "/v1/jobs", raw)
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


# -- generated cases: never a 5xx, nothing stored after a 4xx ----------------------
@fast(40)
@given(
    field=st.sampled_from(IDENT_FIELDS + NUMBER_FIELDS),
    text=text_values,
    raw=st.sampled_from(RAW_NUMBERS),
    as_text=st.booleans(),
)
def test_job_bodies(api: Api, field: str, text: str, raw: str, as_text: bool) -> None:
    before = snapshot(api.service.store)
    job_id = f"h{next(_IDS)}"
    if field in IDENT_FIELDS or as_text:
        body = json.dumps({**job(job_id), field: text})
    else:
        body = json.dumps({**job(job_id), field: 7}).replace(f'"{field}": 7', f'"{field}": {raw}')
    r = post_raw(api, "/v1/jobs", body)
    check_answer(api, r, before, field)
    if r.status_code == 200 and field in IDENT_FIELDS[1:3]:
        stored = api.service.get_job_cost(text if field == "tenant_id" else "acme", job_id)
        assert stored is not None and getattr(stored, field) == text  # exact, never normalised


@fast(30)
@given(
    field=st.sampled_from(["tenant_id", "queue_name", "amount", "currency", "tags", "warning_threshold"]),
    value=st.one_of(text_values, st.sampled_from(JSONABLE), st.dictionaries(text_values, text_values, max_size=2)),
)
def test_budget_bodies(api: Api, field: str, value: Any) -> None:
    before = snapshot(api.service.store)
    try:
        raw = json.dumps(budget(**{field: value}), allow_nan=False)
    except ValueError:
        return
    r = post_raw(api, "/v1/budgets", raw)
    check_answer(api, r, before, None)  # thresholds are checked together: any named field
    if r.status_code >= 400:
        assert error_of(r)["field"]
    if r.status_code == 201 and field in ("tenant_id", "queue_name"):
        assert r.json()[field] == value


QUERY_ROUTES = [
    "/v1/forecast?tenant={v}&queue={v}",
    "/v1/budgets?tenant={v}",
    "/v1/alerts?tenant={v}&limit={v}",
    "/v1/reports?tenant={v}&period={v}",
    "/v1/reports?tenant=acme&from={v}&to={v}",
    "/v1/dashboard?tenant={v}&top={v}",
    "/v1/budgets/{v}",
    "/v1/budgets/{v}/status",
    "/v1/budgets/{v}/trends?days={v}",
]
raw_params = st.one_of(
    text_values.filter(lambda t: "\ud800" not in t).map(lambda t: quote(t, safe="")),
    st.sampled_from(["%ff%fe", "%ed%a0%80", "%00", "%0a", "%E2%80%AE", "1e999999", "-0", "NaN", "9" * 400]),
)


@fast(60)
@given(route=st.sampled_from([*QUERY_ROUTES, "DELETE /v1/reservations/{v}", "POST /v1/alerts/{v}/ack"]), v=raw_params)
def test_query_and_path_parameters(api: Api, route: str, v: str) -> None:
    before = snapshot(api.service.store)
    method, _, path = route.rpartition(" ")
    call = {"": api.get, "DELETE": api.delete, "POST": api.post}[method]
    r = call(path.format(v=v) if v else path.format(v="x"))
    assert r.status_code < 500, (route, v, r.status_code, r.text[:300])
    if r.status_code >= 400:
        error_of(r)
        assert snapshot(api.service.store) == before


@fast(30)
@given(
    path=st.sampled_from(["/v1/check", "/v1/admit"]),
    field=st.sampled_from(["tenant_id", "queue_name", "priority", "estimated_cost", "ttl_seconds"]),
    value=st.one_of(text_values, st.sampled_from(JSONABLE)),
)
def test_check_and_admit_bodies(api: Api, path: str, field: str, value: Any) -> None:
    before, reserved = snapshot(api.service.store), api.service.open_reservations()
    body = {"tenant_id": "acme", "queue_name": "q", field: value}
    try:
        raw = json.dumps(body, allow_nan=True)
    except ValueError:
        return
    r = post_raw(api, path, raw)
    check_answer(api, r, before, None)
    if r.status_code >= 400:
        assert api.service.open_reservations() == reserved


@pytest.fixture
def small_api(service_factory: Callable[..., BudgetService]) -> Iterator[Api]:
    made = make_api(service_factory(), max_body_bytes=4096)
    with made.client:
        yield made


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 1000):
        yield data[i : i + 1000]


BIG_JOBS = json.dumps({"jobs": [job(f"j{i}", queue=SQL) for i in range(100)]}).encode()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("over the limit", 413),
        ("over the limit, streamed", 413),
        ("lying content-length", 400),
        ("deep nesting 10000", 400),
        ("deep nesting in a field", 400),  # too deep for any JSON parser: not JSON it can read
        ("under the limit", 200),
        ("bad content-length", 400),
        ("huge integer", 422),
    ],
)
def test_body_limit_and_nesting(small_api: Api, case: str, status: int) -> None:
    api = small_api
    before = snapshot(api.service.store)
    headers = {"Content-Type": "application/json"}
    if case == "over the limit":
        r = api.post("/v1/jobs", content=BIG_JOBS, headers=headers)
    elif case == "over the limit, streamed":
        r = api.post("/v1/jobs", content=_chunks(BIG_JOBS), headers=headers)
    elif case == "lying content-length":
        r = api.post("/v1/jobs", content=BIG_JOBS[:100], headers={**headers, "Content-Length": "-5"})
    elif case == "bad content-length":
        r = api.post("/v1/jobs", content=b"{}", headers={**headers, "Content-Length": "abc"})
    elif case == "deep nesting 10000":
        r = api.post("/v1/jobs", content=b"[" * 2000 + b"]" * 2000, headers=headers)
    elif case == "deep nesting in a field":
        nested = "[" * 1900 + "]" * 1900
        deep = json.dumps(job("d")).replace('"cpu_time": 10', f'"cpu_time": {nested}')
        r = api.post("/v1/jobs", content=deep, headers=headers)  # sent as JSON: the field's check answers
    elif case == "huge integer":
        r = post_raw(api, "/v1/jobs", json.dumps(job("d")).replace('"cpu_time": 10', '"cpu_time": 1' + "0" * 1500))
    else:
        r = api.post("/v1/jobs", json=job("ok", queue=SQL))
    assert r.status_code == status, (r.status_code, r.text[:300])
    if status >= 400:
        error = error_of(r)
        if status == 413:
            assert error["code"] == "PAYLOAD_TOO_LARGE" and "4096" in error["message"]
        if case == "huge integer":
            assert error["field"]
        assert snapshot(api.service.store) == before
    else:
        assert api.service.get_job_cost("acme", "ok").queue_name == SQL  # type: ignore[union-attr]
