"""Slurm accounting: the output of ``sacct --parsable2`` (``|``-separated, a header line).

Columns are found by their header name (any subset, any order, case-insensitive).
Job steps (``123.batch``, ``123.extern``, ``123.0``) follow their job in sacct's
output and are folded into it: one job per JobID.  See ``docs/importing.md`` for the
mapping; in short: CPU seconds = TotalCPU (else CPUTimeRAW, else elapsed × AllocCPUS),
memory MB·s = the largest MaxRSS of the job and its steps (else the requested memory)
× elapsed, finished at End; jobs without an End (running, pending) or that never
started are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain.errors import ValidationError
from ..domain.money import EXACT
from ..ingest import LineError, ParsedJob
from .common import ImportItem, Skipped, check_choice, guard, make_metrics

__all__ = [
    "SACCT_QUEUE_SOURCES",
    "SacctOptions",
    "parse_sacct",
    "parse_slurm_duration",
    "parse_slurm_size",
    "parse_slurm_time",
]

SACCT_QUEUE_SOURCES = ("partition", "qos", "queue")  # "queue" means QOS for Slurm
_TENANT_COLUMNS = {"user": "user", "group": "group", "account": "account"}
_ZERO = Decimal(0)
_MB = Decimal(1048576)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_DURATION = re.compile(r"^(?:([0-9]{1,9})-)?(?:([0-9]{1,12}):)?([0-9]{1,15}):([0-9]{1,15})(?:\.([0-9]{1,15}))?$")
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTP]?)([cn]?)$", re.IGNORECASE)
_TRES_MEM = re.compile(r"(?:^|,)mem=([^,]+)")
_TRES_CPU = re.compile(r"(?:^|,)cpu=(\d+)")
_MISSING = frozenset({"", "unknown", "none", "n/a", "invalid"})


_MISSING_AS_WRITTEN = frozenset({"", "Unknown", "None"})


def _blank(text: str) -> bool:
    if text in _MISSING_AS_WRITTEN:
        return True
    if text[:1].isdigit():  # the common case: a number, a size, a duration or a time
        return False
    return text.strip().lower() in _MISSING


def parse_slurm_duration(column: str, text: str) -> Decimal | None:
    """``[DD-][HH:]MM:SS[.fff]`` (or whole seconds) as seconds; None when blank/Unknown."""
    if _blank(text):
        return None
    text = text.strip()
    if text.isascii() and text.isdigit():
        return Decimal(text)
    m = _DURATION.match(text)
    if m is None:
        raise ValidationError(column, text, "must be a Slurm duration such as 1-02:03:04 or 05:06.789")
    days, hours, minutes, seconds, fraction = m.groups()
    whole = ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + int(seconds)
    return Decimal(f"{whole}.{fraction}") if fraction else Decimal(whole)


def parse_slurm_size(column: str, text: str, *, default_unit: str = "") -> tuple[Decimal, str] | None:
    """``1234K``, ``12.5M``, ``3G`` (1024-based) as bytes, with ReqMem's per-core
    ``c`` / per-node ``n`` suffix ('' when absent); a bare number is in
    ``default_unit``.  None when blank/Unknown."""
    if _blank(text):
        return None
    text = text.strip()
    if text[-1:] == "K" and text[:-1].isascii() and text[:-1].isdigit():  # MaxRSS as sacct prints it
        return Decimal(text[:-1]) * 1024, ""
    m = _SIZE.match(text)
    if m is None:
        raise ValidationError(column, text, "must be a size such as 1234K, 12.5M or 3G")
    number, unit, per = m.groups()
    return Decimal(number) * _UNITS[(unit or default_unit).upper()], per.lower()


def parse_slurm_time(column: str, text: str, zone: tzinfo) -> datetime | None:
    """``2026-11-02T10:00:00`` in the cluster's time zone, as aware UTC; None when blank/Unknown."""
    if _blank(text):
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(column, text, "must be a date-time such as 2026-11-02T10:00:00") from None
    if value.tzinfo is None:
        if zone is UTC:
            return value.replace(tzinfo=UTC)
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValidationError(column, text, "is out of range") from None


@dataclass(frozen=True, slots=True)
class SacctOptions:
    """How to read sacct output: id prefix, tenant and queue sources, the cluster's time zone."""

    prefix: str = "slurm"
    tenant_from: str = "user"
    queue_from: str = "partition"
    timezone: str = "UTC"
    zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice("tenant_from", self.tenant_from, tuple(_TENANT_COLUMNS))
        check_choice("queue_from", self.queue_from, SACCT_QUEUE_SOURCES)
        try:
            zone: tzinfo = UTC if self.timezone.upper() == "UTC" else ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                "timezone", self.timezone, "unknown time zone (use a name like Europe/Prague)"
            ) from None
        object.__setattr__(self, "zone", zone)


@dataclass(slots=True)
class _Group:
    key: str
    line: int
    cells: list[str] | None  # the job's own line; None if only steps were seen
    steps: list[tuple[int, list[str]]] = field(default_factory=list)


class _Columns:
    def __init__(self, header: list[str], options: SacctOptions) -> None:
        names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
        self.count = len(names)
        self.at = {name: i for i, name in reversed(list(enumerate(names)))}
        job = self.at.get("jobid", self.at.get("jobidraw"))
        if job is None:
            raise ValidationError("JobID", "|".join(header), "column missing from the header (JobID or JobIDRaw)")
        if "end" not in self.at:
            raise ValidationError("End", "|".join(header), "column missing from the header")
        self.tenant_name = options.tenant_from.capitalize()
        tenant = self.at.get(_TENANT_COLUMNS[options.tenant_from])
        if tenant is None:
            raise ValidationError(self.tenant_name, "|".join(header), "column missing from the header (--tenant-from)")
        self.queue_name = "Partition" if options.queue_from == "partition" else "QOS"
        queue = self.at.get(self.queue_name.lower())
        if queue is None:
            raise ValidationError(self.queue_name, "|".join(header), "column missing from the header (--queue-from)")
        self.job: int = job
        self.tenant: int = tenant
        self.queue: int = queue

    def get(self, cells: list[str], name: str) -> str:
        i = self.at.get(name)
        return "" if i is None else cells[i]


def parse_sacct(lines: Iterable[str], options: SacctOptions | None = None) -> Iterator[ImportItem]:
    """Yield a :class:`ParsedJob`, :class:`Skipped` or :class:`LineError` per job
    (errors carry the line of the job or of the step at fault).  A bad header is
    reported on its line and nothing else is read."""
    opts = options or SacctOptions()
    cols: _Columns | None = None
    group: _Group | None = None
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        cells = text.split("|")
        if cols is None:
            try:
                cols = _Columns(cells, opts)
            except ValidationError as exc:
                yield LineError(number, f"{exc}; the rest of the file was not read", exc.field)
                return
            continue
        if len(cells) != cols.count:
            yield LineError(number, f"row: must have {cols.count} columns like the header (got {len(cells)})", "row")
            continue
        job_id = cells[cols.job].strip()
        key, dot, _ = job_id.partition(".")
        if not key:
            yield LineError(number, f"JobID: must not be empty (got {job_id!r})", "JobID")
            continue
        if group is not None and key == group.key and (dot or group.cells is None):
            if dot:
                group.steps.append((number, cells))
            else:
                group.cells, group.line = cells, number
            continue
        if group is not None:
            yield from _finish(group, cols, opts)
        group = _Group(key, number, None, [(number, cells)]) if dot else _Group(key, number, cells)
    if group is not None:
        yield from _finish(group, cols, opts)  # type: ignore[arg-type]  # cols is set once a group exists


def _finish(group: _Group, cols: _Columns, opts: SacctOptions) -> Iterator[ImportItem]:
    if group.cells is None:
        first = group.steps[0][0]
        yield LineError(first, f"JobID: job step without its job line (job {group.key})", "JobID")
        return
    try:
        yield _job(group, cols, opts)
    except _StepError as exc:
        yield exc.error
    except (ValueError, ArithmeticError, OverflowError) as exc:
        yield guard(group.line, exc)


class _StepError(Exception):
    def __init__(self, error: LineError) -> None:
        self.error = error


def _job(group: _Group, cols: _Columns, opts: SacctOptions) -> ParsedJob | Skipped:
    cells = group.cells
    assert cells is not None
    get = cols.get
    state = get(cells, "state").strip()
    end = parse_slurm_time("End", get(cells, "end"), opts.zone)
    if end is None:
        return Skipped(group.line, f"not finished ({state or 'no End'})")
    start_at = cols.at.get("start")
    start = None if start_at is None else parse_slurm_time("Start", cells[start_at], opts.zone)
    if start_at is not None and start is None:
        return Skipped(group.line, f"never started ({state or 'no Start'})")
    elapsed = _elapsed(cells, cols, start, end)
    if elapsed is None:
        raise ValidationError("Elapsed", "", "no ElapsedRaw, Elapsed or Start column to tell the run time")
    tres = get(cells, "alloctres")
    cpus = _whole("AllocCPUS", get(cells, "alloccpus"))
    if cpus is None and (m := _TRES_CPU.search(tres)) is not None and len(m.group(1)) <= 30:
        cpus = int(m.group(1))
    # TotalCPU: the job's (the sum of its steps), else the steps' sum; MaxRSS the largest.
    rss_at = cols.at.get("maxrss")
    cpu_at = cols.at.get("totalcpu")
    cpu = None if cpu_at is None else parse_slurm_duration("TotalCPU", cells[cpu_at])
    step_cpu_at = cpu_at if not cpu else None
    step_cpu: Decimal | None = None
    rss: Decimal | None = None
    for line, step in group.steps:
        try:
            if step_cpu_at is not None and (c := parse_slurm_duration("TotalCPU", step[step_cpu_at])) is not None:
                step_cpu = c if step_cpu is None else step_cpu + c
            if rss_at is not None and (r := parse_slurm_size("MaxRSS", step[rss_at])) is not None:
                rss = r[0] if rss is None else max(rss, r[0])
        except ValidationError as exc:
            raise _StepError(LineError(line, f"{exc}; job {group.key} was not imported", exc.field)) from None
    if rss_at is not None and (r := parse_slurm_size("MaxRSS", cells[rss_at])) is not None:
        rss = r[0] if rss is None else max(rss, r[0])
    if step_cpu is not None:
        cpu = step_cpu if cpu is None else max(cpu, step_cpu)
    if cpu is None:
        raw_cpu = _whole("CPUTimeRAW", get(cells, "cputimeraw"))
        cpu = Decimal(raw_cpu) if raw_cpu is not None else parse_slurm_duration("CPUTime", get(cells, "cputime"))
        if cpu is None:
            if cpus is None:
                raise ValidationError("TotalCPU", "", "no TotalCPU, CPUTimeRAW, CPUTime or AllocCPUS to tell CPU time")
            cpu = elapsed * cpus
    memory = rss if rss is not None else _requested_memory(cells, cols, cpus, tres)
    tenant = cells[cols.tenant].strip()
    if not tenant:
        raise ValidationError(cols.tenant_name, tenant, "is empty on the job's line (--tenant-from)")
    queue = cells[cols.queue].strip()
    if not queue:
        raise ValidationError(cols.queue_name, queue, "is empty on the job's line (--queue-from)")
    metrics = make_metrics(
        f"{opts.prefix}-{group.key}",
        tenant,
        queue,
        cpu,
        EXACT.divide(memory * elapsed, _MB) if memory else _ZERO,
        end,
    )
    return ParsedJob(group.line, metrics)


def _whole(column: str, text: str) -> int | None:
    text = text.strip()
    if _blank(text):
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 30:
        raise ValidationError(column, text, "must be a whole number (at most 30 digits)")
    return int(text)


def _elapsed(cells: list[str], cols: _Columns, start: datetime | None, end: datetime) -> Decimal | None:
    raw = _whole("ElapsedRaw", cols.get(cells, "elapsedraw"))
    if raw is not None:
        return Decimal(raw)
    elapsed = parse_slurm_duration("Elapsed", cols.get(cells, "elapsed"))
    if elapsed is not None:
        return elapsed
    if start is not None:
        return Decimal(max(int((end - start).total_seconds()), 0))
    return None


def _requested_memory(cells: list[str], cols: _Columns, cpus: int | None, tres: str) -> Decimal:
    """ReqMem (a bare number is MB; ``c``: per core × AllocCPUS, ``n``: per node ×
    NNodes), else AllocTRES ``mem=``, else 0."""
    req = parse_slurm_size("ReqMem", cols.get(cells, "reqmem"), default_unit="M")
    if req is not None:
        size, per = req
        if per == "c":
            return size * (cpus or 1)
        if per == "n":
            return size * (_whole("NNodes", cols.get(cells, "nnodes")) or 1)
        return size
    if (m := _TRES_MEM.search(tres)) is not None:
        found = parse_slurm_size("AllocTRES", m.group(1), default_unit="M")
        if found is not None:
            return found[0]
    return _ZERO
