"""Finished Slurm jobs as jobs to meter: what the jobcomp script sends the moment a
job ends (slurmctld's environment for it, and its allocated TRES), or a line of
``sacct`` (a backfill).

A job that ran is billed for what it held, elapsed × allocated TRES: CPUs, memory and
GPUs by type (``AllocTRES``), as ``jobbudget import --format
sacct`` bills it; its id is ``PREFIX-<raw job id>`` either way, so a job metered at its
end and found again by a backfill counts once.  A job that never ran (cancelled while
pending) releases what ``sbatch`` held for it.  ``job_submit.lua`` writes the
reservation's id into the job's admin comment (``jobbudget:<id>``), which only
operators can change."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from ..domain.cost import JobMetrics
from ..domain.errors import ValidationError
from ..domain.money import EXACT
from ..importers.common import LineError, ParsedJob, Skipped
from ..importers.sacct import SacctOptions, parse_sacct
from ..importers.slurm_resources import TresColumns, job_resources
from ..importers.slurm_values import parse_slurm_size, parse_tres
from .policy import SlurmPolicy
from .requests import in_slurm_words

__all__ = [
    "BACKFILL_COLUMNS",
    "ENDED",
    "Finished",
    "NeverRan",
    "Pending",
    "Unreadable",
    "backfill_outcomes",
    "ended_job",
    "reservation_of",
]

#: the states a job ends in (sacct's first word of State)
ENDED = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}
)
#: what ``jobbudget slurm backfill`` asks ``sacct -X --parsable2`` for (AdminComment
#: last: it is free text an operator may put a ``|`` in)
BACKFILL_COLUMNS = (
    "JobIDRaw,User,Account,Partition,QOS,Submit,Start,End,ElapsedRaw,CPUTimeRAW,AllocCPUS,AllocTRES,ReqMem,"
    "NNodes,NodeList,State,AdminComment"
)
_REQUEUED = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "REQUEUED_HELD"})
_RESERVATION = re.compile(r"(?:^|\s)jobbudget:([A-Za-z0-9]{1,64})(?:\s|$)")
_MB = Decimal(1048576)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Finished:
    """A job that ran: meter it, settling its reservation."""

    metrics: JobMetrics
    reservation_id: str | None
    #: Slurm's job id (a requeued run's metrics carry ``-run<start>`` after it)
    slurm_job_id: str = ""


@dataclass(frozen=True, slots=True)
class NeverRan:
    """A job that ended without running (cancelled while pending): release its hold."""

    slurm_job_id: str
    state: str
    reservation_id: str | None
    #: whose hold it is: a hold is released only for its own tenant
    tenant_id: str = ""


@dataclass(frozen=True, slots=True)
class Pending:
    """Not ended yet (pending, running, requeued): nothing to do."""

    slurm_job_id: str
    state: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that cannot be metered, and why (``line`` for a sacct line)."""

    slurm_job_id: str
    message: str
    line: int = 0


Outcome = Finished | NeverRan | Pending | Unreadable


def reservation_of(admin_comment: str) -> str | None:
    match = _RESERVATION.search(admin_comment or "")
    return match.group(1) if match and match.group(1) != "none" else None  # none: admitted without a hold


def ended_job(fields: Mapping[str, str], policy: SlurmPolicy) -> Outcome:
    """The job the jobcomp script reports: slurmctld's environment for it (``job_id``,
    ``job_state``, ``start`` and ``end`` in epoch seconds, ``cpus`` allocated,
    ``account``, ``user``, ``partition``, ``qos``), its allocated TRES (``tres``, from
    ``squeue -O tres-alloc``) and its admin comment."""
    job_id = fields.get("job_id", "").strip()
    if not job_id.isdigit():
        raise ValidationError("job_id", job_id, "must be Slurm's numeric job id")
    state = fields.get("job_state", "").strip().split(" ", 1)[0].upper()
    tenant, source = policy.tenant(fields.get("account", "").strip(), fields.get("user", "").strip())
    # A run Slurm requeued ends with the job pending again: it is billed on its own
    # (its own id), and the hold stays for the run to come.
    requeued = state in _REQUEUED and bool(fields.get("start", "").strip().strip("0"))
    if state not in ENDED and not requeued:
        return Pending(job_id, state)
    start, end = _seconds(fields, "start"), _seconds(fields, "end")
    if requeued and not 0 < start < end:
        return Pending(job_id, state)
    reservation = None if requeued else reservation_of(fields.get("admin_comment", ""))
    if not requeued and (start <= 0 or end <= 0 or (end <= start and state == "CANCELLED")):
        return NeverRan(job_id, state, reservation, tenant)
    elapsed = Decimal(max(end - start, 0))
    tres = fields.get("tres", "").strip().rstrip("|")
    if not tres:
        raise ValidationError(
            "tres", tres, "is empty: slurmctld no longer knew the job; jobbudget slurm backfill meters it from sacct"
        )
    counts = parse_tres("tres", tres)
    field, cpus = ("tres", counts["cpu"]) if "cpu" in counts else ("cpus", fields.get("cpus", "").strip())
    if not (cpus.isascii() and cpus.isdigit()) or len(cpus) > 9:
        raise ValidationError(field, cpus, "must be the number of CPUs the job held (cpu=N)")
    memory = _ZERO
    if "mem" in counts and (size := parse_slurm_size("tres", counts["mem"], default_unit="M")) is not None:
        memory = size[0]
    try:
        metrics = JobMetrics(
            job_id=policy.job_id(job_id) + (f"-run{start}" if requeued else ""),
            tenant_id=tenant,
            queue_name=policy.queue(fields.get("partition", "").strip()),
            cpu_time=Decimal(int(cpus)) * elapsed,
            memory_mb_seconds=EXACT.divide(memory * elapsed, _MB) if memory else _ZERO,
            payload_bytes=_ZERO,
            redis_ops=_ZERO,
            network_bytes=_ZERO,
            timestamp=datetime.fromtimestamp(end, UTC),
            resources=job_resources(TresColumns(alloc_tres=tres), elapsed),
            qos=fields.get("qos", "").strip(),
            exit_state="REQUEUED" if requeued else state,
        )
    except ValidationError as exc:
        raise in_slurm_words(exc, source) from None
    return Finished(metrics, reservation, job_id)


def _seconds(fields: Mapping[str, str], name: str) -> int:
    text = fields.get(name, "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise ValidationError(name, text, "must be a time in seconds since 1970 (slurmctld's START and END)")
    return int(text)


def backfill_outcomes(lines: Iterable[str], policy: SlurmPolicy) -> Iterator[Outcome]:
    """Each job of ``sacct -X --parsable2 -o BACKFILL_COLUMNS`` output (header first)."""
    text = list(lines)
    header = [c.strip().lower() for c in text[0].rstrip("\r\n").split("|")] if text else []
    needed = ("jobidraw", "state", "user", "account")
    if not header or header[-1] != "admincomment" or not all(n in header for n in needed):
        raise ValidationError(
            "header", text[0].strip() if text else "", f"must be sacct's header for --format {BACKFILL_COLUMNS}"
        )
    width = len(header)
    at = {name: header.index(name) for name in needed}
    rows: dict[int, dict[str, str]] = {}  # line number -> the cells the importer does not give back
    for number, raw in enumerate(text[1:], start=2):
        cells = raw.rstrip("\r\n").split("|", width - 1)
        if len(cells) == width:
            rows[number] = {name: cells[i].strip() for name, i in at.items()} | {"comment": cells[-1]}
    # tenant_from=user: a job without an account is its user's (policy.tenant), not an error
    options = SacctOptions(prefix=policy.job_id_prefix, tenant_from="user", queue_from="partition")
    for item in parse_sacct(text, options):
        row = rows.get(item.line, {})
        tenant, _ = policy.tenant(row.get("account", ""), row.get("user", ""))
        job_id, state, comment = row.get("jobidraw", ""), row.get("state", ""), row.get("comment", "")
        if isinstance(item, ParsedJob):
            m = item.metrics
            mapped = replace(m, tenant_id=tenant, queue_name=policy.queue(m.queue_name))
            yield Finished(mapped, reservation_of(comment), job_id)
        elif isinstance(item, Skipped):
            word = state.split(" ", 1)[0].upper()
            if word in ENDED:
                yield NeverRan(job_id, word, reservation_of(comment), tenant)
            else:
                yield Pending(job_id, word)
        elif isinstance(item, LineError):
            yield Unreadable(job_id, item.message, item.line)
