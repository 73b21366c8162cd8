"""The HTTP API end to end: ``jobbudget serve`` in a subprocess, driven over 127.0.0.1
from this process, on SQLite and PostgreSQL, with 1,000 budgets over 100 tenants.

1. ``POST /v1/check`` at a fixed rate (open loop, 1,000 req/s for 10 s; latency from
   the *scheduled* send time, so a stalled server is not hidden by a stalled client:
   no coordinated omission) -> p50/p99/max, errors.  Target: p99 <= 5 ms.
2. The highest sustained check rate: a closed loop of N concurrent clients for 10 s,
   with ``--workers 1`` and ``--workers 2``.
3. ``POST /v1/jobs`` in batches of 1,000 jobs (5 % redelivered) -> jobs/s.
   Target: >= 10,000 jobs/s; with ``--workers 2`` (two batches in flight) at least
   0.6 x the rate of the same bodies stored in process (measured in the same run).

    .venv/bin/python benchmarks/bench_api.py [--backend sqlite|postgres|both] [--quick]

The client and the server share the machine: on a small one the client's own CPU
use caps what it can measure (the figures say how many cores there were).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _common import POSTGRES_URL, free_port, jobbudget_cli, report, summarize_latencies

from jobbudget import Budget, BudgetPeriod, BudgetService, Config, JobMetrics

TENANTS = 100
QUEUES = 9  # per tenant, plus one tenant-wide budget: 1,000 budgets
BATCH = 1000
DUPLICATE_SHARE = 0.05
HOST = "127.0.0.1"
TARGET_P99_MS = 5.0
TARGET_JOBS_PER_S = 10_000


@dataclass
class Backend:
    name: str
    database_url: str
    schema: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def config(self) -> Config:
        return Config(database_url=self.database_url, database_schema=self.schema)

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBUDGET_")}
        env["JOBBUDGET_DATABASE_URL"] = self.database_url
        if self.schema:
            env["JOBBUDGET_DATABASE_SCHEMA"] = self.schema
        return env


# ---------------------------------------------------------------- setup


def create_budgets(backend: Backend) -> int:
    """1,000 budgets over 100 tenants, straight through the service (before serving)."""
    with BudgetService(backend.config()) as service:
        for t in range(TENANTS):
            tenant = f"tenant-{t:03d}"
            service.create_budget(Budget(tenant_id=tenant, amount=Decimal(10_000_000), period=BudgetPeriod("monthly")))
            for q in range(QUEUES):
                service.create_budget(
                    Budget(
                        tenant_id=tenant,
                        queue_name=f"queue-{q}",
                        amount=Decimal(1_000_000),
                        period=BudgetPeriod("monthly"),
                    )
                )
        return len(service.list_budgets())


def create_admin_key(backend: Backend) -> str:
    done = subprocess.run(
        [
            *jobbudget_cli(),
            "apikey",
            "create",
            "--role",
            "admin",
            "--name",
            "bench",
            "--json",
            "--database-url",
            backend.database_url,
        ],
        env=backend.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"apikey create failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return str(json.loads(done.stdout)["key"])


class Server:
    """``jobbudget serve`` in its own process group (stopped with SIGTERM, then SIGKILL)."""

    def __init__(self, backend: Backend, workers: int, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.workers = workers
        self.log_path = log_dir / f"serve-{backend.name}-w{workers}-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *jobbudget_cli(),
                "serve",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--database-url",
                backend.database_url,
            ],
            env={**backend.child_env(), "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.tail()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"the server was not up in {timeout} s: {self.tail()}")

    def tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group of the process started here
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- load


def check_bodies(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [
        json.dumps(
            {
                "tenant_id": f"tenant-{rng.randrange(TENANTS):03d}",
                "queue_name": f"queue-{rng.randrange(QUEUES)}",
                "priority": 9 if rng.random() < 0.01 else 5,
            }
        ).encode()
        for _ in range(n)
    ]


class HttpxClient:
    """httpx.AsyncClient with a connection pool of ``connections``."""

    name = "httpx"

    def __init__(self, url: str, key: str, connections: int) -> None:
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(30.0),
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self.http.post(path, content=body)
        return response.status_code, response.content

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (Content-Length bodies
    only): a fraction of httpx's CPU per request, so that a client sharing a small
    machine with the server measures the server rather than itself."""

    name = "raw"

    def __init__(self, url: str, key: str, connections: int) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.head = (
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nConnection: keep-alive\r\n"
        ).encode()
        self.limit = connections
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.waiters: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle:
            return self.idle.pop()
        if self.opened < self.limit:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port, limit=1 << 22)
            except BaseException:
                self.opened -= 1
                raise
        return await self.waiters.get()

    def _release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        if self.waiters._getters:  # type: ignore[attr-defined]  # someone is waiting: hand over
            self.waiters.put_nowait(conn)
        else:
            self.idle.append(conn)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        conn = await self._acquire()
        reader, writer = conn
        try:
            writer.write(
                b"POST "
                + path.encode()
                + b" HTTP/1.1\r\n"
                + self.head
                + b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = None
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length is None:
                raise httpx.RemoteProtocolError("no Content-Length in the response")
            content = await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        if close:
            writer.close()
            self.opened -= 1
        else:
            self._release(conn)
        return status, content

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


CLIENTS: dict[str, type[HttpxClient] | type[RawClient]] = {"httpx": HttpxClient, "raw": RawClient}
CLIENT_ERRORS = (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def client(kind: str, url: str, key: str, connections: int) -> HttpxClient | RawClient:
    return CLIENTS[kind](url, key, connections)


async def warm_up(http: HttpxClient | RawClient, bodies: list[bytes]) -> None:
    for body in bodies:
        status, content = await http.post("/v1/check", body)
        if status != 200:
            raise RuntimeError(f"POST /v1/check -> {status}: {content[:500]!r}")


def client_cpu_share(cpu0: float, wall0: float) -> float:
    """This process's CPU time over the wall time since ``(cpu0, wall0)``: near 1.0, the
    client (one event loop) is saturated and the figures are the client's, not the server's."""
    return round((time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0), 2)


async def open_loop(kind: str, url: str, key: str, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    """Requests sent on a fixed schedule whatever the server does; each latency runs
    from its scheduled send time to its response."""
    n = int(rate * seconds)
    bodies = check_bodies(n, seed=5)
    interval = 1.0 / rate
    latencies: list[int] = []
    statuses: Counter[str] = Counter()
    late_sends = 0
    clock = time.perf_counter_ns
    async with client(kind, url, key, connections) as http:
        await warm_up(http, check_bodies(200, seed=4))

        # At most `connections` requests in flight, the rest wait here (a plain FIFO,
        # not httpcore's pool queue, which gets slow with thousands of waiters); the
        # wait counts in the latency, which runs from the scheduled send time.
        in_flight = asyncio.Semaphore(connections)

        async def one(body: bytes, scheduled: int) -> None:
            async with in_flight:
                try:
                    status, _ = await http.post("/v1/check", body)
                    statuses[str(status)] += 1
                except CLIENT_ERRORS as exc:
                    statuses[type(exc).__name__] += 1
            latencies.append(clock() - scheduled)

        tasks: set[asyncio.Task[None]] = set()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        start = clock() + 20_000_000  # 20 ms from now
        step = round(interval * 1e9)
        i = 0
        while i < n:
            now = clock()
            due = start + i * step
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
                now = clock()
            if now - due > 1_000_000:  # the client itself fell over 1 ms behind
                late_sends += 1
            while i < n and start + i * step <= now:  # everything due, with its own schedule
                task = asyncio.create_task(one(bodies[i], start + i * step))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
        send_end = clock()
        while tasks:
            await asyncio.gather(*list(tasks))
        elapsed = (send_end - start) / 1e9
        cpu_share = client_cpu_share(cpu0, wall0)
    summary = summarize_latencies(latencies)
    errors = sum(v for k, v in statuses.items() if k != "200")
    over_target = sum(1 for v in latencies if v > TARGET_P99_MS * 1e6)
    return {
        "rate_target": rate,
        "seconds": seconds,
        "requests": n,
        "achieved_send_rate": round(n / elapsed) if elapsed > 0 else None,
        "client_late_sends": late_sends,
        "client_cpu_share": cpu_share,
        "errors": errors,
        "statuses": dict(statuses),
        "p50_ms": round(summary["p50_us"] / 1000, 3),
        "p99_ms": round(summary["p99_us"] / 1000, 3),
        "p999_ms": round(summary["p999_us"] / 1000, 3),
        "max_ms": round(summary["max_us"] / 1000, 3),
        "mean_ms": round(summary["mean_us"] / 1000, 3),
        "share_over_target": round(over_target / max(1, len(latencies)), 4),
    }


async def closed_loop(kind: str, url: str, key: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` clients each sending the next request when the last one answered."""
    bodies = check_bodies(20_000, seed=6)
    latencies: list[int] = []
    statuses: Counter[str] = Counter()
    clock = time.perf_counter_ns
    async with client(kind, url, key, concurrency) as http:
        await warm_up(http, check_bodies(200, seed=4))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stop_at = clock() + int(seconds * 1e9)

        async def worker(w: int) -> None:
            i = w
            while clock() < stop_at:
                t0 = clock()
                try:
                    status, _ = await http.post("/v1/check", bodies[i % len(bodies)])
                    statuses[str(status)] += 1
                except CLIENT_ERRORS as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(clock() - t0)
                i += concurrency

        start = clock()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = (clock() - start) / 1e9
        cpu_share = client_cpu_share(cpu0, wall0)
    ok = statuses.get("200", 0)
    summary = summarize_latencies(latencies)
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "checks_per_s": round(ok / elapsed),
        "errors": len(latencies) - ok,
        "client_cpu_share": cpu_share,
        "statuses": dict(statuses),
        "p50_ms": round(summary["p50_us"] / 1000, 3),
        "p99_ms": round(summary["p99_us"] / 1000, 3),
    }


def job_batches(n_batches: int, start: datetime) -> list[bytes]:
    """``n_batches`` bodies of ``{"jobs": [...]}``, 1,000 jobs each, 5 % of them
    redelivered from the previous batch."""
    rng = random.Random(11)
    out: list[bytes] = []
    previous: list[dict[str, Any]] = []
    seq = 0
    for _ in range(n_batches):
        batch: list[dict[str, Any]] = []
        for _ in range(BATCH):
            if previous and rng.random() < DUPLICATE_SHARE:
                batch.append(rng.choice(previous))
                continue
            batch.append(
                {
                    "job_id": f"job-{uuid.uuid4().hex[:8]}-{seq:09d}",
                    "tenant_id": f"tenant-{rng.randrange(TENANTS):03d}",
                    "queue_name": f"queue-{rng.randrange(QUEUES + 1)}",
                    "cpu_time": round(rng.uniform(0.1, 600), 3),
                    "memory_mb_seconds": rng.randint(100, 2_000_000),
                    "payload_bytes": rng.randint(0, 200_000),
                    "redis_ops": rng.randint(0, 200),
                    "network_bytes": rng.randint(0, 10_000_000),
                    "job_type": "batch",
                    "timestamp": (start + timedelta(seconds=seq * 0.05)).isoformat(),
                }
            )
            seq += 1
        out.append(json.dumps({"jobs": batch}).encode())
        previous = batch
    return out


def in_process_jobs(backend: Backend, n_batches: int) -> dict[str, Any]:
    """The floor of ``POST /v1/jobs``: the same bodies parsed and stored by
    ``process_job_costs`` in this process (no HTTP), one after the other."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    bodies = job_batches(n_batches + 1, start)

    def parse(body: bytes) -> list[JobMetrics]:
        return [
            JobMetrics(**{**j, "timestamp": datetime.fromisoformat(j["timestamp"])}) for j in json.loads(body)["jobs"]
        ]

    with BudgetService(backend.config()) as service:
        service.process_job_costs(parse(bodies[0]))
        t0 = time.perf_counter()
        for body in bodies[1:]:
            service.process_job_costs(parse(body))
        elapsed = time.perf_counter() - t0
    return {"batches": n_batches, "jobs_per_s": round(n_batches * BATCH / elapsed)}


async def post_jobs(kind: str, url: str, key: str, n_batches: int, in_flight: int = 1) -> dict[str, Any]:
    """One warm-up batch, then ``n_batches`` timed ones, ``in_flight`` at a time."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    bodies = job_batches(n_batches + 1, start)
    inserted = duplicates = errors = 0
    per_batch: list[float] = []
    async with client(kind, url, key, max(2, in_flight)) as http:
        status, content = await http.post("/v1/jobs", bodies[0])
        if status != 200:
            raise RuntimeError(f"POST /v1/jobs -> {status}: {content[:500]!r}")
        cpu0, t_start = time.process_time(), time.perf_counter()
        queue = list(bodies[1:])

        async def poster() -> None:
            nonlocal inserted, duplicates, errors
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                status, content = await http.post("/v1/jobs", body)
                per_batch.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
                    continue
                data = json.loads(content)
                inserted += int(data["inserted"])
                duplicates += len(data["duplicates"])

        await asyncio.gather(*(poster() for _ in range(in_flight)))
        elapsed = time.perf_counter() - t_start
        cpu_share = client_cpu_share(cpu0, t_start)
    jobs = n_batches * BATCH
    per_batch.sort()
    return {
        "batches": n_batches,
        "batch_size": BATCH,
        "jobs_submitted": jobs,
        "inserted": inserted,
        "duplicates": duplicates,
        "errors": errors,
        "jobs_per_s": round(jobs / elapsed),
        "batch_ms_median": round(per_batch[len(per_batch) // 2] * 1000, 1),
        "batch_ms_max": round(per_batch[-1] * 1000, 1),
        "client_cpu_share": cpu_share,
    }


# ---------------------------------------------------------------- driver


def run_client(kind: str, server: Server, key: str, args: argparse.Namespace, label: str) -> dict[str, Any]:
    print(f"[{label} {kind}] open loop {args.rate:.0f} req/s for {args.seconds} s", flush=True)
    result: dict[str, Any] = {
        "check_open_loop": asyncio.run(open_loop(kind, server.url, key, args.rate, args.seconds, args.connections))
    }
    print(f"[{label} {kind}] closed loop x{args.concurrency}, 1 worker", flush=True)
    result["check_max_rate"] = {
        "workers_1": asyncio.run(closed_loop(kind, server.url, key, args.concurrency, args.seconds))
    }
    print(f"[{label} {kind}] {args.batches} job batches", flush=True)
    result["jobs"] = asyncio.run(post_jobs(kind, server.url, key, args.batches))
    return result


def run_backend(backend: Backend, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    budgets = create_budgets(backend)
    key = create_admin_key(backend)
    result: dict[str, Any] = {"budgets": budgets, "tenants": TENANTS}
    with Server(backend, 1, log_dir) as server:
        for kind in args.clients:
            result[kind] = run_client(kind, server, key, args, backend.name)
    for workers in args.more_workers:
        with Server(backend, workers, log_dir) as server:
            for kind in args.clients:
                print(f"[{backend.name} {kind}] closed loop x{args.concurrency}, {workers} workers", flush=True)
                result[kind]["check_max_rate"][f"workers_{workers}"] = asyncio.run(
                    closed_loop(kind, server.url, key, args.concurrency, args.seconds)
                )
                print(f"[{backend.name} {kind}] {args.batches} job batches, {workers} workers", flush=True)
                result[kind][f"jobs_workers_{workers}"] = asyncio.run(
                    post_jobs(kind, server.url, key, args.batches, in_flight=workers)
                )
    print(f"[{backend.name}] {args.batches} job batches in process (the floor)", flush=True)
    floor = in_process_jobs(backend, args.batches)
    result["jobs_in_process"] = floor
    for kind in args.clients:
        for workers in args.more_workers:
            rate = result[kind][f"jobs_workers_{workers}"]["jobs_per_s"]
            result[kind][f"jobs_workers_{workers}"]["ratio_to_in_process"] = round(rate / floor["jobs_per_s"], 2)
    for kind in args.clients:
        figures = result[kind]
        max_rate = figures["check_max_rate"]
        best = max(max_rate, key=lambda k: max_rate[k]["checks_per_s"])
        max_rate["best"] = best
        max_rate["best_checks_per_s"] = max_rate[best]["checks_per_s"]
        open_ = figures["check_open_loop"]
        figures["meets_p99_target"] = open_["p99_ms"] <= TARGET_P99_MS and open_["errors"] == 0
        figures["meets_jobs_target"] = figures["jobs"]["jobs_per_s"] >= TARGET_JOBS_PER_S
    return result


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def summary_table(figures: dict[str, Any]) -> str:
    columns = [(b, c) for b in figures["backends"] for c in figures["clients"]]
    rows = [("", *(f"{b} / {c} client" for b, c in columns))]

    def row(label: str, get: Any) -> None:
        rows.append((label, *(str(get(figures[b][c])) for b, c in columns)))

    rate = figures["rate"]
    row(f"check @{rate:.0f}/s p50 ms", lambda r: r["check_open_loop"]["p50_ms"])
    row(f"check @{rate:.0f}/s p99 ms (<= {TARGET_P99_MS})", lambda r: r["check_open_loop"]["p99_ms"])
    row(f"check @{rate:.0f}/s max ms", lambda r: r["check_open_loop"]["max_ms"])
    row(f"check @{rate:.0f}/s share > {TARGET_P99_MS} ms", lambda r: r["check_open_loop"]["share_over_target"])
    row(f"check @{rate:.0f}/s errors", lambda r: r["check_open_loop"]["errors"])
    row(f"check @{rate:.0f}/s client CPU share", lambda r: r["check_open_loop"]["client_cpu_share"])
    for w in ["workers_1", *(f"workers_{n}" for n in figures["more_workers"])]:
        label = w.replace("_", " ")
        row(f"max checks/s ({label})", lambda r, w=w: r["check_max_rate"][w]["checks_per_s"])
        row(
            f"  p99 ms / client CPU ({label})",
            lambda r, w=w: f"{r['check_max_rate'][w]['p99_ms']} / {r['check_max_rate'][w]['client_cpu_share']}",
        )
    row("max checks/s best of", lambda r: r["check_max_rate"]["best"])
    row(f"jobs/s (>= {TARGET_JOBS_PER_S})", lambda r: r["jobs"]["jobs_per_s"])
    row("jobs batch ms median / max", lambda r: f"{r['jobs']['batch_ms_median']} / {r['jobs']['batch_ms_max']}")
    for n in figures["more_workers"]:
        row(
            f"jobs/s ({n} workers, {n} in flight) / in process",
            lambda r, n=n: f"{r[f'jobs_workers_{n}']['jobs_per_s']} ({r[f'jobs_workers_{n}']['ratio_to_in_process']})",
        )
    row("p99 target met", lambda r: r["meets_p99_target"])
    row("jobs target met", lambda r: r["meets_jobs_target"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="2 s phases, 3 batches, 1 worker only")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop checks per second")
    parser.add_argument("--seconds", type=float, default=None, help="length of each check phase (10; quick: 2)")
    parser.add_argument("--batches", type=int, default=None, help="timed job batches (20; quick: 3)")
    parser.add_argument(
        "--client",
        choices=["httpx", "raw", "both"],
        default="both",
        help="httpx.AsyncClient, a minimal asyncio HTTP/1.1 client (far less client CPU), or both",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--connections", type=int, default=64, help="open-loop connection pool size")
    parser.add_argument(
        "--more-workers", type=int, nargs="*", default=None, help="worker counts also tried for the max rate (2)"
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.batches = args.batches or (3 if args.quick else 20)
    if args.more_workers is None:
        args.more_workers = [] if args.quick else [2]
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    args.clients = ["httpx", "raw"] if args.client == "both" else [args.client]
    figures: dict[str, Any] = {
        "backends": backends,
        "clients": args.clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "connections": args.connections,
        "more_workers": args.more_workers,
        "quick": args.quick,
        "client_and_server_share_cores": os.cpu_count(),
        "targets": {"check_p99_ms_at_1000_per_s": TARGET_P99_MS, "jobs_per_s": TARGET_JOBS_PER_S},
    }
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        try:
            for name in backends:
                if name == "sqlite":
                    backend = Backend("sqlite", f"sqlite:///{log_dir / 'bench.db'}")
                    figures["sqlite"] = run_backend(backend, args, log_dir)
                else:
                    schema = f"jbbench_api_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                    try:
                        figures["postgres"] = run_backend(Backend("postgres", POSTGRES_URL, schema), args, log_dir)
                    finally:
                        drop_schema(schema)
        except Exception:
            for log in sorted(log_dir.glob("serve-*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    print(summary_table(figures))
    report("api", figures)


if __name__ == "__main__":
    main()
