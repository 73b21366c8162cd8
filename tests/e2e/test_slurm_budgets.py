"""Budgets enforced at ``sbatch`` and jobs metered at their end, against a real Slurm
(the one-node cluster of ``scripts/slurm/cluster.sh``: slurmctld, slurmd, slurmdbd on
MariaDB) and a real ``jobbudget serve``, wired together by ``jobbudget slurm install``
exactly as docs/slurm.md tells an operator.

Prices are chosen so amounts are easy to check: a CPU-second costs 0.01, memory is
free, an A100-second costs 0.05.  A 1-CPU job with ``-t 1`` is priced for 60 s: 0.60."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from receivers import free_port
from slurm_support import CONF_DIR, cluster, finished, run, squeue_state

from .conftest import StartServer
from .server import LiveServer, jobbudget_command

CPU_PRICE = Decimal("0.01")
GPU_PRICE = Decimal("0.05")
CONFIG: dict[str, Any] = {
    "slurm": {"tenants": {"root": "acme"}, "default_time_limit": "1h"},
    "cost_model": {
        "preset": "default",
        "cpu_time_weight": str(CPU_PRICE),
        "memory_weight": "0",
        "payload_weight": "0",
        "redis_ops_weight": "0",
        "network_weight": "0",
        "base_job_weight": "0",
        "environment_multiplier": "1",
        "resources": {"gpu:a100": str(GPU_PRICE)},
    },
}


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    with cluster():
        yield


@pytest.fixture
def jb(slurm: None, start_server: StartServer) -> LiveServer:
    """A fresh server with jobbudget's job_submit.lua and jobcomp script installed for it."""
    server = start_server(config=CONFIG)
    install(server.url, key=server.admin_key)
    return server


def install(url: str, *, key: str | None = None, fail: str = "open", timeout: str = "1") -> str:
    args = ["slurm", "install", "--url", url, "--dir", str(CONF_DIR), "--fail", fail, "--timeout", timeout, "--force"]
    if key is not None:
        args += ["--key", key]
    return run(jobbudget_command(), *args)


def sbatch(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sbatch", "--parsable", "-o", str(out / "job-%j.out"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def job_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def budget(server: LiveServer, amount: str, queue: str = "", **fields: Any) -> str:
    with server.client() as client:
        response = client.post(
            "/v1/budgets", json={"tenant_id": "acme", "queue_name": queue, "amount": amount, **fields}
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])


def spend(server: LiveServer, queue: str, cpu_seconds: str) -> None:
    """Spend that was there before (a job metered through the API)."""
    with server.client() as client:
        job = {"job_id": f"before-{queue}-{cpu_seconds}", "tenant_id": "acme", "queue_name": queue}
        job |= {"cpu_time": int(cpu_seconds), "memory_mb_seconds": 0, "payload_bytes": 0, "redis_ops": 0}
        response = client.post("/v1/jobs", json=job | {"network_bytes": 0})
        assert response.status_code == 200, response.text


def spent_and_held(server: LiveServer, queue: str) -> tuple[Decimal, Decimal]:
    """(spend, spend plus open holds) of acme's queue: ``/v1/check`` counts holds."""
    with server.client() as client:
        checked = client.post("/v1/check", json={"tenant_id": "acme", "queue_name": queue}).json()
        ids = [b["id"] for b in client.get("/v1/budgets", params={"tenant": "acme"}).json()]
        statuses = [client.get(f"/v1/budgets/{i}/status").json() for i in ids]
    mine = [s for s in statuses if s["budget"]["id"] == checked["budget_id"]]
    assert mine, (checked, statuses)
    return Decimal(mine[0]["current_spend"]), Decimal(checked["current_spend"])


def metered(server: LiveServer, slurm_id: str) -> dict[str, Any] | None:
    with server.client() as client:
        response = client.get(f"/v1/jobs/acme/slurm-{slurm_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wait_metered(server: LiveServer, slurm_id: str, timeout: float = 30) -> tuple[dict[str, Any], float]:
    """The job once jobbudget stored it, and the seconds from slurmctld first showing it
    ended to jobbudget having it (polled every 20 ms)."""
    ended_at: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = squeue_state(slurm_id)
        if ended_at is None and (state.split(" ")[0] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") or not state):
            ended_at = time.monotonic()
        job = metered(server, slurm_id)
        if job is not None:
            return job, time.monotonic() - (ended_at or time.monotonic())
        time.sleep(0.02)
    raise AssertionError(f"job {slurm_id} was not metered within {timeout} s (squeue: {squeue_state(slurm_id)})")


def next_month(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def test_a_job_over_budget_is_refused_with_the_budget_in_words(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "5000", queue="gpu", period={"type": "monthly"})
    spend(jb, "gpu", "510240")  # 5,102.40 at 0.01
    done = sbatch("-p", "gpu", "-c", "1", "-t", "1", "--wrap", "true", out=tmp_path)
    assert done.returncode != 0, done.stdout
    resets = next_month(datetime.now(UTC).date())
    expected = "sbatch: error: budget acme/gpu: 5,102.40 of 5,000.00 USD spent this month (block at 100 %)"
    assert expected in done.stderr, done.stderr
    assert f"resets {resets}" in done.stderr, done.stderr
    assert spent_and_held(jb, "gpu") == (Decimal("5102.4"), Decimal("5102.4"))  # nothing held for it


def test_a_job_under_budget_runs_is_metered_at_its_end_and_its_hold_settled(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="gpu")
    done = sbatch("-p", "gpu", "-c", "1", "--gres=gpu:a100:1", "-t", "1", "--wrap", "sleep 2", out=tmp_path)
    slurm_id = job_id(done)
    spent, held = spent_and_held(jb, "gpu")
    estimate = 60 * CPU_PRICE + 60 * GPU_PRICE  # 1 CPU and 1 A100 for its 1-minute limit
    assert (spent, held) == (0, estimate)
    job, delay = wait_metered(jb, slurm_id)
    assert delay < 2.0, f"metered {delay:.2f} s after slurmctld showed the job ended"
    record = finished(slurm_id).split("|")
    assert record[1] == "COMPLETED"
    elapsed = int(run("sacct", "-X", "-n", "-j", slurm_id, "-o", "ElapsedRaw").split()[0])
    actual = elapsed * (CPU_PRICE + GPU_PRICE)
    assert Decimal(job["total_cost"]) == actual, (job, elapsed)
    assert {r["name"]: Decimal(r["quantity"]) for r in job["resources"]} == {"gpu:a100": elapsed}
    assert spent_and_held(jb, "gpu") == (actual, actual)  # the hold is gone: the actual cost replaced it
    assert (tmp_path / f"job-{slurm_id}.out").exists()


def test_twenty_concurrent_sbatch_against_a_budget_for_ten_never_admit_an_eleventh(
    jb: LiveServer, tmp_path: Path
) -> None:
    budget(jb, "6", queue="gpu")  # ten jobs of 0.60
    with ThreadPoolExecutor(20) as pool:
        runs = list(pool.map(lambda _: sbatch("-p", "gpu", "-c", "1", "-t", "1", "--hold", "--wrap", "true",
                                              out=tmp_path), range(20)))  # fmt: skip
    admitted = [job_id(r) for r in runs if r.returncode == 0]
    refused = [r.stderr for r in runs if r.returncode != 0]
    try:
        assert len(admitted) == 10, (len(admitted), refused)
        # refused as the holds reach the block, or as this job's estimate would pass it
        assert all("sbatch: error: budget acme/gpu: 0.00 of 6.00 USD spent this month, " in t for t in refused), refused
        assert all("held for jobs not ended yet" in t and "block at 100 %" in t for t in refused), refused
        assert spent_and_held(jb, "gpu") == (0, Decimal("6.00"))
    finally:
        if admitted:
            run("scancel", *admitted)
    # cancelled while pending (held): never ran, so their holds are released, nothing billed
    deadline = time.monotonic() + 10
    while spent_and_held(jb, "gpu")[1] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spent_and_held(jb, "gpu") == (0, 0)
    assert all(metered(jb, i) is None for i in admitted)


def test_failed_and_cancelled_jobs_are_billed_for_what_they_ran(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="debug")
    failed = job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--wrap", "sleep 1; exit 3", out=tmp_path))
    running = job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--wrap", "sleep 30", out=tmp_path))
    deadline = time.monotonic() + 30
    while squeue_state(running) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    run("scancel", running)
    for slurm_id, state in ((failed, "FAILED"), (running, "CANCELLED")):
        job, _ = wait_metered(jb, slurm_id)
        elapsed = int(run("sacct", "-X", "-n", "-j", slurm_id, "-o", "ElapsedRaw").split()[0])
        assert finished(slurm_id).split("|")[1].startswith(state)
        assert Decimal(job["total_cost"]) == elapsed * CPU_PRICE and elapsed >= 1, (job, elapsed)
    assert spent_and_held(jb, "debug")[0] == spent_and_held(jb, "debug")[1]  # no hold left behind


def test_a_throttled_job_gets_a_lower_priority(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "10", queue="gpu")
    spend(jb, "gpu", "920")  # 9.20: 92 %: over the throttle threshold (90 %), under the block
    done = sbatch("-p", "gpu", "-c", "1", "-t", "1", "--hold", "--wrap", "true", out=tmp_path)
    slurm_id = job_id(done)
    try:
        assert "jobbudget: budget acme/gpu: 9.20 of 10.00 USD spent this month (throttle at 90 %)" in done.stderr
        assert "lower priority (nice 5000)" in done.stderr, done.stderr  # default throttle factor 0.5
        assert run("squeue", "-h", "-j", slurm_id, "-o", "%y").strip() == "5000"
    finally:
        run("scancel", slurm_id)


class _Silent:
    """A port that accepts connections and never answers (a hung jobbudget)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for s in self.held:
            s.close()


@pytest.mark.parametrize("fail", ["open", "closed"])
def test_without_jobbudget_submission_answers_within_the_timeout_in_the_failure_mode(
    slurm: None, tmp_path: Path, fail: str
) -> None:
    silent = _Silent()
    key = tmp_path / "key"
    try:
        for url in (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{silent.port}"):  # refused, then hung
            install(url, key="not-a-real-key", fail=fail)
            started = time.monotonic()
            done = sbatch("-p", "debug", "-c", "1", "-t", "1", "--hold", "--wrap", "true", out=tmp_path)
            took = time.monotonic() - started
            assert took < 2.5, f"sbatch took {took:.2f} s with jobbudget at {url} unreachable"
            if fail == "open":
                run("scancel", job_id(done))
            else:
                assert done.returncode != 0
                assert "jobbudget, which checks budgets, is not answering" in done.stderr, done.stderr
    finally:
        silent.close()
        key.unlink(missing_ok=True)


def test_jobs_missed_while_jobbudget_was_down_are_backfilled_once(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="debug")
    since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")  # sacct reads local time
    before = job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--wrap", "true", out=tmp_path))
    wait_metered(jb, before)
    jb.stop()  # jobbudget down: sbatch fails open, the jobcomp script cannot reach it
    missed = [job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--wrap", "sleep 1", out=tmp_path)) for _ in range(3)]
    for slurm_id in missed:
        finished(slurm_id)
    jb.relaunch()
    assert all(metered(jb, i) is None for i in missed)
    backfill = [jobbudget_command(), "slurm", "backfill", "--url", jb.url, "--key-file", str(CONF_DIR / "jobbudget.key"),
                "--since", since, "--json"]  # fmt: skip
    first = json.loads(run(*backfill))
    again = json.loads(run(*backfill))
    assert first["rejected"] == [] and again["rejected"] == [], (first, again)
    assert (first["stored"], first["duplicates"]) == (3, 1), first  # the one metered at its end: once
    assert (again["stored"], again["duplicates"]) == (0, 4), again
    for slurm_id in [before, *missed]:
        job = metered(jb, slurm_id)
        elapsed = int(run("sacct", "-X", "-n", "-j", slurm_id, "-o", "ElapsedRaw").split()[0])
        assert job is not None and Decimal(job["total_cost"]) == elapsed * CPU_PRICE, (slurm_id, job)


def test_a_pending_job_cannot_change_what_its_budget_was_checked_for(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="gpu")
    slurm_id = job_id(sbatch("-p", "gpu", "-c", "1", "-t", "2", "--hold", "--wrap", "true", out=tmp_path))
    try:
        for change in ("partition=debug", "account=other", "numcpus=2", "timelimit=3"):
            done = subprocess.run(["scontrol", "update", f"jobid={slurm_id}", change], capture_output=True, text=True)
            assert done.returncode != 0, (change, done.stdout)
        assert run("squeue", "-h", "-j", slurm_id, "-o", "%P %a %C %l").split() == ["gpu", "root", "1", "2:00"]
        log = Path("/var/log/jobbudget-slurm/slurmctld.log").read_text(errors="replace")
        assert "jobbudget: this job's partition cannot change: its budget was checked" in log
        run("scontrol", "update", f"jobid={slurm_id}", "timelimit=1")  # less time than held: fine
        assert run("squeue", "-h", "-j", slurm_id, "-o", "%l").strip() == "1:00"
    finally:
        run("scancel", slurm_id)


def test_a_job_lost_to_a_node_failure_is_refunded(jb: LiveServer, tmp_path: Path) -> None:
    """The refund policy (refund_exit_states: NODE_FAIL, PREEMPTED, BOOT_FAIL): the job
    is metered for what it ran, then credited back, audited."""
    budget(jb, "100", queue="debug")
    node = run("sinfo", "-h", "-N", "-o", "%N").split()[0]
    slurm_id = job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--no-requeue", "--wrap", "sleep 30", out=tmp_path))
    try:
        deadline = time.monotonic() + 30
        while squeue_state(slurm_id) != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
        run("scontrol", "update", f"nodename={node}", "state=down", "reason=jobbudget-test")
        job, _ = wait_metered(jb, slurm_id)
    finally:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
        deadline = time.monotonic() + 30
        while "idle" not in run("sinfo", "-h", "-N", "-o", "%T") and time.monotonic() < deadline:
            time.sleep(0.2)
    assert Decimal(job["total_cost"]) > 0
    with jb.client() as client:
        refunds = client.get("/v1/adjustments", params={"tenant": "acme"}).json()
    assert [(a["job_id"], a["kind"], Decimal(a["amount"])) for a in refunds] == [
        (f"slurm-{slurm_id}", "refund", -Decimal(job["total_cost"]))
    ], refunds
    assert spent_and_held(jb, "debug") == (0, 0)


def test_a_gpu_type_without_a_price_is_refused_not_billed_as_free(
    slurm: None, start_server: StartServer, tmp_path: Path
) -> None:
    unpriced = {**CONFIG, "cost_model": {**CONFIG["cost_model"], "resources": {"gpu:h100": "0.08"}}}
    server = start_server(config=unpriced)
    install(server.url, key=server.admin_key, fail="open")  # refused even failing open: it cannot be priced
    done = sbatch("-p", "gpu", "-c", "1", "--gres=gpu:a100:1", "-t", "1", "--wrap", "true", out=tmp_path)
    assert done.returncode != 0, done.stdout
    assert "sbatch: error: jobbudget cannot price this job: resources.gpu:a100: the cost model has no price" in (
        done.stderr
    ), done.stderr


def held_only(server: LiveServer, queue: str) -> Decimal:
    spent, with_holds = spent_and_held(server, queue)
    return with_holds - spent


def test_an_arrays_hold_stays_until_its_last_task_ends(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="gpu")
    array = job_id(sbatch("-p", "gpu", "-c", "1", "-t", "1", "--array=1-3", "--wrap", "sleep 1", out=tmp_path))
    assert held_only(jb, "gpu") == Decimal("1.80")  # 3 tasks x 0.60
    deadline = time.monotonic() + 60
    tasks: list[str] = []
    while time.monotonic() < deadline:
        tasks = run("sacct", "-n", "-X", "-P", "-j", array, "-o", "JobIDRaw").split()
        if len(tasks) == 3 and any(metered(jb, t) for t in tasks):
            break
        time.sleep(0.05)
    first = [t for t in tasks if metered(jb, t)]
    if len(first) < 3:  # tasks still to end: the whole hold is still there
        assert held_only(jb, "gpu") == Decimal("1.80"), (first, tasks)
    costs = [Decimal(wait_metered(jb, t)[0]["total_cost"]) for t in tasks]
    assert spent_and_held(jb, "gpu") == (sum(costs), sum(costs))  # the last task settled it


def test_a_requeued_run_is_billed_and_the_job_still_holds_for_its_next_run(jb: LiveServer, tmp_path: Path) -> None:
    budget(jb, "100", queue="debug")
    slurm_id = job_id(sbatch("-p", "debug", "-c", "1", "-t", "1", "--requeue", "--wrap", "sleep 3", out=tmp_path))
    deadline = time.monotonic() + 30
    while squeue_state(slurm_id) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    run("scontrol", "requeue", slurm_id)
    time.sleep(1)  # Slurm makes a requeued job wait (its BeginTime): let it start again now
    subprocess.run(["scontrol", "update", f"jobid={slurm_id}", "starttime=now"], capture_output=True)
    job, _ = wait_metered(jb, slurm_id, timeout=90)  # the second run, to its end
    runs = run("sacct", "-D", "-n", "-X", "-P", "-j", slurm_id, "-o", "State,ElapsedRaw").split()
    assert [r.split("|")[0] for r in runs] == ["REQUEUED", "COMPLETED"], runs
    first_elapsed = int(runs[0].split("|")[1])
    spent, with_holds = spent_and_held(jb, "debug")
    assert spent == with_holds == (first_elapsed + int(runs[1].split("|")[1])) * CPU_PRICE, (runs, spent)
    assert Decimal(job["total_cost"]) == int(runs[1].split("|")[1]) * CPU_PRICE


def test_a_hung_jobbudget_does_not_hold_up_slurmctld(slurm: None, tmp_path: Path) -> None:
    """Ten submissions at once against a jobbudget that accepts connections and never
    answers: the first waits for the timeout, the others find the failure fresh and
    go straight to the failure mode, so slurmctld is not held for ten timeouts."""
    silent = _Silent()
    try:
        install(f"http://127.0.0.1:{silent.port}", key="not-a-real-key", fail="open")
        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            runs = list(pool.map(lambda _: sbatch("-p", "debug", "-c", "1", "-t", "1", "--hold", "--wrap", "true",
                                                  out=tmp_path), range(10)))  # fmt: skip
        took = time.monotonic() - started
        ids = [job_id(r) for r in runs]
        run("scancel", *ids)
        assert took < 5, f"10 submissions took {took:.1f} s against a hung jobbudget"
    finally:
        silent.close()


def test_a_job_name_cannot_pass_for_another_jobs_hold(jb: LiveServer, tmp_path: Path) -> None:
    """A job name can hold another job's mark (any user may read it with ``scontrol
    show job``): the jobcomp script trusts a mark only when exactly one appears."""
    budget(jb, "100", queue="gpu")
    victim = job_id(sbatch("-p", "gpu", "-c", "1", "-t", "1", "--hold", "--wrap", "true", out=tmp_path))
    shown = run("scontrol", "show", "job", victim)  # what any user may read of another's job
    hold = next(line.split("=", 1)[1].strip() for line in shown.splitlines() if "AdminComment=" in line)
    assert hold.startswith("jobbudget:") and held_only(jb, "gpu") == Decimal("0.60")
    try:
        name = f"evil\n   AdminComment={hold}"
        attacker = job_id(sbatch("-p", "gpu", "-c", "1", "-t", "1", "-J", name, "--wrap", "true", out=tmp_path))
        wait_metered(jb, attacker)
        # the victim's hold is still there; so is the attacker's own: its name made its
        # marks two, so neither is trusted, and that hold lapses at its expiry
        assert held_only(jb, "gpu") == Decimal("1.20")
    finally:
        run("scancel", victim)


# -- the cluster itself, and the benchmark (in this module: one holder of the cluster) --------
FIELDS = (
    "JobID,User,Account,Partition,Submit,Start,End,ElapsedRaw,TotalCPU,CPUTimeRAW,MaxRSS,ReqMem,AllocCPUS,"
    "AllocTRES,NNodes,NodeList,State"
)


def test_a_job_runs_and_its_accounting_is_imported_once(slurm: None, tmp_path: Path) -> None:
    """The cluster itself: a job runs end to end, and ``jobbudget import --format sacct``
    stores its record once (the same export again is all duplicates)."""
    out = tmp_path / "job-%j.out"  # each job its own output path
    job_id = run("sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem", "100M", "-o", str(out),
                 "--wrap", "sleep 2; echo done").strip().split(";")[0]  # fmt: skip
    state = finished(job_id)
    assert state.split("|")[1] == "COMPLETED", state
    assert (tmp_path / f"job-{job_id}.out").read_text().strip() == "done"
    export = tmp_path / "sacct.txt"
    export.write_text(run("sacct", "-a", "-j", job_id, "--parsable2", "-o", FIELDS))
    database = f"sqlite:///{tmp_path / 'jb.db'}"
    jobbudget = jobbudget_command()
    first = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--database-url", database, "--json"))
    again = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--database-url", database, "--json"))
    assert first["stored"] == 1 and first["duplicates"] == 0, first
    assert again["stored"] == 0 and again["duplicates"] == 1, again  # a backfill run twice counts the job once


def test_a_typed_gpu_job_is_billed_for_its_gpu_seconds(slurm: None, tmp_path: Path) -> None:
    """A real Slurm's own record of a GPU job (AllocTRES gres/gpu:a100=1, from GPUs the
    node declares without hardware), imported at two prices of an A100-second: the
    difference is that price times the GPU-seconds sacct gives (ElapsedRaw x 1 GPU)."""
    job_id = run("sbatch", "--parsable", "-p", "gpu", "--gres=gpu:a100:1", "-c", "1", "--mem", "100M",
                 "-o", str(tmp_path / "gpu-%j.out"), "--wrap", "sleep 2").strip().split(";")[0]  # fmt: skip
    assert finished(job_id).split("|")[1] == "COMPLETED"
    export = tmp_path / "sacct.txt"
    export.write_text(run("sacct", "-a", "-j", job_id, "--parsable2", "-o", FIELDS))
    line = export.read_text().splitlines()[1].split("|")
    record = dict(zip(FIELDS.split(","), line, strict=True))
    assert "gres/gpu:a100=1" in record["AllocTRES"], record
    elapsed = int(record["ElapsedRaw"])
    jobbudget = jobbudget_command()
    totals = []
    for price in ("0", "0.5"):
        database = f"sqlite:///{tmp_path / f'gpu-{price}.db'}"
        done = json.loads(run(jobbudget, "import", "--format", "sacct", str(export), "--price", f"gpu:a100={price}",
                              "--database-url", database, "--json"))  # fmt: skip
        assert done["stored"] == 1, done
        totals.append(Decimal(done["total_cost"]))
    assert totals[1] - totals[0] == Decimal("0.5") * elapsed * 1


def test_the_slurm_benchmark_runs_and_reports(slurm: None, tmp_path: Path) -> None:
    """benchmarks/bench_slurm.py at tiny sizes (the figures come from `make bench`)."""
    import os
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_slurm.py"
    env = {**os.environ, "JOBBUDGET_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, str(script), "--submits", "5", "--jobs", "2", "--locked"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads((tmp_path / "slurm.json").read_text())
    assert figures["sbatch_with_jobbudget"]["n"] == 5 and figures["metering_delay"]["p50_ms"] > 0, figures
