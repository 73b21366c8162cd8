"""Standard Workload Format (SWF) traces: the Parallel Workloads Archive format and
its extended variant (MetaCentrum's ``alea_wagap-2013.swf``).

One job per line, 18 white-space separated fields (the extended variant adds 19 the
node list ``{..}``, 20 the queue name and 21 the PBS request); ``;`` starts a header
comment; ``-1`` means unknown.  See ``docs/importing.md`` for the mapping.

Detection (per file, from the header and the first job line), each overridable:

* times are **relative** to the header's ``; UnixStartTime:`` when that header is
  present and the first job's submit time is smaller than it; otherwise they are
  absolute Unix seconds;
* requested memory (field 10) is **bytes for the whole job** when the first job line
  has the extended fields (20 or more), else **KB per processor** (the SWF standard);
  ``memory_unit="kb"`` or ``"bytes"`` forces either reading.

SWF has no GPU, licence or QoS fields: its jobs carry no named resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..domain.money import EXACT, ZERO
from .common import ImportItem, LineError, ParsedJob, Skipped, check_choice, guard

__all__ = ["SWF_MEMORY_UNITS", "SWF_QUEUE_SOURCES", "SwfOptions", "parse_swf_trace"]

SWF_MEMORY_UNITS = ("auto", "kb", "bytes")
SWF_QUEUE_SOURCES = ("queue", "partition")
_SWF_TENANTS = ("user", "group")
_MB = Decimal(1048576)
_KB_PER_MB = Decimal(1024)
_ZERO = ZERO  # the shared zero: JobMetrics checks it by identity
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``1e99999999`` would make ``int()`` build a hundred-million-digit number: any field
#: of 10**30 or more is out of range for every SWF figure anyway.
_MAX_EXPONENT = 30
#: ``3 = batch``, ``3: batch``, ``queue 3 is batch``, ``3 (batch)`` in Queues/Partitions comments.
_NAMED = re.compile(r"(?:^|[\s,;(])(\d+)\s*(?:=|:|\bis\b|\()\s*[\"']?([A-Za-z][\w.+-]*)")
#: The Parallel Workloads Archive's one-per-line form: ``; Queue: 1 batch  <description>``,
#: ``; Partition: 2 ALL`` (a name in brackets, ``[fque:1]``, loses the brackets).
_ONE_NAMED = re.compile(r"^(\d+)\s+\[?([^\s\]]+)\]?")


@dataclass(frozen=True, slots=True)
class SwfOptions:
    """How to read a trace: the job-id prefix, where tenant and queue come from, and
    the memory unit (``auto``: see the module docs)."""

    prefix: str = "swf"
    tenant_from: str = "user"
    queue_from: str = "queue"
    memory_unit: str = "auto"

    def __post_init__(self) -> None:
        check_choice("tenant_from", self.tenant_from, _SWF_TENANTS)
        check_choice("queue_from", self.queue_from, SWF_QUEUE_SOURCES)
        check_choice("swf_memory_unit", self.memory_unit, SWF_MEMORY_UNITS)


class _State:
    """What the header and the first job line told us."""

    def __init__(self, options: SwfOptions) -> None:
        self.options = options
        self.start: int | None = None
        self.queues: dict[str, str] = {}
        self.partitions: dict[str, str] = {}
        self.decided = False
        self.offset = 0
        self.memory_bytes = options.memory_unit == "bytes"

    def header(self, number: int, text: str) -> LineError | None:
        key, _, value = text[1:].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "unixstarttime":
            try:
                self.start = int(value)
            except ValueError:
                return LineError(number, f"UnixStartTime: not a whole number (got {value!r})", "UnixStartTime")
        elif key in ("queues", "queue", "partitions", "partition"):
            names = self.queues if key.startswith("queue") else self.partitions
            one = _ONE_NAMED.match(value) if key in ("queue", "partition") else None
            pairs = [one.groups()] if one is not None else _NAMED.findall(value)
            for num, name in pairs:
                names.setdefault(num, name)
        return None

    def decide(self, fields: list[str]) -> None:
        self.decided = True
        try:
            first_submit = int(fields[1])
        except ValueError:
            first_submit = 0
        if self.start is not None and first_submit < self.start:
            self.offset = self.start
        if self.options.memory_unit == "auto":
            self.memory_bytes = len(fields) >= 20


def parse_swf_trace(lines: Iterable[str], options: SwfOptions | None = None) -> Iterator[ImportItem]:
    """Yield a :class:`ParsedJob`, :class:`Skipped` or :class:`LineError` per job line
    (comments and blank lines yield nothing)."""
    state = _State(options or SwfOptions())
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if text[0] == ";":
            problem = state.header(number, text)
            if problem is not None:
                yield problem
            continue
        fields = text.split()
        if len(fields) < 18:
            yield LineError(number, f"record: an SWF line has at least 18 fields (got {len(fields)})", "record")
            continue
        if not state.decided:
            state.decide(fields)
        try:
            yield _job(number, fields, state)
        except (ValueError, ArithmeticError, OverflowError) as exc:
            yield guard(number, exc)


_NAMES = {
    2: "submit_time",
    3: "wait_time",
    4: "run_time",
    5: "allocated_processors",
    7: "used_memory",
    8: "requested_processors",
    10: "requested_memory",
}


def _int(fields: list[str], index: int) -> int:
    text = fields[index - 1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = Decimal(text)
        if number.is_finite() and number.adjusted() < _MAX_EXPONENT:
            return int(number)
    except ArithmeticError:
        pass
    raise ValidationError(_NAMES[index], text, f"field {index} must be a number")


def _job(number: int, fields: list[str], state: _State) -> ParsedJob | Skipped:
    try:
        submit, wait, run, procs, memory = (
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            int(fields[4]),
            int(fields[9]),
        )
    except ValueError:  # a decimal point, or not a number at all: name the field
        submit, wait, run, procs, memory = (_int(fields, i) for i in (2, 3, 4, 5, 10))
    if run <= 0:
        return Skipped(number, "never ran (run time -1 or 0)" if run >= -1 else f"negative run time ({run})")
    if procs <= 0:
        procs = _int(fields, 8)
        if procs <= 0:
            return Skipped(number, "processor count unknown (fields 5 and 8 are -1)")
    if submit < 0:
        return Skipped(number, "submit time unknown (-1)")
    if wait < 0:
        wait = 0
    opts = state.options
    if state.memory_bytes:
        memory_mb_s = EXACT.divide(Decimal(memory * run), _MB) if memory > 0 else _ZERO
    else:
        if memory < 0:
            memory = _int(fields, 7)  # used memory, KB per processor, when nothing was requested
        memory_mb_s = EXACT.divide(Decimal(memory * procs * run), _KB_PER_MB) if memory > 0 else _ZERO
    who = fields[11] if opts.tenant_from == "user" else fields[12]
    tenant = f"{opts.tenant_from}-{'unknown' if who == '-1' else who}"
    if opts.queue_from == "queue":
        if len(fields) >= 20 and fields[19] != "-1":
            queue = fields[19]
        else:
            n = fields[14]
            queue = "unknown" if n == "-1" else state.queues.get(n) or f"q{n}"
    else:
        n = fields[15]
        queue = "unknown" if n == "-1" else state.partitions.get(n) or f"partition-{n}"
    try:
        end = _EPOCH + timedelta(seconds=state.offset + submit + wait + run)
    except OverflowError:
        raise ValidationError("submit_time", fields[1], "puts the job's end out of range") from None
    submitted = _EPOCH + timedelta(seconds=state.offset + submit)
    metrics = JobMetrics(
        f"{opts.prefix}-{fields[0]}",
        tenant,
        queue,
        Decimal(run * procs),
        memory_mb_s,
        _ZERO,
        _ZERO,
        _ZERO,
        timestamp=end,
    )
    return ParsedJob(number, metrics, submitted)
