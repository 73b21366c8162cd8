"""The trace importers' parsers: SWF (standard and extended) and Slurm sacct."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobbudget.demo import PACKAGED_TRACE
from jobbudget.domain.cost import JobMetrics
from jobbudget.domain.errors import ValidationError
from jobbudget.importers import (
    ImportItem,
    LineError,
    ParsedJob,
    SacctOptions,
    Skipped,
    SwfOptions,
    open_input,
    parse_sacct,
    parse_slurm_duration,
    parse_slurm_size,
    parse_slurm_time,
    parse_swf_trace,
    sacct_columns,
)

TRACE = PACKAGED_TRACE

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
    with open_input(str(TRACE)) as fh:
        items = list(parse_swf_trace(islice(fh, 3), SwfOptions(prefix="wagap")))
    first, second, _ = jobs(items)
    # 0 1356996147 0 56011 64 ... 68719476736 (bytes) ... user 62 ... q_1d
    assert first.job_id == "wagap-0" and first.tenant_id == "user-62" and first.queue_name == "q_1d"
    assert first.cpu_time == Decimal(56011 * 64)
    assert first.memory_mb_seconds == Decimal(65536 * 56011)  # 64 GiB for the job x run time
    assert first.timestamp == datetime.fromtimestamp(1356996147 + 56011, UTC)
    assert second.queue_name == "q_2w" and second.tenant_id == "user-101"
    assert second.timestamp == datetime.fromtimestamp(1356996695 + 71 + 1164297, UTC)


def test_the_constructor_rejects_what_its_fast_path_would_let_through() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    JobMetrics("j-1", "t", "q", Decimal(10), Decimal("0.5"), Decimal(0), Decimal(0), Decimal(0), timestamp=ts)
    for args in (
        ("", "t", "q", Decimal(1), Decimal(1)),
        ("j", "t t ", "q", Decimal(1), Decimal(1)),
        ("j", "t", "q\n", Decimal(1), Decimal(1)),
        ("j", "t", "q", Decimal("1e19"), Decimal(1)),
        ("j", "t", "q", Decimal(1), Decimal("-1")),
        ("j", "t", "q", Decimal(1), Decimal("1." + "1" * 45)),
        ("j", "t", "q", Decimal(1), Decimal("NaN")),
    ):
        with pytest.raises(ValidationError):
            JobMetrics(*args, Decimal(0), Decimal(0), Decimal(0), timestamp=ts)  # type: ignore[arg-type, misc]
    minus_zero = JobMetrics("j", "t", "q", Decimal(1), Decimal("-0"), Decimal(0), Decimal(0), Decimal(0))
    assert not minus_zero.memory_mb_seconds.is_signed()  # -0 is stored as 0


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
    assert alice.cpu_time == Decimal(14400)  # held 4 CPUs x 3600 s (CPUTimeRAW), used only 5400 (TotalCPU)
    assert alice.memory_mb_seconds == Decimal(4000 * 3600)  # held 4000M (AllocTRES) > MaxRSS 1 GiB, x 3600 s
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


def test_sacct_bills_what_a_job_held_or_used_if_more() -> None:
    text = [
        "JobID|User|Partition|Start|End|ElapsedRaw|TotalCPU|NCPUS|MaxRSS|ReqMem",
        # held 8 CPUs for 28 h and reported no CPU time: billed what it held
        "1|u|p|2026-11-01T00:00:00|2026-11-02T04:00:00|100800|00:00:00|8||",
        # used more than it held (more threads than CPUs): billed what it used
        "2|u|p|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|02:00:00|1|3G|1G",
        # nothing held is known: billed what it used
        "3|u|p|2026-11-01T00:00:00|2026-11-01T01:00:00|3600|00:30:00|||",
    ]
    one, two, three = jobs(list(parse_sacct(text)))
    assert one.cpu_time == Decimal(8 * 100800)
    assert two.cpu_time == Decimal(7200) and two.memory_mb_seconds == Decimal(3072 * 3600)
    assert three.cpu_time == Decimal(1800) and three.memory_mb_seconds == 0


def test_sacct_ncpus_and_the_old_per_cpu_flag_in_reqmem() -> None:
    text = [
        "JobID|User|Partition|Start|End|Elapsed|NCPUS|ReqMem",
        # Slurm < 18.08 exports: ReqMem 2147486648Mn is 3000 MB per CPU with bit 31 set
        "1|u|p|2016-12-30T00:02:42|2016-12-30T00:03:06|00:00:24|8|2147486648Mn",
    ]
    (one,) = jobs(list(parse_sacct(text)))
    assert one.cpu_time == Decimal(8 * 24) and one.memory_mb_seconds == Decimal(3000 * 8 * 24)


def test_sacct_jobs_that_never_started_are_skipped() -> None:
    text = [
        "JobID|User|Partition|Start|End|Elapsed|NCPUS|State|NodeList",
        "5_1|u|p|2016-12-31T16:53:22|2016-12-31T16:53:22|00:00:00|8|CANCELLED by 330719|None assigned",
        "5_2|u|p|2016-12-31T16:53:22|2016-12-31T16:53:22|00:00:00|8|CANCELLED by 330719|n01",
        "5_3|u|p|2016-12-31T16:53:22|2016-12-31T16:53:22|00:00:00|8|FAILED|n01",
    ]
    items = list(parse_sacct(text))
    assert [(i.line, i.reason) for i in items if isinstance(i, Skipped)] == [
        (2, "never started (CANCELLED by 330719)"),
        (3, "never started (CANCELLED by 330719, elapsed 0)"),
    ]
    (failed,) = jobs(items)  # it started and failed at once: billed (the base cost)
    assert failed.job_id == "slurm-5_3" and failed.cpu_time == 0


def test_sacct_a_delimiter_inside_the_one_free_text_column_is_put_back() -> None:
    header = "JobID|User|Partition|End|Elapsed|NCPUS|JobName|State"
    text = [
        header,
        "7|u|p|2026-11-02T11:00:00|00:01:00|2|env | grep SLURM|COMPLETED",
        "7.batch|||2026-11-02T11:00:00|00:01:00|2|batch|COMPLETED",
    ]
    (seven,) = jobs(list(parse_sacct(text)))
    assert seven.cpu_time == 120
    # two free-text columns: which one holds the '|' cannot be told; the job and its steps are one error
    two = [
        f"{header}|SubmitLine",
        "8|u|p|2026-11-02T11:00:00|00:01:00|2|a|COMPLETED|sbatch --wrap=x | y",
        "8.batch|||2026-11-02T11:00:00|00:01:00|2|batch|COMPLETED|",
    ]
    (error,) = list(parse_sacct(two))
    assert isinstance(error, LineError) and error.line == 2 and error.field == "row"
    assert "jobname, submitline may hold a '|'" in error.message and "--delimiter" in error.message
    other = [line.replace("|", ";") for line in two[:1]] + [
        "8;u;p;2026-11-02T11:00:00;00:01:00;2;a;COMPLETED;sbatch --wrap=x | y"
    ]
    (eight,) = jobs(list(parse_sacct(other, SacctOptions(delimiter=";"))))
    assert eight.job_id == "slurm-8"


def test_sacct_exports_without_a_header_need_their_columns() -> None:
    line = "jab|77454|cpu_user_parallel|COMPLETED|general|3|2|00:03:09|03:00.532|03:00.304|00:00.227|5150Mn||2014-06-26T11:51:28|2014-06-26T11:51:28|2014-06-26T11:52:31|hero[4515-4516]"
    (error,) = list(parse_sacct([line]))
    assert isinstance(error, LineError) and error.line == 1 and "--columns" in error.message
    names = "User,JobID,JobName,State,Partition,NCPUS,NNodes,CPUTime,TotalCPU,UserCPU,SystemCPU,ReqMem,MaxRSS,Submit,Start,End,NodeList"
    (job,) = jobs(list(parse_sacct([line], SacctOptions(columns=sacct_columns(names)))))
    assert job.tenant_id == "jab" and job.cpu_time == Decimal(189)  # CPUTime 00:03:09 held > 180.532 used
    assert job.memory_mb_seconds == Decimal(5150 * 2 * 63)  # 5150 MB per node x 2 nodes x 63 s
    assert sacct_columns("xdmod")[:5] == ("jobid", "jobidraw", "cluster", "partition", "qos")
    with pytest.raises(ValidationError, match="columns"):
        sacct_columns("JobID,,User")


def test_swf_queue_and_partition_names_from_the_archive_header() -> None:
    lines = [
        "; UnixStartTime: 1000000000",
        "; Queue:  1 [fque:1] ",
        "; Partition:  1 DEFAULT ",
        "; Partition:  2 ALL     ",
        "1 0 10 100 4 -1 -1 4 200 1024 1 7 3 1 1 2 -1 -1",
    ]
    (by_queue,) = jobs(list(parse_swf_trace(lines)))
    (by_partition,) = jobs(list(parse_swf_trace(lines, SwfOptions(queue_from="partition"))))
    assert by_queue.queue_name == "fque:1" and by_partition.queue_name == "ALL"


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
    assert parse_slurm_size("x", "2147486648Mn") == (Decimal(3000 * 1048576), "c")
    assert parse_slurm_size("x", "2147486648K") == (Decimal(2147486648 * 1024), "")  # only MB carries the flag
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
