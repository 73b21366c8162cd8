"""Hostile input to the HTTP API over memory, SQLite and PostgreSQL: job and budget
bodies, query and path parameters, checks and admissions, the body size limit and
deep nesting.  Every answer is below 500; a 4xx is ``{"error": {code, message,
field}}`` naming the field where there is one, and after a 4xx the database is
unchanged (every table compared).

Cases tried (hypothesis, ``derandomize=True``): POST /v1/jobs 40 per backend (x3);
POST /v1/budgets 30 per backend; query/path parameters 60 per backend; POST
/v1/check and /v1/admit 30 per backend; plus 8 explicit size/nesting/streaming
cases.  test_api_hostile.py and test_api_schemathesis.py hold the rest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobbudget.service import BudgetService
from test_api_support import Api, budget, error_of, job, make_api
from test_hostile_inputs import HOSTILE_NUMBERS, HOSTILE_TEXT, SQL, snapshot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
JSONABLE = [v for v in HOSTILE_NUMBERS if isinstance(v, int | float | str | list | dict | None)]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e308", "1e-30", "-0", "-0.0", "1e999999", "1" + "0" * 400, "1E+18",
               "1e18", "10000000000000000001", "true", '"12"', "[]", "{}", "null", "0.1e-999999"]  # fmt: skip
IDENT_FIELDS = ("job_id", "tenant_id", "queue_name", "job_type")
NUMBER_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes", "priority")
_IDS = itertools.count()
text_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))


def fast(examples: int) -> settings:
    return settings(
        max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


def post_raw(api: Api, path: str, raw: str | bytes) -> Any:
    return api.post(path, content=raw, headers={"Content-Type": "application/json"})


def check_answer(api: Api, response: Any, before: object, field: str | None) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = error_of(response)
        if field is not None and error["code"] != "INVALID_JSON":  # NaN is not JSON at all
            assert error["field"] and (field in error["field"] or error["field"].startswith("batch[")), error
        assert snapshot(api.service.store) == before


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


def test_deep_nesting_10000_levels_under_the_default_limit(api: Api) -> None:
    before = snapshot(api.service.store)
    r = post_raw(api, "/v1/jobs", b'{"jobs": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert 400 <= r.status_code < 500, r.text[:300]
    error_of(r)
    assert snapshot(api.service.store) == before
