"""The metering journal: a write-ahead log of priced jobs on local disk.

With ``metering_journal`` set, ``process_job_cost`` returns once its jobs are appended
here and ``fdatasync``'d: they are durable.  The service's drain stores them in the
ledger in batches (idempotent by job id) and then forgets them; after a crash the
next process to open the journal folder stores what a dead process had not.

Each process writes its own file, ``journal-<pid>-<random>.log``, holding an exclusive
``flock`` on it for its life.  The kernel drops that lock when the process dies
(``kill -9`` included), which is how a starting process tells an abandoned journal
(lock free: replay it) from a live one (locked: leave it).

A file is a sequence of lines ``<crc32 hex> <JSON>``.  A crash can leave the last
line torn (never acknowledged: ``append`` had not returned); such a line fails its
checksum and is skipped, and so is anything unreadable after it.  A file is emptied
when everything in it is in the ledger, and a new one started when it grows past
``ROTATE_BYTES``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..domain.cost import COMPONENTS, CostBreakdown, JobCost, JobMetrics
from ..domain.errors import ValidationError
from ..domain.extras import decode_extras, encode_extras
from ..domain.records import JobRecord, SpendKey

__all__ = ["Abandoned", "FileJournal", "ROTATE_BYTES"]

log = logging.getLogger("jobbudget")
ROTATE_BYTES = 64 * 1024 * 1024
_COSTS = COMPONENTS


def _entry(r: JobRecord) -> dict[str, Any]:
    m, c = r.metrics, r.cost
    return {
        "t": m.tenant_id, "j": m.job_id, "q": m.queue_name, "y": m.job_type, "p": m.priority,
        "u": [str(m.cpu_time), str(m.memory_mb_seconds), str(m.payload_bytes), str(m.redis_ops),
              str(m.network_bytes)],
        "ts": r.timestamp.isoformat(), "c": [str(getattr(c.cost_breakdown, n)) for n in _COSTS],
        "v": c.cost_model_version, "k": [[k.budget_id, k.period_start.isoformat()] for k in r.spend_keys],
        "e": encode_extras(m, c),
    }  # fmt: skip


def _record(e: dict[str, Any]) -> JobRecord:
    ts = datetime.fromisoformat(e["ts"])
    cpu, mem, payload, redis_ops, net = (Decimal(x) for x in e["u"])
    extras = decode_extras(e.get("e"))
    metrics = JobMetrics(
        job_id=e["j"], tenant_id=e["t"], queue_name=e["q"], cpu_time=cpu, memory_mb_seconds=mem,
        payload_bytes=payload, redis_ops=redis_ops, network_bytes=net, job_type=e["y"], priority=e["p"],
        timestamp=ts, resources={c.name: c.quantity for c in extras.resources}, qos=extras.qos,
        labels=extras.labels, exit_state=extras.exit_state,
    )  # fmt: skip
    breakdown = CostBreakdown(*(Decimal(x) for x in e["c"]))
    cost = JobCost(
        job_id=e["j"], tenant_id=e["t"], queue_name=e["q"], job_type=e["y"], timestamp=ts,
        total_cost=breakdown.total, cost_breakdown=breakdown, cost_model_version=e["v"], resources=extras.resources,
        labels=extras.labels,
    )  # fmt: skip
    keys = tuple(SpendKey(b, date.fromisoformat(p)) for b, p in e["k"])
    return JobRecord(metrics=metrics, cost=cost, timestamp=ts, day=ts.date(), spend_keys=keys)


def _line(r: JobRecord) -> bytes:
    body = json.dumps(_entry(r), separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def read_records(path: Path) -> list[JobRecord]:
    """The acknowledged records of a journal file (a torn or damaged tail skipped)."""
    out: list[JobRecord] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            crc, _, body = raw.rstrip(b"\n").partition(b" ")
            try:
                if not raw.endswith(b"\n") or int(crc, 16) != zlib.crc32(body):
                    raise ValueError("checksum")
                out.append(_record(json.loads(body)))
            except (ValueError, KeyError, TypeError, IndexError):
                log.warning("journal %s: line %d is torn or damaged; it and what follows are skipped", path, number)
                break
    return out


@dataclass
class Abandoned:
    """A dead process's journal, locked by this process until :meth:`done`."""

    path: Path
    records: list[JobRecord]
    _fd: int

    def done(self) -> None:
        """Its records are in the ledger: delete it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)


class FileJournal:
    """This process's journal in ``folder`` (created if missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._generation = 0  # counts the files this process started
        #: rotated files (generation, path, fd), still locked: removed when the drain is past them
        self._old: list[tuple[int, Path, int]] = []

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError("metering_journal", str(self.folder), f"cannot be created: {exc.strerror}") from None
        self._start_file()

    def _start_file(self) -> None:
        path = self.folder / f"journal-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name is durable too
        finally:
            os.close(dir_fd)
        self._fd, self._path, self._size = fd, path, 0
        self._generation += 1

    def append(self, records: Sequence[JobRecord]) -> tuple[int, int]:
        """Durable when this returns (written and ``fdatasync``'d); returns the
        position after them, for :meth:`applied`."""
        data = b"".join(_line(r) for r in records)
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the journal is not open")
            if self._size > ROTATE_BYTES and self._path is not None:
                # kept open, so still locked: no other process replays what this one drains
                self._old.append((self._generation, self._path, self._fd))
                self._start_file()
            assert self._fd is not None
            os.write(self._fd, data)
            os.fdatasync(self._fd)
            self._size += len(data)
            return self._generation, self._size

    def applied(self, position: tuple[int, int]) -> None:
        """Everything appended up to ``position`` is in the ledger: remove the files
        before it, and empty the current one if nothing was appended since."""
        generation, offset = position
        with self._lock:
            if self._fd is not None and generation == self._generation and offset == self._size and self._size:
                os.ftruncate(self._fd, 0)
                os.fdatasync(self._fd)
                self._size = 0
            keep = []
            for older, path, fd in self._old:
                if older < generation:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    os.close(fd)
                else:
                    keep.append((older, path, fd))
            self._old = keep

    def abandoned(self) -> Iterator[Abandoned]:
        """The journals of processes that died, each locked by this process while it
        is replayed (a live process's journal is locked and left alone)."""
        for path in sorted(self.folder.glob("journal-*.log")):
            if path == self._path or any(path == old for _, old, _ in self._old):
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            yield Abandoned(path, read_records(path), fd)

    def close(self) -> None:
        """Close (and remove, when empty) this process's journal."""
        with self._lock:
            if self._fd is None:
                return
            empty = self._size == 0 and not self._old
            os.close(self._fd)
            self._fd = None
            for _, _, fd in self._old:  # still holding jobs: the next process replays them
                os.close(fd)
            self._old = []
            if empty and self._path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._path.unlink()
