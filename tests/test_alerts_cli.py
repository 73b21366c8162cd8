"""``jobbudget alerts ...``, ``jobbudget notify test`` and delivery after ``ingest``,
through CliRunner on SQLite files, with real receivers on 127.0.0.1; and no secret of a
channel in any output or log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cli_support import Run, as_json, cli_on, runner
from jobbudget.cli import app
from receivers import Mailbox, Receiver, Reply, free_port, http_receivers, smtp_server

pytestmark = pytest.mark.usefixtures("cli_env", "seed_prices")
Start = Callable[..., Receiver]


@pytest.fixture
def http() -> Iterator[Start]:
    with http_receivers() as start:
        yield start


@pytest.fixture
def run(db: str) -> Run:
    """The CLI on a SQLite file (no `jobbudget init` first)."""
    return cli_on(db, init=False)


def jobs(path: Path, *records: tuple[str, str, int]) -> str:
    """A JSON Lines file of jobs (id, tenant, cpu seconds); the default cost model
    prices them, so the test compares against the budget's thresholds only."""
    lines = [
        json.dumps({"job_id": job_id, "tenant_id": tenant, "queue_name": "ml", "cpu_time": cpu,
                    "memory_mb_seconds": 0, "payload_bytes": 0, "redis_ops": 0, "network_bytes": 0})
        for job_id, tenant, cpu in records
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def create(run: Run, *args: str) -> dict[str, Any]:
    budget: dict[str, Any] = as_json(run("budget", "create", *args, "--json"))
    return budget


def cross(run: Run, tmp_path: Path, tenant: str, share: float, *flags: str, name: str = "j") -> Result:
    """Ingest one job costing about ``share`` of the tenant's 100 USD budget."""
    cpu = round(share * 100 / 0.0001) + 1  # default model: 0.0001 USD per CPU second, plus a tiny base
    return run("ingest", jobs(tmp_path / f"{name}.jsonl", (f"{name}-{tenant}", tenant, cpu)), *flags)


# -- alerts list, dispatch, ack, resend ---------------------------------------------------------
def test_list_dispatch_ack_and_resend(run: Run, http: Start, tmp_path: Path) -> None:
    receiver = http()
    budget = create(run, "--tenant", "acme", "--amount", "100", "--notify", f"webhook:{receiver.url('/in/hook')}")
    ingested = cross(run, tmp_path, "acme", 0.8, "--no-notify", "--json")
    assert as_json(ingested)["notifications"] is None and receiver.requests == []
    (alert,) = as_json(run("alerts", "list", "--json"))
    assert (alert["type"], alert["tenant_id"], alert["budget_id"], alert["acknowledged_by"]) == (
        "warning", "acme", budget["id"], None,
    )  # fmt: skip
    (delivery,) = alert["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["channel_type"]) == ("pending", 0, "webhook")
    assert delivery["target"] == f"http://127.0.0.1:{receiver.port}/***"
    table = run("alerts", "list").stdout
    for needle in (alert["id"], "warning", "acme (all queues)", "100.00 USD", f"#{delivery['id']} webhook", "pending"):
        assert needle in table, needle
    assert "/in/hook" not in table

    result = as_json(run("alerts", "dispatch", "--timeout", "10", "--json"))
    assert (result["sent"], result["retrying"], result["failed"]) == (1, 0, 0)
    assert receiver.event_ids() == {alert["id"]: 1} and receiver.requests[0].path == "/in/hook"
    again = run("alerts", "dispatch")
    assert again.exit_code == 0 and again.stdout.startswith("Alerts: 0 delivered") and len(receiver.requests) == 1

    receiver.default = Reply(400)  # the receiver breaks: the throttle alert is a dead letter
    ingested = as_json(cross(run, tmp_path, "acme", 0.12, "--json", name="k"))  # 92 %
    assert ingested["notifications"]["failed"] == 1
    throttle = next(a for a in as_json(run("alerts", "list", "--json")) if a["type"] == "throttle")
    (failed,) = throttle["deliveries"]
    assert (failed["status"], failed["attempts"]) == ("failed", 1) and "answered HTTP 400" in failed["last_error"]
    table = " ".join(run("alerts", "list", "--tenant", "acme", env={"COLUMNS": "300"}).stdout.split())
    assert "failed (dead letter)" in table and "last error: webhook" in table and "HTTP 400" in table

    receiver.default = Reply(200)  # fixed: send the dead letter again
    resent = run("alerts", "resend", str(failed["id"]))
    assert resent.exit_code == 0 and "Alerts: 1 delivered" in resent.stdout and "sent (1 attempt)" in resent.stdout
    assert receiver.event_ids() == {alert["id"]: 1, throttle["id"]: 2}
    assert run("alerts", "resend", "999999").exit_code == 1

    acked = as_json(run("alerts", "ack", alert["id"], "--by", "alice", "--json"))
    assert acked["acknowledged_by"] == "alice"
    assert [a["id"] for a in as_json(run("alerts", "list", "--active", "--json"))] == [throttle["id"]]
    shown = next(a for a in as_json(run("alerts", "list", "--json")) if a["id"] == alert["id"])
    assert shown["acknowledged_by"] == "alice" and shown["acknowledged_at"] is not None
    assert "alice" in run("alerts", "list").stdout
    missing = run("alerts", "ack", "no-such-alert", "--by", "alice")
    assert missing.exit_code == 1 and missing.stderr.startswith("error [")
    assert run("alerts", "ack", alert["id"], "--by", " ").exit_code == 2
    assert run("alerts", "list", "--tenant", "nobody").stdout.strip() == "No alerts."


def test_ingest_delivers_what_it_fired_unless_told_not_to(run: Run, http: Start, tmp_path: Path) -> None:
    receiver = http()
    for tenant in ("acme", "globex"):
        create(run, "--tenant", tenant, "--amount", "100", "--notify", f"webhook:{receiver.url()}")
    text = cross(run, tmp_path, "acme", 0.95)  # warning and throttle, delivered before the command ends
    assert text.exit_code == 0 and "Alerts: 2 delivered, 0 to retry later" in text.stdout
    assert sorted(b["type"] for b in receiver.bodies()) == ["throttle", "warning"]
    quiet = cross(run, tmp_path, "globex", 0.8, "--no-notify", name="g")
    assert quiet.exit_code == 0 and "Alerts:" not in quiet.stdout and len(receiver.requests) == 2
    assert as_json(run("alerts", "dispatch", "--json"))["sent"] == 1
    assert len(receiver.requests) == 3 and len(set(receiver.event_ids())) == 3


def test_ingest_survives_a_receiver_that_is_down(run: Run, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    create(run, "--tenant", "acme", "--amount", "100", "--notify", f"webhook:{down}")
    data = as_json(cross(run, tmp_path, "acme", 0.8, "--json"))
    assert data["stored"] == 1 and data["notifications"]["retrying"] == 1
    (alert,) = as_json(run("alerts", "list", "--json"))
    assert alert["deliveries"][0]["status"] == "pending" and "connection failed" in alert["deliveries"][0]["last_error"]


# -- notify test ---------------------------------------------------------------------------------
def test_notify_test_for_each_channel_type(run: Run, http: Start, tmp_path: Path) -> None:
    ok, broken = http(), http(default=Reply(500))
    sent = run("notify", "test", "--type", "webhook", "--target", ok.url("/t"), "--meta", "timeout=2s", database=None)
    assert (
        sent.exit_code == 0
        and sent.stdout.strip() == f"Test notification sent to webhook http://127.0.0.1:{ok.port}/***."
    )
    assert ok.bodies()[0]["type"] == "test"
    slack = run("notify", "test", "--type", "slack", "--target", ok.url("/services/T1/B1/x"), "--json", database=None)
    assert as_json(slack) == {"sent": True, "type": "slack", "target": f"http://127.0.0.1:{ok.port}/***"}
    assert ok.requests[1].json()["blocks"][0]["text"]["text"].startswith("TEST notification")
    failed = run("notify", "test", "--type", "webhook", "--target", broken.url(), database=None)
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr.startswith(
        f"error [DELIVERY_FAILED]: webhook http://127.0.0.1:{broken.port}/*** answered HTTP 500"
    )
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        env = {"JOBBUDGET_SMTP_HOST": "127.0.0.1", "JOBBUDGET_SMTP_PORT": str(port)}
        mail = run("notify", "test", "--type", "email", "--target", "ops@[127.0.0.1]", "--meta", "subject_prefix=[T]",
                   database=None, env=env)  # fmt: skip
    assert mail.exit_code == 0 and mailbox.messages[0]["Subject"].startswith("[T] TEST notification")
    bad = run("notify", "test", "--type", "webhook", "--target", ok.url(), "--meta", "novalue", database=None)
    assert bad.exit_code == 2 and "meta" in bad.stderr
    assert run("notify", "test", "--type", "sms", "--target", "x", database=None).exit_code == 2
    assert not (tmp_path / "jobbudget.db").exists()  # notify test does not touch a database


def test_help_names_the_commands_and_options() -> None:
    for command, words in (
        (["alerts"], ["list", "ack", "resend", "dispatch"]),
        (["alerts", "list"], ["--tenant", "--active", "--json", "dead letter", "redacted"]),
        (["alerts", "dispatch"], ["--timeout", "digest", "lease"]),
        (["notify", "test"], ["--type", "--target", "--meta", "Exit status 1"]),
        (["ingest"], ["--notify", "--no-notify"]),
    ):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for word in words:
            assert word in result.stdout, (command, word)


# -- secrets -----------------------------------------------------------------------------------------
TOKEN = "hookTOKEN7f3e9a1c55d2"
BEARER = "s3cr3t-Qx81zz90k7"
AUTH = f"Bearer {BEARER}"
SIGNING = "hmacK3y-55aa0909-q"
SLACK_TOKEN = "slackTOKENb7c1e2d3f4"
ADDRESS = "finance.lead@[127.0.0.1]"
SMTP_PASSWORD = "smtpPw-91x-never-shown"
RANDOM_SECRETS = (TOKEN, BEARER, SIGNING, SLACK_TOKEN, SMTP_PASSWORD)
#: A long webhook path: a receiver echoing it puts the token across the 200th character,
#: where an error text is cut off.
LONG_PATH = (
    "/api/v2/organisations/acme-corporation-international/projects/data-platform-production/integrations/"
    f"jobbudget-budget-alerts/incoming-webhooks/endpoints/primary-endpoint/delivery-tokens/{TOKEN}"
)


def test_no_secret_in_any_output_or_log(
    run: Run, http: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("jobbudget", "jobbudget.notify", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    echo = http(default=Reply(500, echo=True))  # repeats the path and headers (our secrets) in its answer
    echo_4xx, slack, ok = http(default=Reply(401, echo=True)), http(), http()
    # a long refusal: the address is where the reply is cut off for display
    refusal = "550 5.1.1 " + "unknown-mailbox " * 17 + "x" * 7 + "<{address}>: recipient address rejected"
    mailbox, refusing = Mailbox(password=SMTP_PASSWORD), Mailbox(password=SMTP_PASSWORD, refusal=refusal)
    with smtp_server(mailbox) as smtp_port, smtp_server(refusing) as refusing_port:
        config = tmp_path / "jobbudget.yaml"
        config.write_text(
            f"smtp_host: 127.0.0.1\nsmtp_port: {smtp_port}\nsmtp_user: alerts\nsmtp_from: 'jobbudget@[127.0.0.1]'\n"
            "log_level: DEBUG\nnotification_channels:\n"
            f"  - type: webhook\n    target: {echo.url(f'/in/{TOKEN}')}\n"
            f"    metadata: {{auth_header: '{AUTH}', secret: '{SIGNING}', timeout: 2s}}\n"
        )
        monkeypatch.setenv("JOBBUDGET_CONFIG", str(config))
        monkeypatch.setenv("JOBBUDGET_SMTP_PASSWORD", SMTP_PASSWORD)
        slack_url = slack.url(f"/services/T000/B000/{SLACK_TOKEN}")
        notify = ("--notify", f"slack:{slack_url}", "--notify", f"email:{ADDRESS}")
        outputs = [run("budget", "create", "--tenant", "acme", "--amount", "100", *notify)]
        budget = create(run, "--tenant", "globex", "--amount", "100", *notify)
        outputs += [
            run("budget", "list"),
            run("budget", "list", "--json"),
            run("budget", "show", budget["id"]),
            run("budget", "show", budget["id"], "--json"),
            cross(run, tmp_path, "globex", 0.95),  # warning + throttle to the webhook, Slack and e-mail
            cross(run, tmp_path, "acme", 0.8, "--json", name="a"),
            run("alerts", "list"),
            run("alerts", "list", "--json"),
            run("alerts", "dispatch"),
            run("notify", "test", "--type", "webhook", "--target", echo_4xx.url(f"{LONG_PATH}?key={TOKEN}"),
                "--meta", f"auth_header={AUTH}", "--meta", f"secret={SIGNING}", database=None),
            run("notify", "test", "--type", "slack", "--target", f"http://127.0.0.1:{free_port()}/services/T0/B0/"
                f"{SLACK_TOKEN}", database=None),
            run("notify", "test", "--type", "email", "--target", ADDRESS, database=None,
                env={"JOBBUDGET_SMTP_PORT": str(refusing_port)}),
            run("notify", "test", "--type", "webhook", "--target", ok.url(f"/in/{TOKEN}"), "--meta",
                f"auth_header={AUTH}", database=None),
            run("notify", "test", "--type", "slack", "--target", slack_url, "--json", database=None),
            run("notify", "test", "--type", "email", "--target", ADDRESS, "--json", database=None),
        ]  # fmt: skip
    assert [r.exit_code for r in outputs[-6:]] == [1, 1, 1, 0, 0, 0]
    # the secrets were really in play: the receivers got them, and the failures were reported
    assert any(r.headers.get("authorization") == AUTH and TOKEN in r.path for r in echo.requests)
    assert any(SLACK_TOKEN in r.path for r in slack.requests) and len(mailbox.messages) >= 3
    alerts = as_json(run("alerts", "list", "--json"))
    errors = [d["last_error"] for a in alerts for d in a["deliveries"] if d["last_error"]]
    assert errors and all("HTTP 500" in e for e in errors)
    assert "answered HTTP 401" in outputs[-6].stderr and "refused the recipient" in outputs[-4].stderr
    assert "f***@[127.0.0.1]" in outputs[2].stdout and f"http://127.0.0.1:{echo.port}/***" in outputs[8].stdout
    texts = [r.stdout + r.stderr for r in outputs]
    logs = [r.getMessage() for r in caplog.records if r.name.startswith(("jobbudget", "httpx", "httpcore"))]
    assert any(r.name.startswith("jobbudget.notify") and r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name == "httpx" for r in caplog.records)
    everything = "\n".join(texts + logs)
    for secret in (*RANDOM_SECRETS, AUTH, ADDRESS, "finance.lead"):
        assert secret not in everything, secret
    for secret in (*RANDOM_SECRETS, "finance.lead"):  # not even a piece, as a cut-off error text could show
        pieces = [secret[i : i + 8] for i in range(len(secret) - 7)]
        assert not [p for p in pieces if p in everything], secret


def test_a_waiting_delivery_is_sent_now_on_resend(run: Run, http: Start, tmp_path: Path) -> None:
    """`alerts list` shows a pending delivery; `alerts resend N` sends it now (it used
    to answer "delivery not found")."""
    receiver = http()
    create(run, "--tenant", "acme", "--amount", "100", "--notify", f"webhook:{receiver.url('/in/hook')}")
    cross(run, tmp_path, "acme", 0.8, "--no-notify")
    ((delivery,),) = [a["deliveries"] for a in as_json(run("alerts", "list", "--json"))]
    assert delivery["status"] == "pending"
    resent = run("alerts", "resend", str(delivery["id"]))
    assert resent.exit_code == 0, resent.output
    assert "sent (1 attempt)" in resent.stdout and len(receiver.requests) == 1
