"""Hostile input to every library entry point: ``JobMetrics(...)``, the service's
public methods (over memory, SQLite and PostgreSQL), the JSON Lines, CSV, SWF and
sacct parsers, the YAML configuration and the CLI.  Every rejection is a
``ValidationError`` naming the field (or a JobBudgetError), nothing is stored after
it, and nothing crashes.

Cases tried (hypothesis, ``derandomize=True``, ``max_examples`` set per test):
JobMetrics identifiers 300 and numbers 300; service methods 25 per backend (x3) x 11
calls; look-alike identifiers 14 explicit x 3 backends; JSON Lines 200 + 9 raw lines;
CSV 200 + 8 raw files; sacct 150 + SWF 150 + 6 explicit; YAML config 150 + 6 files;
CLI 5 files + 3 commands.

Decision on Unicode look-alikes: identifiers are exact strings.  Format characters
(zero-width joiner, RTL override: not ``isprintable()``), control characters and
surrounding white space are rejected; everything else (Cyrillic 'а', fullwidth,
combining marks, NFC vs NFD) is stored as a distinct exact string, never normalised,
so two tenants are never merged.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_support import runner
from jobbudget.cli import app
from jobbudget.config import Config
from jobbudget.domain.budget import Budget, BudgetPeriod
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import JobBudgetError, ValidationError
from jobbudget.domain.validation import MAX_USAGE
from jobbudget.importers import FIELDS, LineError, ParsedJob, parse_csv, parse_jsonl
from jobbudget.importers.sacct import parse_sacct
from jobbudget.importers.swf import parse_swf_trace
from jobbudget.ports import Store
from jobbudget.service import BudgetService
from jobbudget.storage.sql.store import SqlStore


def fast(examples: int) -> settings:
    return settings(
        max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


SQL = "'; DROP TABLE job_costs; --"
HOSTILE_TEXT = [
    "", " ", "a b", " a", "a\n", "a\nb", "a\r\nb", "\x00", "a\x00b", "\x1b[31m", "\x7f", "a\tb", SQL, '"', "'",
    'a"b', "a,b", "a|b", "\\", "аcme", "ａｃｍｅ", "a\u200db", "a\u202eb", "\u202e", "e\u0301", "é", "\ufeffa",
    "\ud800", "x" * 51, "x" * 101, "x" * 201, "x" * 10_000, "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "null",
    "None", "NaN", "1e308", "0", "\u00a0a", "a\u2028b", "🚀", "a" * 50,
]  # fmt: skip
HOSTILE_NUMBERS: list[Any] = [
    1e308, 1e-30, -0.0, float("nan"), float("inf"), float("-inf"), Decimal("1e999999"), Decimal("-0"),
    Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), 10**400, -1, True, False, None, "10", "1e3", [], {}, 1j,
    Decimal("1e-999999"), Decimal("1." + "1" * 60), 2**63, MAX_USAGE, MAX_USAGE + 1,
]  # fmt: skip
idents = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=60))
numbers = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(),
    st.integers(),
    st.decimals(),
    st.text(max_size=10),
    st.booleans(),
)
IDENT_FIELDS = {"job_id": 200, "tenant_id": 50, "queue_name": 100, "job_type": 100}
NUMBER_FIELDS = ("cpu_time", "memory_mb_seconds", "payload_bytes", "redis_ops", "network_bytes")
GOOD: dict[str, Any] = {
    "job_id": "j", "tenant_id": "acme", "queue_name": "q", "cpu_time": 1, "memory_mb_seconds": 1,
    "payload_bytes": 1, "redis_ops": 1, "network_bytes": 1,
}  # fmt: skip


def is_clean(value: str, max_len: int) -> bool:
    return 0 < len(value) <= max_len and value.isprintable() and value == value.strip()


_TABLES: dict[int, sa.MetaData] = {}


def snapshot(store: Store) -> dict[str, list[str]]:
    """Every table's rows (SQL) or every collection of the memory store, as text."""
    if isinstance(store, SqlStore):
        meta = _TABLES.get(id(store))
        if meta is None:
            meta = _TABLES[id(store)] = sa.MetaData(schema=store.schema)
            meta.reflect(store.engine)
        out: dict[str, list[str]] = {}
        with store.engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                out[name] = sorted(repr(row) for row in conn.execute(sa.select(table)))
        return out
    return {k: [repr(v)] for k, v in sorted(vars(store).items()) if isinstance(v, dict | list | set)}


@fast(300)
@given(field=st.sampled_from(sorted(IDENT_FIELDS)), value=idents)
def test_job_metrics_identifiers(field: str, value: str) -> None:
    try:
        metrics = JobMetrics(**{**GOOD, field: value})
    except ValidationError as exc:
        assert exc.field == field
        assert not is_clean(value, IDENT_FIELDS[field]) and not (field == "job_type" and value == "")
        return
    assert getattr(metrics, field) == value  # exact, never normalised
    assert is_clean(value, IDENT_FIELDS[field]) or (field == "job_type" and value == "")


@fast(300)
@given(field=st.sampled_from(NUMBER_FIELDS), value=numbers)
def test_job_metrics_numbers(field: str, value: Any) -> None:
    try:
        metrics = JobMetrics(**{**GOOD, field: value})
    except ValidationError as exc:
        assert exc.field == field
        return
    got = getattr(metrics, field)
    assert isinstance(got, Decimal) and got.is_finite() and not got.is_signed() and got <= MAX_USAGE
    assert not isinstance(value, bool | str)


SERVICE_CALLS: dict[str, Callable[[BudgetService, str], object]] = {
    "check": lambda s, v: s.check_budget_compliance(v, v),
    "admit": lambda s, v: s.admit(v, v, estimated_cost=v),
    "forecast": lambda s, v: s.get_forecast(v, v),
    "get_job_cost": lambda s, v: s.get_job_cost(v, v),
    "get_budget": lambda s, v: s.get_budget(v),
    "deactivate": lambda s, v: s.deactivate_budget(v, actor=v),
    "release": lambda s, v: s.release(v, tenant_id=v),
    "ack": lambda s, v: s.acknowledge_alert(v, v),
    "api_key": lambda s, v: s.create_api_key(role="tenant", tenant_id=v, name=v, actor=v),
    "estimate": lambda s, v: s.estimate_job_cost(v, v, v, tenant_id=v),
    "budget": lambda s, v: s.create_budget(Budget(tenant_id=v, queue_name=v, amount=v, period=BudgetPeriod(v))),
}


@pytest.fixture
def service(service_factory: Callable[..., BudgetService]) -> BudgetService:
    return service_factory()


@fast(25)
@given(call=st.sampled_from(sorted(SERVICE_CALLS)), value=idents.filter(lambda v: "\ud800" not in v))
def test_service_methods_reject_hostile_input_and_store_nothing(service: BudgetService, call: str, value: str) -> None:
    before, reserved = snapshot(service.store), service.open_reservations()
    try:
        SERVICE_CALLS[call](service, value)
    except JobBudgetError as exc:
        if isinstance(exc, ValidationError):
            assert exc.field, exc
        assert snapshot(service.store) == before
        assert service.open_reservations() == reserved


@pytest.mark.parametrize("call", ["ack", "deactivate", "get_budget", "get_job_cost"])
def test_lone_surrogate_lookups_are_rejected(service: BudgetService, call: str) -> None:
    """A lone surrogate (CLI argv bytes that are not UTF-8 decode to one) is refused
    as a lookup key, naming the field, before it reaches a database driver."""
    before = snapshot(service.store)
    with pytest.raises(ValidationError) as raised:
        SERVICE_CALLS[call](service, "a\ud800")
    assert raised.value.field in ("alert_id", "budget_id", "tenant_id", "job_id")
    assert snapshot(service.store) == before


LOOKALIKES = [
    "acme", "аcme", "ａｃｍｅ", "ACME", "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9"), "e\u0301\u0301",
    SQL, "a'b\"c", "x" * 50, "a\u200db", "a\u202eb", "a\x00b", "acme ",
]  # fmt: skip


def test_lookalike_tenants_stay_distinct_exact_strings(service_factory: Callable[..., BudgetService]) -> None:
    service = service_factory()
    accepted = []
    for i, tenant in enumerate(LOOKALIKES):
        try:
            metrics = JobMetrics(f"j{i}", tenant, tenant, i + 1, 0, 0, 0, 0)
        except ValidationError as exc:
            assert exc.field == "tenant_id" and not is_clean(tenant, 50)
            continue
        service.process_job_cost(metrics)
        service.create_budget(Budget(tenant_id=tenant, amount=Decimal(i + 1), period=BudgetPeriod("monthly")))
        accepted.append((i, tenant))
    assert len(accepted) == 10
    for i, tenant in accepted:
        cost = service.get_job_cost(tenant, f"j{i}")
        assert cost is not None and cost.tenant_id == tenant and cost.queue_name == tenant
        budgets = service.list_budgets(tenant)
        assert [(b.tenant_id, b.amount) for b in budgets] == [(tenant, Decimal(i + 1))]
        others = [t for _, t in accepted if t != tenant]
        assert all(service.get_job_cost(other, f"j{i}") is None for other in others)
    if isinstance(service.store, SqlStore):  # the injection text was data, not SQL
        assert "job_costs" in {t.split(".")[-1] for t in snapshot(service.store)}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # NaN: RAW_JSONL
    | st.text(max_size=20)
    | st.sampled_from(HOSTILE_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
RAW_JSONL = [
    "[" * 10_000 + "]" * 10_000,
    '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}",
    json.dumps(GOOD).replace('"cpu_time": 1', '"cpu_time": 1' + "0" * 5000),
    json.dumps(GOOD).replace('"cpu_time": 1', '"cpu_time": 1e999999'),
    json.dumps(GOOD).replace('"cpu_time": 1', '"cpu_time": NaN'),
    json.dumps(GOOD).replace('"cpu_time": 1', '"cpu_time": -Infinity'),
    json.dumps(GOOD).replace('"job_id": "j"', '"job_id": "\\ud800"'),
    json.dumps(GOOD).replace('"priority"', "").replace("}", ', "priority": 1' + "0" * 5000 + "}"),
    json.dumps(GOOD)[:-1] + ', "job_id": "k"}',
]


@fast(200)
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_jsonl_names_the_field(field: str, value: Any) -> None:
    (item,) = parse_jsonl([json.dumps({**GOOD, field: value})])
    if isinstance(item, LineError):  # the field, or a name inside it (resources.gpu, labels.name)
        assert item.field == field or item.field.startswith(field + "."), item
    elif field in IDENT_FIELDS:
        assert getattr(item.metrics, field) == ("" if value is None else value)


@pytest.mark.parametrize("raw", RAW_JSONL, ids=lambda r: r[:40])
def test_jsonl_raw_lines_give_line_errors(raw: str) -> None:
    (item,) = parse_jsonl([raw])
    assert isinstance(item, LineError), item
    if "cpu_time" in item.message or "priority" in item.message:
        assert item.field in ("cpu_time", "priority")


@fast(200)
@given(field=st.sampled_from(FIELDS), value=st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30)))
def test_csv_names_the_field_or_stores_the_exact_text(field: str, value: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    row = {**{k: str(v) for k, v in GOOD.items()}, "job_type": "", "priority": "", "timestamp": "", field: value}
    writer.writerows([list(row), list(row.values())])
    items = list(parse_csv(io.StringIO(out.getvalue(), newline="")))
    assert len(items) <= 1
    for item in items:
        if isinstance(item, LineError):
            assert item.field in (field, None), item  # None: the csv module's own error
        elif field in IDENT_FIELDS:
            assert getattr(item.metrics, field) == ("" if value is None else value)


HEADER = ",".join(GOOD) + "\n"
RAW_CSV = {
    "bom": ("\ufeff" + HEADER + "j,acme,q,1,1,1,1,1\n", None),
    "formula": (HEADER + "\"=cmd|' /C calc'!A0\",acme,q,1,1,1,1,1\n", None),
    "embedded newline": (HEADER + '"j\nk",acme,q,1,1,1,1,1\n', "job_id"),
    "unbalanced quote": (HEADER + '"j,acme,q,1,1,1,1,1\n', None),
    "quote mid cell": (HEADER + 'j"x,acme,q,1,1,1,1,1\n', None),
    "arabic digits": (HEADER + "j,acme,q,١٢,1,1,1,1\n", "cpu_time"),
    "huge priority": (HEADER.strip() + ",priority\nj,acme,q,1,1,1,1,1," + "9" * 5000 + "\n", "priority"),
    "bool number": (HEADER + "j,acme,q,true,1,1,1,1\n", "cpu_time"),
}


@pytest.mark.parametrize("name", sorted(RAW_CSV))
def test_csv_raw_tricks(name: str) -> None:
    text, field = RAW_CSV[name]
    items = list(parse_csv(io.StringIO(text, newline="")))
    assert all(isinstance(i, ParsedJob | LineError) for i in items)
    if field is not None:
        assert [getattr(i, "field", None) for i in items] == [field]
    if name == "formula":  # parsed and kept exact; neutralised only in CSV output
        assert [i.metrics.job_id for i in items if isinstance(i, ParsedJob)] == ["=cmd|' /C calc'!A0"]


SACCT_HEADER = "JobID|User|Partition|Start|End|ElapsedRaw|TotalCPU|AllocCPUS|MaxRSS|ReqMem"
SACCT_ROW = "1|{u}|{p}|2024-01-01T00:00:00|2024-01-01T01:00:00|{e}|00:10|1|1K|1M"
no_pipe = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30)).filter(
    lambda s: "|" not in s and "\n" not in s
)


@fast(150)
@given(user=no_pipe, partition=no_pipe, elapsed=st.sampled_from(["10", "1" * 5000, "١٢", "-1", "1e999999", "x"]))
def test_sacct_hostile_cells(user: str, partition: str, elapsed: str) -> None:
    items = list(parse_sacct([SACCT_HEADER, SACCT_ROW.format(u=user, p=partition, e=elapsed)]))
    assert len(items) == 1
    (item,) = items
    if isinstance(item, ParsedJob):
        assert (item.metrics.tenant_id, item.metrics.queue_name) == (user.strip(), partition.strip())
        assert elapsed == "10"
    else:
        assert isinstance(item, LineError) and item.field in (
            "User",
            "Partition",
            "tenant_id",
            "queue_name",
            "ElapsedRaw",
        )


no_space = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30)).map(lambda s: "".join(s.split()) or "u")


@fast(150)
@given(user=no_space, queue=no_space.filter(lambda q: q != "-1"))
def test_swf_hostile_identifiers(user: str, queue: str) -> None:
    line = f"1 0 0 10 1 -1 -1 1 -1 1024 -1 {user} -1 -1 1 -1 -1 -1 {{}} {queue}"
    (item,) = list(parse_swf_trace([line]))
    if isinstance(item, ParsedJob):
        assert (item.metrics.tenant_id, item.metrics.queue_name) == (f"user-{user}", queue)
    else:
        assert isinstance(item, LineError) and item.field in ("tenant_id", "queue_name"), item


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (["1 0 0 1e99999999 1 -1 -1 1 -1 1 -1 u -1 -1 1 -1 -1 -1"], "run_time"),  # used to hang
        (["1 0 0 10 1 -1 -1 1 -1 " + "1" * 5000 + " -1 u -1 -1 1 -1 -1 -1"], "requested_memory"),
        ([SACCT_HEADER, "1|u|p|0001-01-01T00:00:00+14:00|0001-01-01T00:00:00+14:00|1|00:10|1|1K|1M"], "End"),
        ([SACCT_HEADER, "1|u|p|2024-01-01T00:00:00|2024-01-01T01:00:00|1|" + "9" * 5000 + ":00|1|1K|1M"], "TotalCPU"),
        ([SACCT_HEADER, "1|u|p|2024-01-01T00:00:00|2024-01-01T01:00:00|1||" + "9" * 5000 + "||1M"], "AllocCPUS"),
        ([SACCT_HEADER, "1|u|p|2024-01-01T00:00:00|2024-01-01T01:00:00|1|00:10|1|" + "9" * 5000 + "K|1M"], "memory_mb_seconds"),
    ],
)  # fmt: skip
def test_importers_huge_numbers_name_the_field(lines: list[str], field: str) -> None:
    parse = parse_sacct if lines[0] == SACCT_HEADER else parse_swf_trace
    (item,) = list(parse(lines))  # type: ignore[operator]
    assert isinstance(item, LineError) and item.field == field, item


YAML_KEYS = ["database_schema", "flush_interval", "retention_days", "smtp_timeout", "cost_model",
             "cost_model.cpu_time_weight", "notification_channels", "redis_prefix", "log_level"]  # fmt: skip
YAML_VALUES = [".nan", ".inf", "-.inf", "1e999999", "1" + "0" * 400, "-0", "true", "null", "[]", "{}", "'a\\x00b'",
               f'"{SQL}"', '"\\u0430cme"', '"a\\u202eb"', "&a [*a]", '"\\ud800"', "0x10", "1_000", "~", "!!binary aGk="]  # fmt: skip


@fast(150)
@given(key=st.sampled_from(YAML_KEYS), value=st.sampled_from(YAML_VALUES) | st.text(max_size=20).map(json.dumps))
def test_yaml_config_names_the_key(tmp_path_factory: pytest.TempPathFactory, key: str, value: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    top, _, sub = key.partition(".")
    path.write_text(f"{top}: {{{sub}: {value}}}\n" if sub else f"{top}: {value}\n", encoding="utf-8")
    try:
        config = Config.from_yaml(path)
    except ValidationError as exc:
        assert exc.field == "config" or exc.field.startswith(top), exc
        return
    assert is_clean(config.redis_prefix, 40)
    assert config.database_schema is None or config.database_schema.isidentifier()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"smtp_from: \xff\xfe\n", "config"),
        (b"[" * 10_000 + b"]" * 10_000, "config"),
        (b"smtp_port: 1" + b"0" * 5000, "config"),
        (b'database_schema: "x\\"; DROP TABLE job_costs; --"\n', "database_schema"),
        (b'redis_prefix: "a\\0b"\n', "redis_prefix"),
        (b"flush_interval: .nan\n", "flush_interval"),
    ],
)
def test_yaml_config_files(tmp_path: Path, content: bytes, field: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as caught:
        Config.from_yaml(path)
    assert caught.value.field == field


CLI_FILES = {
    "bad.jsonl": (b'{"job_id": "\xff"}\n', "file"),
    "deep.jsonl": (b"[" * 10_000 + b"]" * 10_000 + b"\n", "record"),
    "nul.csv": (HEADER.encode() + b"j\x00,acme,q,1,1,1,1,1\n", "job_id"),
    "huge.jsonl": (json.dumps(GOOD).replace('"cpu_time": 1', '"cpu_time": 1' + "0" * 5000).encode(), "cpu_time"),
    "bad.swf": (b"1 0 0 10 1 -1 -1 1 -1 1024 -1 \xff -1 -1 1 -1 -1 -1\n", "file"),
}


@pytest.mark.parametrize("command", ["ingest", "import"])
@pytest.mark.parametrize("name", sorted(CLI_FILES))
def test_cli_rejects_hostile_files_and_stores_nothing(tmp_path: Path, command: str, name: str) -> None:
    content, field = CLI_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    fmt = name.rsplit(".", 1)[1]
    result = runner.invoke(app, [command, str(path), "--format", fmt, "--database-url", db, "--no-notify", "--json"])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit | None)
    assert field in result.output
    with BudgetService(Config(database_url=db)) as service:
        assert service.get_daily_costs(start=date(1970, 1, 1), end=date(9000, 1, 1)) == []
        assert service.get_job_cost("acme", "j") is None


@pytest.mark.parametrize(
    "args",
    [
        ["budget", "create", "--tenant", "a\x00b", "--amount", "10"],
        ["budget", "create", "--tenant", "acme", "--amount", "1e999999"],
        ["apikey", "create", "--role", "tenant", "--tenant", "аcme\u202e", "--name", "x"],
    ],
)
def test_cli_commands_reject_hostile_options(tmp_path: Path, args: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, [*args, "--database-url", db])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    with BudgetService(Config(database_url=db)) as service:
        assert service.list_budgets(include_inactive=True) == [] and service.list_api_keys() == []


def test_report_csv_neutralises_formula_queue_names(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    queues = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", 'q,"x"']
    with BudgetService(Config(database_url=db)) as service:
        service.process_job_costs([JobMetrics(f"j{i}", "acme", q, 10, 0, 0, 0, 0) for i, q in enumerate(queues)])
    result = runner.invoke(app, ["report", "acme", "--format", "csv", "--database-url", db])
    assert result.exit_code == 0, result.output
    cells = {row[1] for row in list(csv.reader(io.StringIO(result.stdout)))[1:]}
    assert cells == {"'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", 'q,"x"'}
