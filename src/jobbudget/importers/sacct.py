"""Slurm accounting: the output of ``sacct --parsable2`` (``|``-separated).

Columns are found by their header name (any subset, any order, case-insensitive), or
given with ``columns`` for exports made with ``--noheader`` (``xdmod`` names XDMoD's
documented export).  Job steps (``123.batch``, ``123.extern``, ``123.0``) follow their
job in sacct's output and are folded into it: one job per JobID.

What a job is billed for: what it **held**, or what it used if that was more.  CPU
seconds = the larger of elapsed × allocated CPUs (``CPUTimeRAW``, ``CPUTime``,
``AllocCPUS``/``NCPUS``/AllocTRES ``cpu=``) and ``TotalCPU`` (the job's, else the sum
of its steps'); memory = the larger of the allocation (AllocTRES ``mem=``, else
``ReqMem``) and the largest ``MaxRSS``, × elapsed.  Jobs that never started (no
Start, no node assigned, or cancelled with zero elapsed time) and jobs without an End
(running, pending) are skipped.  GPUs (and licences) are named resources: AllocTRES
``gres/gpu:a100=4`` is ``{"gpu:a100": 4 × elapsed}`` GPU-seconds (see
:mod:`.slurm_resources`); ``QOS`` is the job's QoS and the first word of ``State``
its exit state.  See ``docs/importing.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..domain.money import EXACT, ZERO
from .common import ImportItem, LineError, ParsedJob, Skipped, check_choice, guard
from .slurm_resources import TresColumns, job_resources
from .slurm_values import (
    blank,
    parse_slurm_duration,
    parse_slurm_size,
    parse_slurm_time,
    whole,
)

__all__ = [
    "KNOWN_COLUMNS",
    "SACCT_QUEUE_SOURCES",
    "SacctOptions",
    "parse_sacct",
    "sacct_columns",
]

SACCT_QUEUE_SOURCES = ("partition", "qos", "queue")  # "queue" means QOS for Slurm
_TENANT_COLUMNS = {"user": "user", "group": "group", "account": "account"}
_XDMOD = (
    "jobid,jobidraw,cluster,partition,qos,account,group,gid,user,uid,submit,eligible,start,end,elapsed,"
    "exitcode,state,nnodes,ncpus,reqcpus,reqmem,reqtres,alloctres,timelimit,nodelist,jobname"
)
#: Column lists of well-known exports made with ``--noheader``: XDMoD's documented
#: ``sacct --format`` (``xdmod``; XDMoD before 11 had no ``qos``: ``xdmod-10``).
KNOWN_COLUMNS = {
    "xdmod": tuple(_XDMOD.split(",")),
    "xdmod-10": tuple(c for c in _XDMOD.split(",") if c != "qos"),
}
#: Columns whose text is the user's own and may hold the delimiter.
_FREE_TEXT = frozenset(
    {"jobname", "submitline", "comment", "admincomment", "systemcomment", "workdir", "constraints", "reason"}
)
_ZERO = ZERO  # the shared zero: JobMetrics checks it by identity
_TRES_MEM = re.compile(r"(?:^|,)mem=([^,]+)")
_TRES_CPU = re.compile(r"(?:^|,)cpu=([^,]+)")
_MB = Decimal(1048576)


def sacct_columns(text: str) -> tuple[str, ...]:
    """``--columns``: a known export's name (``xdmod``) or the comma-separated column
    names given to ``sacct --format`` (a ``%N`` width is ignored)."""
    known = KNOWN_COLUMNS.get(text.strip().lower())
    if known is not None:
        return known
    names = tuple(c.strip().split("%", 1)[0].lower() for c in text.split(","))
    if not all(names):
        raise ValidationError("columns", text, "must be comma-separated column names such as JobID,User,End or xdmod")
    return names


@dataclass(frozen=True, slots=True)
class SacctOptions:
    """How to read sacct output: id prefix, tenant and queue sources, the cluster's
    time zone, the delimiter (``sacct --delimiter``), for an export without a
    header line its columns, and whether to bill Slurm's ``billing`` TRES as the
    resource ``billing`` (billing units × seconds; the cost model must price it)."""

    prefix: str = "slurm"
    tenant_from: str = "user"
    queue_from: str = "partition"
    timezone: str = "UTC"
    delimiter: str = "|"
    columns: tuple[str, ...] | None = None
    billing: bool = False
    zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice("tenant_from", self.tenant_from, tuple(_TENANT_COLUMNS))
        check_choice("queue_from", self.queue_from, SACCT_QUEUE_SOURCES)
        if not self.delimiter or "\n" in self.delimiter or "\r" in self.delimiter:
            raise ValidationError("delimiter", self.delimiter, "must be one or more characters on one line")
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
        self.names = names
        self.count = len(names)
        self.at = {name: i for i, name in reversed(list(enumerate(names)))}
        shown = options.delimiter.join(header)
        job = self.at.get("jobid", self.at.get("jobidraw"))
        if job is None:
            raise ValidationError("JobID", shown, "column missing from the header (JobID or JobIDRaw)")
        if "end" not in self.at:
            raise ValidationError("End", shown, "column missing from the header")
        self.tenant_name = options.tenant_from.capitalize()
        tenant = self.at.get(_TENANT_COLUMNS[options.tenant_from])
        if tenant is None:
            raise ValidationError(self.tenant_name, shown, "column missing from the header (--tenant-from)")
        self.queue_name = "Partition" if options.queue_from == "partition" else "QOS"
        queue = self.at.get(self.queue_name.lower())
        if queue is None:
            raise ValidationError(self.queue_name, shown, "column missing from the header (--queue-from)")
        self.job: int = job
        self.tenant: int = tenant
        self.queue: int = queue
        self.free = [i for i, name in enumerate(names) if name in _FREE_TEXT]

    def get(self, cells: list[str], name: str) -> str:
        i = self.at.get(name)
        return "" if i is None else cells[i]

    def repair(self, cells: list[str], delimiter: str) -> list[str] | None:
        """A line with the delimiter inside its one free-text column, put back
        together; None when that cannot be told (no such column, or several)."""
        extra = len(cells) - self.count
        if extra <= 0 or len(self.free) != 1:
            return None
        i = self.free[0]
        return [*cells[:i], delimiter.join(cells[i : i + extra + 1]), *cells[i + extra + 1 :]]


def parse_sacct(lines: Iterable[str], options: SacctOptions | None = None) -> Iterator[ImportItem]:
    """Yield a :class:`ParsedJob`, :class:`Skipped` or :class:`LineError` per job
    (errors carry the line of the job or of the step at fault; the steps of a
    rejected job are not reported again).  A bad header is reported on its line and
    nothing else is read."""
    opts = options or SacctOptions()
    delimiter = opts.delimiter
    cols = _Columns(list(opts.columns), opts) if opts.columns is not None else None
    group: _Group | None = None
    rejected = ""  # the JobID of the last rejected job line: its steps go with it
    first = True
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        cells = text.split(delimiter)
        if first:
            first = False
            names = [c.strip().lstrip("\ufeff").strip().lower() for c in cells]
            if cols is None:
                try:
                    cols = _Columns(cells, opts)
                except ValidationError as exc:
                    hint = ""
                    if not {"jobid", "jobidraw"} & set(names):
                        hint = (
                            "; an export made with --noheader needs --columns "
                            "(xdmod, or the --format list given to sacct)"
                        )
                    yield LineError(number, f"{exc}{hint}; the rest of the file was not read", exc.field)
                    return
                continue
            if names == cols.names:
                continue  # the header of the given columns
        assert cols is not None
        if len(cells) != cols.count:
            fixed = cols.repair(cells, delimiter)
            if fixed is None:
                if cols.job < len(cells):
                    rejected = cells[cols.job].strip()
                yield LineError(number, _width_error(cols, len(cells), delimiter), "row")
                continue
            cells = fixed
        job_id = cells[cols.job].strip()
        key, dot, _ = job_id.partition(".")
        if not key:
            yield LineError(number, f"JobID: must not be empty (got {job_id!r})", "JobID")
            continue
        if dot and key == rejected:
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
        assert cols is not None
        yield from _finish(group, cols, opts)


def _width_error(cols: _Columns, got: int, delimiter: str) -> str:
    message = f"row: must have {cols.count} columns like the header (got {got})"
    if got > cols.count:
        names = ", ".join(cols.names[i] for i in cols.free) or "a text column"
        message += (
            f": {names} may hold a {delimiter!r}; export with sacct --delimiter set to a character "
            "no field holds and import with the same --delimiter"
        )
    return message


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
    if get(cells, "nodelist").strip().lower() == "none assigned":
        return Skipped(group.line, f"never started ({state or 'no node assigned'})")
    elapsed = _elapsed(cells, cols, start, end)
    if elapsed is None:
        raise ValidationError("Elapsed", "", "no ElapsedRaw, Elapsed or Start column to tell the run time")
    if not elapsed and state.upper().startswith("CANCELLED"):
        return Skipped(group.line, f"never started ({state}, elapsed 0)")
    tres = get(cells, "alloctres")
    cpus = whole("AllocCPUS", get(cells, "alloccpus"))
    if cpus is None:
        cpus = whole("NCPUS", get(cells, "ncpus"))
    if cpus is None and (found := _TRES_CPU.search(tres)) is not None:
        cpus = whole("AllocTRES", found.group(1))
    used_cpu, rss = _usage(group, cols)
    held_cpu = _held_cpu(cells, cols, cpus, elapsed)
    if held_cpu is None and used_cpu is None:
        raise ValidationError(
            "AllocCPUS", "", "no AllocCPUS, NCPUS, AllocTRES cpu=, CPUTimeRAW, CPUTime or TotalCPU to tell CPU time"
        )
    cpu = max(c for c in (held_cpu, used_cpu) if c is not None)
    held_mem = _allocated_memory(cells, cols, cpus, tres)
    memory = max(held_mem, rss or _ZERO)
    tenant = cells[cols.tenant].strip()
    if not tenant:
        raise ValidationError(cols.tenant_name, tenant, "is empty on the job's line (--tenant-from)")
    queue = cells[cols.queue].strip()
    if not queue:
        raise ValidationError(cols.queue_name, queue, "is empty on the job's line (--queue-from)")
    resources = job_resources(
        TresColumns(tres, get(cells, "reqtres"), get(cells, "allocgres"), get(cells, "reqgres")),
        elapsed,
        billing=opts.billing,
    )
    qos = get(cells, "qos").strip()
    metrics = JobMetrics(
        f"{opts.prefix}-{group.key}",
        tenant,
        queue,
        cpu,
        EXACT.divide(memory * elapsed, _MB) if memory else _ZERO,
        _ZERO,
        _ZERO,
        _ZERO,
        timestamp=end,
        resources=resources,
        qos="" if blank(qos) else qos,
        exit_state=state.split(" ", 1)[0].upper(),
    )
    return ParsedJob(group.line, metrics)


def _usage(group: _Group, cols: _Columns) -> tuple[Decimal | None, Decimal | None]:
    """What the job used: TotalCPU (the job's, which sums its steps, else the steps'
    sum; the larger if both) and the largest MaxRSS of the job and its steps, in bytes."""
    cells = group.cells
    assert cells is not None
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
    return cpu, rss


def _held_cpu(cells: list[str], cols: _Columns, cpus: int | None, elapsed: Decimal) -> Decimal | None:
    """CPU seconds the job held: CPUTimeRAW, else CPUTime, else elapsed × CPUs."""
    raw = whole("CPUTimeRAW", cols.get(cells, "cputimeraw"))
    if raw is not None:
        return Decimal(raw)
    held = parse_slurm_duration("CPUTime", cols.get(cells, "cputime"))
    if held is not None:
        return held
    return None if cpus is None else elapsed * cpus


def _elapsed(cells: list[str], cols: _Columns, start: datetime | None, end: datetime) -> Decimal | None:
    raw = whole("ElapsedRaw", cols.get(cells, "elapsedraw"))
    if raw is not None:
        return Decimal(raw)
    elapsed = parse_slurm_duration("Elapsed", cols.get(cells, "elapsed"))
    if elapsed is not None:
        return elapsed
    if start is not None:
        return Decimal(max(int((end - start).total_seconds()), 0))
    return None


def _allocated_memory(cells: list[str], cols: _Columns, cpus: int | None, tres: str) -> Decimal:
    """Bytes the job held: AllocTRES ``mem=`` (the whole job's), else ReqMem (a bare
    number is MB; ``c``: per CPU × the CPUs, ``n``: per node × NNodes), else 0."""
    if (mem := _TRES_MEM.search(tres)) is not None:
        found = parse_slurm_size("AllocTRES", mem.group(1), default_unit="M")
        if found is not None:
            return found[0]
    req = parse_slurm_size("ReqMem", cols.get(cells, "reqmem"), default_unit="M")
    if req is None:
        return _ZERO
    size, per = req
    if per == "c":
        return size * (cpus or 1)
    if per == "n":
        return size * (whole("NNodes", cols.get(cells, "nnodes")) or 1)
    return size
