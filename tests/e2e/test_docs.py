"""The documentation runs as written: every code block of README.md and docs/*.md, in
order, as a reader copying them into a shell at the root of a checkout would run them
(:mod:`e2e.reader`), against a SQLite file in a fresh directory and real servers
(``jobbudget serve``, a webhook receiver, a private Redis, the test PostgreSQL).

README.md starts from nothing, as a newcomer does. Every other document starts where
the README leaves a reader: a database with budgets and the example jobs of
``data/examples/jobs.jsonl``, a server and an admin key (``$KEY``).

What is not run is listed in :data:`PLANS` with the reason beside it. Every plan must
name a block that exists, so the list cannot go stale.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from conftest import POSTGRES_URL, require_postgres
from private_servers import PrivateRedis
from receivers import Receiver

from . import server as live
from .reader import Reader, SnippetFailedError, checkout
from .snippets import ROOT, Snippet, commands, documents, extract, matches, transcript

DOC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw6KYcrGq8Oek="  # docs/webhooks.md's example
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{20,}")


@dataclass(frozen=True)
class Plan:
    """How one block is run when the default for its language is not enough."""

    skip: str = ""  # the reason it is not run at all
    skip_lines: dict[str, str] = field(default_factory=dict)  # command prefix -> why that line is not run
    prelude: str = ""  # Python run first: the names a fragment assumes (the reader's own code)
    after: str = ""  # Python run after: uses what the block made
    prints: str = ""  # text the output must contain
    until_output: bool = False  # a loop that never ends: stopped once it printed
    check: str = ""  # the name of a special check (see CHECKS)
    rules: tuple[tuple[str, str], ...] = ()  # literal replacements for this block only


SERVICE = "from jobbudget import BudgetService, Config\nservice = BudgetService(Config())\n"

#: (document, how the block's first line starts) -> its plan.
PLANS: dict[tuple[str, str], Plan] = {
    ("README.md", "make demo"): Plan(
        skip_lines={"make test": "runs this very test suite (lint, types and every test): it would run itself"}
    ),
    ("README.md", "from decimal import Decimal"): Plan(prints="0.000172525"),
    ("README.md", "src/jobbudget/"): Plan(check="tree"),
    ("README.md", "jobbudget slurm install"): Plan(rules=(("--dir /etc/slurm", "--dir slurm-conf"),)),
    ("docs/alerts.md", "service.list_alerts"): Plan(
        prelude=SERVICE + "from jobbudget import NotificationChannel\n"
        "alert = service.list_alerts(limit=1)[0]\n"
        "alert_id, delivery_id = alert.event.id, alert.deliveries[0].id\n"
        "url = {receiver!r}\n"
    ),
    ("docs/api.md", "import asyncio"): Plan(until_output=True),
    ("docs/api.md", "const key"): Plan(check="browser"),
    ("docs/architecture.md", "┌"): Plan(skip="a picture of the layers, not something to run"),
    ("docs/calibration.md", "from jobbudget.domain.calibration"): Plan(prelude=SERVICE + "bills = {bills}\n"),
    ("docs/cost-model.md", "from decimal import Decimal"): Plan(prints="10.540806000"),
    ("docs/integrations.md", "from jobbudget import BudgetService, Config"): Plan(
        prelude="def build_report() -> None:\n    sum(range(100_000))\n", after="thumbnail('cat.png')\n"
    ),
    ("docs/integrations.md", "import redis"): Plan(prelude=SERVICE, after="assert handle('acme', 'reports') == 200\n"),
    ("docs/operations.md", "scrape_configs:"): Plan(check="prometheus"),
    ("docs/operations.md", "15 3 * * *"): Plan(rules=(("15 3 * * *  ", ""),)),  # a crontab line: its command
    ("docs/platform-budgets.md", "uni"): Plan(skip="a picture of the organisation tree, not something to run"),
    ("docs/platform-budgets.md", "from datetime import UTC"): Plan(prints="5.076010000\n30\n"),
    ("docs/scaling.md", "admission = service.admit"): Plan(
        prelude=SERVICE + "from jobbudget import JobMetrics\n"
        "def run_the_job() -> JobMetrics:\n"
        "    return JobMetrics(job_id='scaling-1', tenant_id='acme', queue_name='ml', cpu_time=60,\n"
        "                      memory_mb_seconds=0, payload_bytes=0, redis_ops=0, network_bytes=0)\n"
    ),
    ("docs/security.md", "python3 -m venv /tmp/pa"): Plan(
        skip="pip-audit needs PyPI's JSON API and osv.dev, which the build machines cannot reach (the "
        "documented exception right above the block)"
    ),
    ("docs/slurm.md", "sbatch ──>"): Plan(skip="a picture of the calls, not something to run"),
    ("docs/slurm.md", "jobbudget slurm install"): Plan(rules=(("--dir /etc/slurm", "--dir slurm-conf"),)),
    ("docs/slurm.md", "JobSubmitPlugins=lua"): Plan(skip="lines of slurm.conf (tests/e2e/test_slurm_budgets.py)"),
    ("docs/slurm.md", "jobbudget slurm backfill"): Plan(
        skip="runs sacct on a Slurm controller: tests/e2e/test_slurm_budgets.py runs it against the real cluster"
    ),
    ("docs/slurm.md", "$ sbatch"): Plan(skip="what sbatch prints: tests/e2e/test_slurm_budgets.py checks it"),
    ("docs/webhooks.md", '{"schema": "jobbudget.digest/v1"'): Plan(check="digest"),
    ("docs/webhooks.md", "{"): Plan(check="alert body"),
    ("docs/webhooks.md", "from standardwebhooks"): Plan(
        prelude="RAW, HEADERS = {raw!r}, {headers!r}\nhandled = []\n"
        "def reject(status): raise AssertionError(f'refused with {{status}}')\n"
        "def accept(status): raise AssertionError('not a new event')\n"
        "def seen_before(event_id): return False\n"
        "handle = handled.append\n",
        after="receive(RAW, HEADERS)\nassert handled and handled[0]['schema'] == 'jobbudget.alert/v1', handled\n"
        "print('verified', handled[0]['type'])\n",
        prints="verified block",
    ),
}


def plan_for(snippet: Snippet) -> Plan:
    for (document, start), plan in PLANS.items():
        if document == snippet.document and snippet.startswith(start):
            return plan
    return Plan()


# -- the reader's world ------------------------------------------------------------------
@dataclass
class World:
    """What the reader's commands reach: a webhook receiver, a Redis of its own, the
    test server (started when a command first needs one)."""

    reader: Reader
    receiver: Receiver
    redis: PrivateRedis
    tmp: Path
    servers: list[live.LiveServer] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def server(self) -> live.LiveServer:
        if not self.servers:
            db = f"sqlite:///{self.reader.workspace / 'jobbudget.db'}"
            started = live.start_server(self.tmp / "server", database_url=db, env=self.reader.env)
            self.servers.append(started)
            self.reader.env.update(KEY=started.admin_key, JOBBUDGET_URL=started.url)
            self.reader.server_url = self.reader.server_url or started.url
        return self.servers[0]


def workspace_and_env(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A checkout's root as a reader's shell sees it, and that shell's environment."""
    workspace = tmp / "checkout"
    workspace.mkdir()
    checkout(workspace)
    for name in ("data", "src"):
        (workspace / name).symlink_to(ROOT / name)
    stand_ins = tmp / "bin"
    stand_ins.mkdir()
    sacct = stand_ins / "sacct"  # no Slurm cluster here: a real export stands in for its answer
    sacct.write_text(f"#!/bin/sh\nexec cat {ROOT / 'data/sacct/slurm2sql_test-data1.csv'}\n")
    sacct.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBBUDGET_", "PROMETHEUS_"))}
    env.update(
        PATH=f"{workspace / '.venv/bin'}:{stand_ins}:{env.get('PATH', '/usr/bin:/bin')}",
        VIRTUAL_ENV=str(workspace / ".venv"),
        PYTHONPATH=str(workspace),
        COLUMNS="120",
        # the receivers of these tests listen on 127.0.0.1, which jobbudget refuses by default
        JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS="127.0.0.1/32",
        JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND="false",
    )
    return workspace, env


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@dataclass(frozen=True)
class Seeded:
    """Where the README leaves a reader (made once, copied for each document)."""

    database: Path
    values: dict[str, str]
    rules: list[tuple[str, str]]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Seeded:
    """Budgets (one of them tiny, alerting to the receiver), the example jobs and
    their alerts."""
    workspace, env = workspace_and_env(tmp_path_factory.mktemp("seed"))
    reader = Reader(workspace, env)
    for command in (
        "jobbudget init",
        "jobbudget budget create --tenant acme --queue ml --amount 5000",
        "jobbudget budget create --tenant acme-corp --amount 5000",
        f"jobbudget budget create --tenant acme --queue etl --amount 0.01 --notify webhook:{receiver.url()}",
        "jobbudget ingest data/examples/jobs.jsonl",
    ):
        reader.run(command, rewrite=False)
    budgets = json.loads(reader.run("jobbudget budget list --json", rewrite=False).stdout)
    alerts = json.loads(reader.run("jobbudget alerts list --json", rewrite=False).stdout)
    etl = next(b for b in budgets if b["queue_name"] == "etl")
    # the documents delete BUDGET_ID and then use it again: the reader deletes one of their own
    spare = json.loads(reader.run("jobbudget budget create --tenant spare --amount 1 --json", rewrite=False).stdout)
    delete = '-X DELETE -H "Authorization: Bearer $KEY" "$JOBBUDGET_URL/v1/budgets/'
    return Seeded(
        workspace / "jobbudget.db",
        {
            "BUDGET_ID": etl["id"],
            "INDEX": "0",
            "ALERT_ID": alerts[0]["id"],
            "TENANT_ID": "acme",
            "JOB_ID": "ml-003",
            "NODE": "acme",
        },
        [(delete + 'BUDGET_ID"', delete + f'{spare["id"]}"')],
    )


@pytest.fixture
def world(tmp_path: Path, receiver: Receiver) -> Iterator[World]:
    workspace, env = workspace_and_env(tmp_path)
    redis = PrivateRedis()
    reader = Reader(workspace, env)
    reader.values["URL"] = receiver.url("/slack")
    reader.rules += [
        ("redis://127.0.0.1:6379/0", redis.url),  # a Redis of the test's own, not the machine's
        ("Redis()", f"Redis(port={redis.port})"),
        ("rq worker ", f"rq worker --url {redis.url} "),
        ("/etc/jobbudget.yaml", str(workspace / "jobbudget.yaml")),
    ]
    made = World(reader, receiver, redis, tmp_path)
    try:
        yield made
    finally:
        reader.stop_daemons()
        for started in made.servers:
            started.kill()
        redis.kill()
        for cleanup in made.cleanups:
            cleanup()


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def seed(world: World, seeded: Seeded) -> None:
    """Where the README leaves a reader: budgets, the example jobs, an alert, a server."""
    reader = world.reader
    shutil.copy(seeded.database, reader.workspace / "jobbudget.db")
    (reader.workspace / "jobbudget.yaml").write_text(f"database_url: sqlite:///{reader.workspace}/jobbudget.db\n")
    reader.values.update(seeded.values)
    reader.rules += seeded.rules
    world.server()


# -- one block --------------------------------------------------------------------------
def run_block(world: World, snippet: Snippet, plan: Plan) -> None:
    reader = world.reader
    if plan.check:
        CHECKS[plan.check](world, snippet)
    elif snippet.lang == "sh":
        reader.rules[:0] = plan.rules
        for command in commands(snippet.text):
            reason = next((why for start, why in plan.skip_lines.items() if command.startswith(start)), "")
            if reason:
                world.results.append(f"{snippet.where}: skipped `{command}`: {reason}")
                continue
            if needs_server(command):
                world.server()
            reader.run(command)
        del reader.rules[: len(plan.rules)]
    elif snippet.lang == "console":
        for step in transcript(snippet.text):
            done = reader.run(step.command)
            printed = [line for line in _secretless(done.stdout).splitlines() if line.strip()]
            shown = [_secretless(line) for line in step.output if line.strip()]
            assert len(printed) == len(shown) and all(map(matches, shown, printed)), (
                f"{snippet.where}: `{step.command}` printed\n{done.stdout}\nthe documentation shows\n"
                + "\n".join(step.output)
            )
    elif snippet.lang == "python":
        run_python(world, snippet, plan)
    elif snippet.lang == "yaml":
        check_configuration(world, snippet)
    elif snippet.lang == "text" and all(line.startswith("jobbudget ") for line in snippet.text.splitlines()):
        check_synopsis(reader, snippet)
    else:
        raise AssertionError(f"{snippet.where}: no way to run a `{snippet.lang or 'plain'}` block: give it a plan")


def needs_server(command: str) -> bool:
    return any(mark in command for mark in ("$KEY", "$JOBBUDGET_URL", ":8080", "--url http"))


def run_python(world: World, snippet: Snippet, plan: Plan) -> None:
    reader = world.reader
    if snippet.file_name is not None:  # a module of the reader's application
        reader.write(snippet.file_name, reader.rewrite(snippet.text))
        module = snippet.file_name.removesuffix(".py").replace("/", ".")
        reader.python(f"import {module}\n", name="check_module.py")
        return
    source = snippet.text
    if "ws://" in source:
        world.server()
        source = source.replace('"KEY"', json.dumps(reader.env["KEY"]))
    prelude = plan.prelude.format(**prelude_values(world, plan)) if plan.prelude else ""
    program = prelude + reader.rewrite(source) + "\n" + plan.after
    name = f"snippet_{Path(snippet.document).stem}_{snippet.line}.py"
    done = reader.python(program, name=name, until_output=plan.until_output)
    if plan.prints:
        assert plan.prints in done.stdout, f"{snippet.where} printed\n{done.stdout}\nnot {plan.prints!r}"


def prelude_values(world: World, plan: Plan) -> dict[str, Any]:
    values: dict[str, Any] = {"receiver": world.receiver.url()}
    if "{bills}" in plan.prelude:
        values["bills"] = bills_literal()
    if "{raw" in plan.prelude:
        values["raw"], values["headers"] = signed_delivery(world)
    return values


def bills_literal() -> str:
    """``data/examples/benchmarks.csv`` as the objects the calibration snippet reads."""
    import csv

    rows = list(csv.DictReader((ROOT / "data/examples/benchmarks.csv").open(encoding="utf-8")))
    fields = "job_type cost charged cpu_seconds memory_mb_seconds payload_bytes redis_ops network_bytes finished_at"
    made = [
        f"Bill({r['job_type']!r}, D({r['actual_cost']!r}), D({r['actual_cost']!r}), D({r['cpu_time']!r}), "
        f"D({r['memory_mb_seconds']!r}), D({r['payload_bytes']!r}), D({r['redis_ops']!r}), D({r['network_bytes']!r}), "
        f"datetime.fromisoformat({r['timestamp']!r}))"
        for r in rows
    ]
    head = (
        "(__import__('builtins').exec(\"from collections import namedtuple\\nfrom decimal import Decimal as D\\n"
        f"from datetime import datetime\\nBill = namedtuple('Bill', '{fields}')\", globals()), "
    )
    return head + "[" + ", ".join(made) + "])[1]"


def signed_delivery(world: World) -> tuple[bytes, dict[str, str]]:
    """A real alert delivery signed with the documentation's secret, as a receiver got it."""
    reader = world.reader
    before = len(world.receiver.requests)
    target = world.receiver.url("/signed")
    reader.run(
        f"jobbudget budget create --tenant webhooks --amount 0.000001 --notify webhook:{target} --json", rewrite=False
    )
    budget = json.loads(reader.run("jobbudget budget list --tenant webhooks --json", rewrite=False).stdout)[0]
    meta = json.dumps({"type": "webhook", "target": target, "metadata": {"secret": DOC_SECRET}})
    reader.run(f"jobbudget budget update {budget['id']} --notify '{meta}'", rewrite=False)
    job = {"job_id": "w1", "tenant_id": "webhooks", "queue_name": "q", "cpu_time": 10, "memory_mb_seconds": 0,
           "payload_bytes": 0, "redis_ops": 0, "network_bytes": 0}  # fmt: skip
    (reader.workspace / "w.jsonl").write_text(json.dumps(job) + "\n")
    reader.run("jobbudget ingest w.jsonl && jobbudget alerts dispatch", rewrite=False)
    assert world.receiver.wait_for(before + 1, 20), "no delivery arrived"
    request = world.receiver.requests[-1]
    return request.body, dict(request.headers)


def check_configuration(world: World, snippet: Snippet) -> None:
    """A configuration block is a file jobbudget reads: its values must pass."""
    text = snippet.text.replace("<token>", "t0ken").replace("whsec_<base64 key>", DOC_SECRET)
    path = world.reader.workspace / f"config-{snippet.line}.yaml"
    path.write_text(text, encoding="utf-8")
    world.reader.python(
        f"from jobbudget import Config\nconfig = Config.from_yaml({str(path)!r})\nprint(config.database_url)\n",
        name="check_config.py",
    )


def check_synopsis(reader: Reader, snippet: Snippet) -> None:
    """Each synopsis line's command exists and takes every option it shows."""
    for line in snippet.text.splitlines():
        words = line.split()
        path = [w for w in words[1:3] if re.fullmatch(r"[a-z][a-z-]*", w)]
        shown = reader.run(f"jobbudget {' '.join(path)} --help", rewrite=False).stdout
        for option in re.findall(r"--[a-z][a-z-]*", line):
            assert option in shown, f"{snippet.where}: `jobbudget {' '.join(path)}` has no {option}"


def check_tree(world: World, snippet: Snippet) -> None:
    for line in snippet.text.splitlines()[1:]:
        name = line.split()[0] if line.startswith("  ") and not line.startswith("   ") else ""
        if name:
            assert list((ROOT / "src/jobbudget").glob(name.rstrip("/"))), f"{snippet.where}: no src/jobbudget/{name}"


def check_prometheus(world: World, snippet: Snippet) -> None:
    """Prometheus's own configuration (promtool is not installed here): it parses, and
    the target it names is what `jobbudget serve` listens on by default."""
    config = yaml.safe_load(snippet.text)
    job = config["scrape_configs"][0]
    assert job["authorization"]["credentials_file"] and job["static_configs"][0]["targets"] == ["budgets:8080"]


def check_alert_body(world: World, snippet: Snippet) -> None:
    """The documented alert body has exactly the fields of a real delivery."""
    shown = json.loads(snippet.text)
    if not world.receiver.requests:
        signed_delivery(world)
    real = json.loads(world.receiver.requests[-1].body)
    assert set(shown) == set(real) and shown["schema"] == real["schema"], (sorted(shown), sorted(real))


def check_browser(world: World, snippet: Snippet) -> None:
    """A browser's script, run by Node with its WebSocket (the browser's API) where Node
    is installed: it sends the key as its first message and prints a status."""
    node = shutil.which("node")
    if node is None:
        world.results.append(f"{snippet.where}: not run: no Node on this machine")
        return
    runner: tuple[str, ...] = (node, "--no-warnings")  # its first line of output is the script's
    if subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]).returncode:
        runner += ("--experimental-websocket",)  # Node 20 and 21
    world.server()
    source = world.reader.rewrite(snippet.text).replace('"KEY"', json.dumps(world.reader.env["KEY"]))
    done = world.reader.python(source, name=f"snippet_browser_{snippet.line}.mjs", until_output=True, runner=runner)
    first = done.stdout.splitlines()[0].strip()
    assert re.fullmatch(r"\S+ [0-9.]+ [a-z_]+", first), f"{snippet.where} printed\n{done.stdout}"


def check_digest(world: World, snippet: Snippet) -> None:
    from jobbudget.notify.messages import DIGEST_SCHEMA

    shown = json.loads(snippet.text)
    assert shown["schema"] == DIGEST_SCHEMA and set(shown) == {"schema", "id", "events"}


CHECKS: dict[str, Callable[[World, Snippet], None]] = {
    "tree": check_tree,
    "prometheus": check_prometheus,
    "alert body": check_alert_body,
    "digest": check_digest,
    "browser": check_browser,
}


def _secretless(text: str) -> str:
    return _SECRET.sub("whsec_<secret>", text)


# -- the tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("document", documents())
def test_the_document_runs_as_written(
    document: str, world: World, record_property: Any, request: pytest.FixtureRequest
) -> None:
    snippets = extract(document)
    if document != "README.md":
        seed(world, request.getfixturevalue("seeded"))
    if document == "docs/tui.md":  # it shows a PostgreSQL URL: a schema of the test database stands in
        require_postgres()
        schema = f"jbdocs_{os.getpid()}"
        world.cleanups.append(lambda: drop_schema(schema))
        world.reader.rules.append(("postgresql://budgets@db/budgets", POSTGRES_URL))
        world.reader.env["JOBBUDGET_DATABASE_SCHEMA"] = schema
        world.reader.run(f"jobbudget init --database-url {POSTGRES_URL}", rewrite=False)
    for snippet in snippets:
        plan = plan_for(snippet)
        if plan.skip:
            world.results.append(f"{snippet.where}: skipped: {plan.skip}")
            continue
        try:
            run_block(world, snippet, plan)
        except SnippetFailedError as exc:
            raise AssertionError(f"{snippet.where} ({snippet.lang}) failed:\n{exc}") from None
        world.results.append(f"{snippet.where}: ran {snippet.lang}")
    record_property("blocks", world.results)


def test_every_plan_names_a_block() -> None:
    blocks = [s for d in documents() for s in extract(d)]
    for (document, start), plan in PLANS.items():
        found = [s for s in blocks if s.document == document and s.startswith(start)]
        assert found, f"no block of {document} starts with {start!r}: update PLANS"
        assert plan_for(found[0]) is plan


def test_every_block_says_what_it_is() -> None:
    for snippet in (s for d in documents() for s in extract(d)):
        assert snippet.lang in {"sh", "console", "python", "js", "yaml", "json", "text"}, (
            f"{snippet.where}: tag the block (sh, console, python, js, yaml, json or text)"
        )
