"""The trace importers' parsers: SWF (standard and extended) and Slurm sacct."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA_DIR, IN_CI
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import ValidationError
from jobbudget.importers import (
    SacctOptions,
    Skipped,
    SwfOptions,
    parse_sacct,
    parse_slurm_duration,
    parse_slurm_size,
    parse_slurm_time,
    parse_swf_trace,
)
from jobbudget.importers.common import ImportItem, make_metrics
from jobbudget.ingest import LineError, ParsedJob

TRACE = DATA_DIR / "traces" / "alea_wagap-2013.swf"

STANDARD = """\
; Version: 2.2
; Computer: Test cluster
; UnixStartTime: 1000000000
; TimeZoneString: Europe/Berlin
; Queues: 1 = batch, 2 = express
; Partitions: 1 = main
;
1 0 10 100 4 -1 2048 4 200 1024 1 7 3 1 1 1 -1 -1
2 50 -1 3600 2 -1 -1 2 4000 -1 1 8 3 1 2 1 -1 -1
3 60 5 -1 4 -1 -1 4 200 1024 5 7 3 1 1 1 -1 -1
4 70 5 0 4 -1 -1 4 200 1024 5 7 3 1 9 2 -1 -1
"""


def jobs(items: list[ImportItem]) -> list[JobMetrics]:
    return [i.metrics for i in items if isinstance(i, ParsedJob)]


# -- SWF ------------------------------------------------------------------------------


def test_standard_swf_relative_times_kb_per_processor_and_queue_names() -> None:
    items = list(parse_swf_trace(STANDARD.splitlines(), SwfOptions(prefix="t")))
    first, second = jobs(items)
    assert first.job_id == "t-1" and first.tenant_id == "user-7" and first.queue_name == "batch"
    assert first.cpu_time == Decimal(400)  # 100 s x 4 processors
    assert first.memory_mb_seconds == Decimal(400)  # 1024 KB x 4 processors x 100 s = 400 MB.s
    assert first.timestamp == datetime.fromtimestamp(1_000_000_000 + 0 + 10 + 100, UTC)
    # requested memory unknown: used memory (2048 KB? no, -1 here) -> 0; wait -1 -> 0
    assert second.queue_name == "express" and second.memory_mb_seconds == 0
    assert second.timestamp == datetime.fromtimestamp(1_000_000_000 + 50 + 3600, UTC)
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [(s.line, s.reason) for s in skipped] == [
        (10, "never ran (run time -1 or 0)"),
        (11, "never ran (run time -1 or 0)"),
    ]


def test_standard_swf_partition_and_group_and_unnamed_queue() -> None:
    text = STANDARD.replace("; Queues: 1 = batch, 2 = express\n", "")
    items = jobs(list(parse_swf_trace(text.splitlines(), SwfOptions(prefix="t", tenant_from="group"))))
    assert [m.queue_name for m in items] == ["q1", "q2"]
    assert items[0].tenant_id == "group-3"
    parts = jobs(list(parse_swf_trace(STANDARD.splitlines(), SwfOptions(queue_from="partition"))))
    assert [m.queue_name for m in parts] == ["main", "main"]
    assert parts[0].job_id == "swf-1"


def test_swf_used_memory_when_nothing_was_requested() -> None:
    line = "5 0 0 10 2 -1 512 2 100 -1 1 7 3 1 1 1 -1 -1"
    (m,) = jobs(list(parse_swf_trace(["; UnixStartTime: 1000000000", line])))
    assert m.memory_mb_seconds == Decimal(10)  # 512 KB x 2 processors x 10 s / 1024


def test_swf_memory_unit_override() -> None:
    line = "5 1000000100 0 10 2 -1 -1 2 100 1048576 1 7 3 1 1 1 -1 -1"
    (auto,) = jobs(list(parse_swf_trace([line])))  # no header: absolute times; 18 fields: KB
    assert auto.timestamp == datetime.fromtimestamp(1_000_000_110, UTC)
    assert auto.memory_mb_seconds == Decimal(20480)  # 1 GiB per processor x 2 x 10 s
    (as_bytes,) = jobs(list(parse_swf_trace([line], SwfOptions(memory_unit="bytes"))))
    assert as_bytes.memory_mb_seconds == Decimal(10)  # 1 MiB for the job x 10 s


def test_swf_absolute_times_when_submit_is_past_the_start_header() -> None:
    lines = ["; UnixStartTime: 1000000000", "1 1356996147 0 10 1 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1"]
    (m,) = jobs(list(parse_swf_trace(lines)))
    assert m.timestamp == datetime.fromtimestamp(1356996157, UTC)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("1 0 0 ten 1 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1", "run_time"),
        ("1 x 0 10 1 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1", "submit_time"),
        ("1 0 0 10 1 -1 -1 1 100 lots 1 7 3 1 1 1 -1 -1", "requested_memory"),
        ("1 0 0 10", "record"),
        ("1 0 0 10 1 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1".replace(" 1 7 ", " 1 " + "7" * 60 + " "), "tenant_id"),
        ("1 0 0 99999999999999999999 1 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1", "submit_time"),
        ("1 0 0 9999999999 999999999 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1", "cpu_time"),
    ],
)
def test_swf_bad_lines_name_the_field_and_line(line: str, field: str) -> None:
    items = list(parse_swf_trace(["; UnixStartTime: 1000000000", "", line]))
    (error,) = items
    assert isinstance(error, LineError), error
    assert error.line == 3 and error.field == field, error
    assert str(error).startswith("line 3: ")


def test_swf_decimal_numbers_are_read() -> None:
    (m,) = jobs(list(parse_swf_trace(["1 1000000000 0 10.0 2 -1 -1 1 100 -1 1 7 3 1 1 1 -1 -1"])))
    assert m.cpu_time == 20


def test_extended_trace_first_lines() -> None:
    if not TRACE.is_file():
        if IN_CI:
            pytest.fail(f"data set missing in CI: {TRACE}")
        pytest.skip(f"data set missing: {TRACE}")
    with TRACE.open(encoding="utf-8") as fh:
        items = list(parse_swf_trace(islice(fh, 3), SwfOptions(prefix="wagap")))
    first, second, _ = jobs(items)
    # 0 1356996147 0 56011 64 ... 68719476736 (bytes) ... user 62 ... q_1d
    assert first.job_id == "wagap-0" and first.tenant_id == "user-62" and first.queue_name == "q_1d"
    assert first.cpu_time == Decimal(56011 * 64)
    assert first.memory_mb_seconds == Decimal(65536 * 56011)  # 64 GiB for the job x run time
    assert first.timestamp == datetime.fromtimestamp(1356996147 + 56011, UTC)
    assert second.queue_name == "q_2w" and second.tenant_id == "user-101"
    assert second.timestamp == datetime.fromtimestamp(1356996695 + 71 + 1164297, UTC)


def test_extended_trace_whole_file_agrees_with_the_demo_reader() -> None:
    if not TRACE.is_file():
        if IN_CI:
            pytest.fail(f"data set missing in CI: {TRACE}")
        pytest.skip(f"data set missing: {TRACE}")
    from jobbudget.ingest import SwfJob, parse_swf

    with TRACE.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    items = list(parse_swf_trace(lines, SwfOptions(prefix="wagap")))
    assert not [i for i in items if isinstance(i, LineError)]
    new = {m.job_id: m for m in jobs(items)}
    old = [j.metrics for j in parse_swf(lines, prefix="wagap") if isinstance(j, SwfJob)]
    assert len(new) == 17898 and sum(isinstance(i, Skipped) for i in items) == 2
    for m in old:
        n = new[m.job_id]
        assert (n.tenant_id, n.queue_name, n.cpu_time, n.memory_mb_seconds, n.timestamp) == (
            m.tenant_id,
            m.queue_name,
            m.cpu_time,
            m.memory_mb_seconds,
            m.timestamp,
        )


def test_make_metrics_equals_the_constructor() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    fast = make_metrics("j-1", "t", "q", Decimal(10), Decimal("0.5"), ts)
    slow = JobMetrics("j-1", "t", "q", Decimal(10), Decimal("0.5"), Decimal(0), Decimal(0), Decimal(0), timestamp=ts)
    assert fast == slow and repr(fast) == repr(slow)
    for args in (
        ("", "t", "q", Decimal(1), Decimal(1)),
        ("j", "t t ", "q", Decimal(1), Decimal(1)),
        ("j", "t", "q\n", Decimal(1), Decimal(1)),
        ("j", "t", "q", Decimal("1e19"), Decimal(1)),
        ("j", "t", "q", Decimal(1), Decimal("-1")),
        ("j", "t", "q", Decimal(1), Decimal("1." + "1" * 45)),
    ):
        with pytest.raises(ValidationError):
            make_metrics(*args, ts)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            JobMetrics(*args, Decimal(0), Decimal(0), Decimal(0), timestamp=ts)  # type: ignore[arg-type, misc]


# -- sacct --------------------------------------------------------------------------

HEADER = (
    "JobID|JobIDRaw|User|Group|Account|Partition|QOS|Submit|Start|End|Elapsed|ElapsedRaw|TotalCPU|"
    "CPUTimeRAW|MaxRSS|ReqMem|AllocCPUS|AllocTRES|State|ExitCode|NNodes"
)
SACCT = f"""\
{HEADER}
100|100|alice|physics|proj1|cpu|normal|2026-11-02T09:00:00|2026-11-02T10:00:00|2026-11-02T11:00:00|01:00:00|3600|01:30:00|14400||4000M|4|billing=4,cpu=4,mem=4000M,node=1|COMPLETED|0:0|1
100.batch|100.batch||||||2026-11-02T10:00:00|2026-11-02T10:00:00|2026-11-02T11:00:00|01:00:00|3600|01:29:59.500|14400|1048576K||4|cpu=4,mem=4000M,node=1|COMPLETED|0:0|1
100.extern|100.extern||||||2026-11-02T10:00:00|2026-11-02T10:00:00|2026-11-02T11:00:00|01:00:00|3600|00:00.500|14400|512K||4|cpu=4,node=1|COMPLETED|0:0|1
101|101|bob|chem|proj2|gpu|high|2026-11-02T09:00:00|2026-11-02T09:30:00|2026-11-02T09:40:00|00:10:00|600||600||2Gn|2||FAILED|1:0|2
102|102|carol|chem|proj2|cpu|normal|2026-11-02T09:00:00|2026-11-02T09:30:00|Unknown|00:10:00|600|||||8||RUNNING|0:0|1
103|103|dave|chem|proj2|cpu|normal|2026-11-02T09:00:00|Unknown|Unknown|00:00:00|0|||||8||PENDING|0:0|1
104|104|erin|chem|proj2|cpu|normal|2026-11-02T09:00:00|None|2026-11-02T09:05:00|00:00:00|0|||||8||CANCELLED by 0|0:0|1
"""


def test_sacct_folds_steps_and_maps_fields() -> None:
    items = list(parse_sacct(SACCT.splitlines()))
    alice, bob = jobs(items)
    assert alice.job_id == "slurm-100" and alice.tenant_id == "alice" and alice.queue_name == "cpu"
    assert alice.cpu_time == Decimal(5400)  # parent TotalCPU 01:30:00 >= steps' 5399.5 + 0.5
    assert alice.memory_mb_seconds == Decimal(1024 * 3600)  # max step MaxRSS 1 GiB x 3600 s
    assert alice.timestamp == datetime(2026, 11, 2, 11, tzinfo=UTC)
    assert bob.cpu_time == Decimal(600)  # no TotalCPU: CPUTimeRAW
    assert bob.memory_mb_seconds == Decimal(2048 * 2 * 600)  # ReqMem 2G per node x 2 nodes x 600 s
    skipped = [(i.line, i.reason) for i in items if isinstance(i, Skipped)]
    assert skipped == [
        (6, "not finished (RUNNING)"),
        (7, "not finished (PENDING)"),
        (8, "never started (CANCELLED by 0)"),
    ]


def test_sacct_tenant_queue_sources_and_timezone() -> None:
    opts = SacctOptions(prefix="c1", tenant_from="account", queue_from="qos", timezone="Europe/Prague")
    alice, bob = jobs(list(parse_sacct(SACCT.splitlines(), opts)))
    assert (alice.job_id, alice.tenant_id, alice.queue_name) == ("c1-100", "proj1", "normal")
    assert bob.queue_name == "high"
    assert alice.timestamp == datetime(2026, 11, 2, 10, tzinfo=UTC)  # 11:00 CET
    group = jobs(list(parse_sacct(SACCT.splitlines(), SacctOptions(tenant_from="group"))))
    assert [m.tenant_id for m in group] == ["physics", "chem"]
    with pytest.raises(ValidationError, match="timezone"):
        SacctOptions(timezone="Mars/Olympus")


def test_sacct_columns_by_name_any_order_and_fallbacks() -> None:
    text = [
        "State|End|Start|Partition|User|JobID|AllocCPUS|Elapsed",
        "COMPLETED|2026-11-02T11:00:00|2026-11-02T10:00:00|cpu|alice|7|4|1-00:00:00",
        "COMPLETED|2026-11-02T11:00:00|2026-11-02T10:00:00|cpu|alice|8|4|",
    ]
    a, b = jobs(list(parse_sacct(text)))
    assert a.cpu_time == Decimal(4 * 86400) and a.memory_mb_seconds == 0
    assert b.cpu_time == Decimal(4 * 3600)  # elapsed from End - Start


def test_sacct_reqmem_per_core_and_alloctres() -> None:
    text = [
        "JobID|User|Partition|End|ElapsedRaw|AllocCPUS|ReqMem|AllocTRES",
        "1|u|p|2026-11-02T11:00:00|10|4|1000Mc|",
        "2|u|p|2026-11-02T11:00:00|10|4||cpu=4,mem=3G,node=1",
        "3|u|p|2026-11-02T11:00:00|10|4|512|",
    ]
    one, two, three = jobs(list(parse_sacct(text)))
    assert one.memory_mb_seconds == Decimal(4000 * 10)
    assert two.memory_mb_seconds == Decimal(3072 * 10)
    assert three.memory_mb_seconds == Decimal(512 * 10)  # a bare ReqMem is MB


@pytest.mark.parametrize(
    ("row", "field", "line"),
    [
        ("1|u|p|yesterday|10|01:00:00", "End", 2),
        ("1|u|p|2026-11-02T11:00:00|ten|01:00:00", "ElapsedRaw", 2),
        ("1|u|p|2026-11-02T11:00:00|10|1 hour", "TotalCPU", 2),
        ("1||p|2026-11-02T11:00:00|10|01:00:00", "User", 2),
        ("1|u||2026-11-02T11:00:00|10|01:00:00", "Partition", 2),
        ("1|u|p|2026-11-02T11:00:00|10", "row", 2),
        ("|u|p|2026-11-02T11:00:00|10|01:00:00", "JobID", 2),
        ("1.batch|u|p|2026-11-02T11:00:00|10|01:00:00", "JobID", 2),
        ("1|u|p|2026-11-02T11:00:00|10|\n1.batch|||2026-11-02T11:00:00|10|soon", "TotalCPU", 3),
    ],
)
def test_sacct_bad_lines_name_the_column_and_line(row: str, field: str, line: int) -> None:
    items = list(parse_sacct(["JobID|User|Partition|End|ElapsedRaw|TotalCPU", *row.split("\n")]))
    (error,) = items
    assert isinstance(error, LineError), error
    assert (error.line, error.field) == (line, field), error


def test_sacct_bad_header_stops() -> None:
    (error,) = list(parse_sacct(["JobID|Partition|End", "1|p|2026-11-02T11:00:00"]))
    assert isinstance(error, LineError) and error.line == 1 and error.field == "User"
    assert "rest of the file was not read" in error.message


def test_slurm_units() -> None:
    assert parse_slurm_duration("x", "1-02:03:04") == Decimal(93784)
    assert parse_slurm_duration("x", "05:06.789") == Decimal("306.789")
    assert parse_slurm_duration("x", "00:00:01.5") == Decimal("1.5")
    assert parse_slurm_duration("x", "42") == Decimal(42)
    assert parse_slurm_duration("x", "Unknown") is None and parse_slurm_duration("x", "") is None
    assert parse_slurm_size("x", "1234K") == (Decimal(1234 * 1024), "")
    assert parse_slurm_size("x", "12.5M") == (Decimal("12.5") * 1048576, "")
    assert parse_slurm_size("x", "3G") == (Decimal(3 * 1024**3), "")
    assert parse_slurm_size("x", "4000Mc") == (Decimal(4000 * 1048576), "c")
    assert parse_slurm_size("x", "4Gn") == (Decimal(4 * 1024**3), "n")
    assert parse_slurm_size("x", "100") == (Decimal(100), "")
    assert parse_slurm_size("x", "None") is None
    assert parse_slurm_time("x", "2026-11-02T10:00:00", UTC) == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert parse_slurm_time("x", "Unknown", UTC) is None
    for bad in ("1:2:3:4", "1h", "-5"):
        with pytest.raises(ValidationError):
            parse_slurm_duration("x", bad)
    with pytest.raises(ValidationError):
        parse_slurm_size("x", "3Q")


# -- garbage never crashes a parser ----------------------------------------------------

_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80), max_size=8)
_swf_like = st.lists(
    st.lists(
        st.sampled_from(["-1", "0", "1", "x", "1e400", "9" * 30, "{1,2}", "q", "-5", "1.5", "nan"]), max_size=22
    ).map(" ".join),
    max_size=6,
)
_sacct_like = st.lists(
    st.lists(
        st.sampled_from(
            ["", "1", "1.batch", "Unknown", "None", "2026-11-02T10:00:00", "01:00", "5G", "x", "-1", "9" * 30]
        ),
        min_size=6,
        max_size=6,
    ).map("|".join),
    max_size=6,
)


def _check(items: list[ImportItem]) -> None:
    for item in items:
        assert isinstance(item, (ParsedJob, LineError, Skipped)), item
        assert item.line >= 1


@settings(max_examples=200, deadline=None)
@given(_lines)
def test_swf_never_crashes_on_garbage(lines: list[str]) -> None:
    _check(list(parse_swf_trace(lines)))


@settings(max_examples=200, deadline=None)
@given(_swf_like)
def test_swf_never_crashes_on_number_like_garbage(lines: list[str]) -> None:
    _check(list(parse_swf_trace(["; UnixStartTime: 1000", *lines])))


@settings(max_examples=200, deadline=None)
@given(_lines)
def test_sacct_never_crashes_on_garbage(lines: list[str]) -> None:
    _check(list(parse_sacct([HEADER, *lines])))


@settings(max_examples=200, deadline=None)
@given(_sacct_like)
def test_sacct_never_crashes_on_field_garbage(lines: list[str]) -> None:
    _check(list(parse_sacct(["JobID|User|Partition|End|ElapsedRaw|TotalCPU", *lines])))
