"""The pure job-metrics parsers: JSON Lines, CSV and SWF traces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobbudget.demo import PACKAGED_TRACE
from jobbudget.importers import (
    LineError,
    ParsedJob,
    Skipped,
    SwfOptions,
    open_input,
    parse_csv,
    parse_jsonl,
    parse_swf_trace,
)

GOOD = {
    "job_id": "job-123",
    "tenant_id": "acme-corp",
    "queue_name": "ml-training",
    "cpu_time": 15.2,
    "memory_mb_seconds": 2048,
    "payload_bytes": 51200,
    "redis_ops": 25,
    "network_bytes": 10240,
}
HEADER = "job_id,tenant_id,queue_name,cpu_time,memory_mb_seconds,payload_bytes,redis_ops,network_bytes"


def line(**changes: object) -> str:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def only(items: list[ParsedJob | LineError]) -> ParsedJob | LineError:
    assert len(items) == 1, items
    return items[0]


def error_of(text: str) -> LineError:
    item = only(list(parse_jsonl([text])))
    assert isinstance(item, LineError), item
    return item


# -- JSON Lines ---------------------------------------------------------------------


def test_jsonl_reads_numbers_exactly_and_defaults() -> None:
    text = '{"job_id": "a", "tenant_id": "t", "queue_name": "q", "cpu_time": 0.1, "memory_mb_seconds": 1e-7, ' + (
        '"payload_bytes": 123456789012345678.123456789, "redis_ops": 3, "network_bytes": 0}'
    )
    item = only(list(parse_jsonl([text])))
    assert isinstance(item, ParsedJob)
    m = item.metrics
    assert item.line == 1
    assert m.cpu_time == Decimal("0.1") and str(m.cpu_time) == "0.1"
    assert m.memory_mb_seconds == Decimal("1E-7")
    assert m.payload_bytes == Decimal("123456789012345678.123456789")  # a float would lose digits
    assert m.redis_ops == 3
    assert (m.job_type, m.priority, m.timestamp) == ("", 5, None)


def test_jsonl_optional_fields_and_timestamp_with_offset() -> None:
    item = only(list(parse_jsonl([line(job_type="train", priority=9, timestamp="2024-01-15T12:00:00+02:00")])))
    assert isinstance(item, ParsedJob)
    m = item.metrics
    assert m.job_type == "train" and m.priority == 9
    assert m.timestamp == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    zulu = only(list(parse_jsonl([line(timestamp="2024-01-15T12:00:00Z")])))
    assert isinstance(zulu, ParsedJob)
    assert zulu.metrics.timestamp == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    nulls = only(list(parse_jsonl([line(job_type=None, priority=None, timestamp=None)])))
    assert isinstance(nulls, ParsedJob)
    assert (nulls.metrics.job_type, nulls.metrics.priority, nulls.metrics.timestamp) == ("", 5, None)


def test_jsonl_line_numbers_count_blank_lines_and_bom() -> None:
    items = list(parse_jsonl(["\ufeff" + line(job_id="a") + "\n", "\n", "   \n", line(job_id="b") + "\r\n"]))
    assert [(type(i).__name__, i.line) for i in items] == [("ParsedJob", 1), ("ParsedJob", 4)]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (line(cpu_time="15.2"), "cpu_time", "must be a JSON number"),
        (line(redis_ops=True), "redis_ops", "must be a JSON number"),
        (line(network_bytes=None), "network_bytes", "is required"),
        (line(payload_bytes=...), "payload_bytes", "is required"),
        (line(memory_mb_seconds=-1), "memory_mb_seconds", "must not be negative"),
        (line(cpu_time=1e30), "cpu_time", "must be at most"),
        (line(colour="red"), "colour", "unknown field"),
        (line(priority=11), "priority", "between 0 and 10"),
        (line(priority=True), "priority", "whole number"),
        (line(priority=5.0), "priority", "whole number"),
        (line(timestamp="2024-01-15T12:00:00"), "timestamp", "UTC offset"),
        (line(timestamp="yesterday"), "timestamp", "ISO-8601"),
        (line(timestamp=1705320000), "timestamp", "ISO-8601"),
        (line(tenant_id=""), "tenant_id", "must not be empty"),
        (line(job_id=7), "job_id", "must be a string"),
        (line(queue_name=" q"), "queue_name", "white space"),
    ],
)
def test_jsonl_errors_name_the_field(text: str, field: str, words: str) -> None:
    err = error_of(text)
    assert err.line == 1
    assert err.field == field
    assert err.message.startswith(f"{field}: ")
    assert words in err.message
    assert str(err).startswith("line 1: ")


def test_jsonl_rejects_nan_duplicate_keys_bad_json_and_non_objects() -> None:
    nan = error_of(line().replace("15.2", "NaN"))
    assert "NaN" in nan.message
    dup = error_of(line()[:-1] + ', "cpu_time": 3}')
    assert dup.field == "cpu_time" and "twice" in dup.message
    bad = error_of('{"job_id": ')
    assert bad.field == "record" and bad.message.startswith("record: not valid JSON")
    arr = error_of("[1, 2]")
    assert arr.field == "record" and "JSON object" in arr.message


def test_jsonl_keeps_going_after_bad_lines() -> None:
    items = list(parse_jsonl([line(job_id="a"), "oops", line(job_id="c", cpu_time=-3), line(job_id="d")]))
    assert [(type(i).__name__, i.line) for i in items] == [
        ("ParsedJob", 1),
        ("LineError", 2),
        ("LineError", 3),
        ("ParsedJob", 4),
    ]


# -- CSV ----------------------------------------------------------------------------


def test_csv_reads_rows_exactly_with_optional_columns() -> None:
    rows = [
        HEADER + ",job_type,priority,timestamp\n",
        "a,t,q,0.1,2048,51200,25,10240,train,7,2024-01-15T12:00:00Z\n",
        "b,t,q, 1E+3 ,0,0,0,0,,,\n",
    ]
    items = list(parse_csv(rows))
    assert all(isinstance(i, ParsedJob) for i in items)
    first, second = (i.metrics for i in items if isinstance(i, ParsedJob))
    assert [i.line for i in items] == [2, 3]
    assert first.cpu_time == Decimal("0.1") and str(first.cpu_time) == "0.1"
    assert (first.job_type, first.priority) == ("train", 7)
    assert first.timestamp == datetime(2024, 1, 15, 12, tzinfo=UTC)
    assert second.cpu_time == Decimal(1000)
    assert (second.job_type, second.priority, second.timestamp) == ("", 5, None)


def test_csv_columns_may_come_in_any_order_and_blank_rows_are_skipped() -> None:
    rows = ["\ufeffnetwork_bytes,redis_ops,payload_bytes,memory_mb_seconds,cpu_time,queue_name,tenant_id,job_id\n"]
    rows += ["\n", "1,2,3,4,5,q,t,j\n"]
    item = only(list(parse_csv(rows)))
    assert isinstance(item, ParsedJob) and item.line == 3
    m = item.metrics
    assert (m.job_id, m.tenant_id, m.network_bytes, m.cpu_time) == ("j", "t", 1, 5)


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("a,t,q,abc,0,0,0,0", "cpu_time", "must be a number"),
        ("a,t,q,nan,0,0,0,0", "cpu_time", "must be a number"),
        ("a,t,q,1,-5,0,0,0", "memory_mb_seconds", "must not be negative"),
        ("a,t,q,1,0,,0,0", "payload_bytes", "is required"),
        ("a,,q,1,0,0,0,0", "tenant_id", "must not be empty"),
        ("a,t,q,1,0,0,0", "row", "8 columns"),
    ],
)
def test_csv_bad_rows_report_line_and_field(row: str, field: str, words: str) -> None:
    items = list(parse_csv([HEADER + "\n", "ok,t,q,1,0,0,0,0\n", row + "\n", "ok2,t,q,1,0,0,0,0\n"]))
    assert [type(i).__name__ for i in items] == ["ParsedJob", "LineError", "ParsedJob"]
    err = items[1]
    assert isinstance(err, LineError)
    assert err.line == 3
    assert err.field == field
    assert words in err.message and err.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("cells", "field", "words"),
    [
        ("7.5,", "priority", "whole number"),
        ("x,", "priority", "whole number"),
        ("5,2024-01-15 12:00:00", "timestamp", "UTC offset"),
    ],
)
def test_csv_priority_and_timestamp_errors(cells: str, field: str, words: str) -> None:
    item = only(list(parse_csv([HEADER + ",priority,timestamp\n", "a,t,q,1,0,0,0,0," + cells + "\n"])))
    assert isinstance(item, LineError) and item.field == field and words in item.message


def test_csv_bad_header_is_reported_on_its_line_and_stops() -> None:
    unknown = list(parse_csv([HEADER + ",colour\n", "a,t,q,1,0,0,0,0,red\n"]))
    assert len(unknown) == 1 and isinstance(unknown[0], LineError)
    assert (unknown[0].line, unknown[0].field) == (1, "colour") and "unknown column" in unknown[0].message
    missing = list(parse_csv(["job_id,tenant_id,queue_name,cpu_time\n", "a,t,q,1\n"]))
    assert len(missing) == 1 and isinstance(missing[0], LineError)
    assert missing[0].field == "memory_mb_seconds" and "missing" in missing[0].message
    twice = only(list(parse_csv([HEADER + ",cpu_time\n"])))
    assert isinstance(twice, LineError) and twice.field == "cpu_time" and "twice" in twice.message


def test_csv_quoted_multiline_cell_reports_the_physical_line() -> None:
    rows = [HEADER + ",job_type\n", 'a,t,q,1,0,0,0,0,"two\n', 'lines"\n', "b,t,q,-1,0,0,0,0,x\n"]
    items = list(parse_csv(rows))
    assert [type(i).__name__ for i in items] == ["LineError", "LineError"]
    assert (items[0].line, items[0].field) == (3, "job_type")  # a newline is not printable
    assert (items[1].line, items[1].field) == (4, "cpu_time")


def test_empty_inputs_yield_nothing() -> None:
    assert list(parse_csv([])) == []
    assert list(parse_jsonl(["", "\n"])) == []


# -- SWF traces -------------------------------------------------------------------

EXTENDED = (
    "1 1356996695 71 1164297 12 1 1024 12 1209600 91268055040 1 101 1 1 -1 1 1 1 "
    "{1129,1129,1129,1129,1129,1129,1129,1129,1129,1129,1129,1129} q_2w 1:ppn=12"
)


def parse_swf(lines: list[str], prefix: str = "swf") -> list[ParsedJob | LineError | Skipped]:
    return list(parse_swf_trace(lines, SwfOptions(prefix=prefix)))


def test_swf_extended_line_maps_as_the_data_readme_says() -> None:
    job = only(parse_swf([EXTENDED], prefix="wagap"))  # type: ignore[arg-type]
    assert isinstance(job, ParsedJob)
    m = job.metrics
    assert m.job_id == "wagap-1" and m.tenant_id == "user-101" and m.queue_name == "q_2w"
    assert m.cpu_time == 1164297 * 12
    assert m.memory_mb_seconds == Decimal(91268055040) * 1164297 / 1048576  # exact: 87040 MB
    assert m.memory_mb_seconds == 87040 * 1164297
    assert job.submitted == datetime.fromtimestamp(1356996695, UTC)
    assert m.timestamp == job.submitted + timedelta(seconds=71 + 1164297)
    assert (m.payload_bytes, m.redis_ops, m.network_bytes) == (0, 0, 0)


def test_swf_standard_trace_uses_header_start_and_kilobytes_per_processor() -> None:
    lines = [
        "; UnixStartTime: 1000000000\n",
        ";  Note: standard SWF\n",
        "5 100 10 60 4 -1 -1 4 120 2048 1 7 1 -1 3 -1 -1 -1\n",
        "6 200 0 -1 4 -1 -1 4 120 2048 0 7 1 -1 3 -1 -1 -1\n",  # never ran: skipped
        "8 oops\n",
    ]
    job, skipped, err = parse_swf(lines)
    assert isinstance(job, ParsedJob) and isinstance(skipped, Skipped) and isinstance(err, LineError)
    m = job.metrics
    assert (m.job_id, m.tenant_id, m.queue_name) == ("swf-5", "user-7", "q3")
    assert m.cpu_time == 240
    assert m.memory_mb_seconds == Decimal(2048 * 4 * 60) / 1024  # 2 MB per processor, 4 of them, 60 s
    assert job.submitted == datetime.fromtimestamp(1000000100, UTC)
    assert m.timestamp == datetime.fromtimestamp(1000000170, UTC)
    assert err.line == 5 and "18 fields" in err.message


def test_swf_unknown_memory_counts_as_zero() -> None:
    job = only(parse_swf([EXTENDED.replace("91268055040", "-1")]))  # type: ignore[arg-type]
    assert isinstance(job, ParsedJob) and job.metrics.memory_mb_seconds == 0


def test_swf_reads_the_whole_metacentrum_trace() -> None:
    with open_input(str(PACKAGED_TRACE)) as fh:  # shipped in the package, gzip-compressed
        items = parse_swf(list(fh), prefix="wagap")
    jobs = [i for i in items if isinstance(i, ParsedJob)]
    assert not [i for i in items if isinstance(i, LineError)]
    assert len(jobs) == 17898  # 17,900 lines, two never ran (negative run time)
    assert len({j.metrics.tenant_id for j in jobs}) <= 75
    assert {j.metrics.queue_name for j in jobs} <= {
        "q_2h", "q_4h", "q_1d", "q_2d", "q_4d", "q_1w", "q_2w", "q_2w_plus", "backfill", "ops", "priority_long"
    }  # fmt: skip
    first = min(j.submitted for j in jobs if j.submitted is not None)
    assert first.astimezone(UTC).date().isoformat() == "2012-12-31"
