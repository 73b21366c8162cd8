"""The command line of platform budgets: the tree, label and rollover budgets,
refunds, corrections and raises, as an operator types them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cli_support import Run, as_json, json_of


def _job_file(tmp_path: object, lines: list[str]) -> str:
    from pathlib import Path

    path = Path(str(tmp_path)) / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_an_operator_runs_a_tree_of_budgets_from_the_shell(run: Run, tmp_path: object) -> None:
    assert run("tree", "set", "acme", "--parent", "research").exit_code == 0
    assert run("tree", "set", "research", "--parent", "uni").exit_code == 0
    shown = run("tree", "show")
    assert shown.exit_code == 0 and "uni\n  research\n    acme" in shown.output
    assert as_json(run("tree", "show", "--json")) == [
        {"node": "acme", "parent": "research"},
        {"node": "research", "parent": "uni"},
    ]
    cycle = run("tree", "set", "uni", "--parent", "acme")
    assert cycle.exit_code == 2 and "--parent" in cycle.output and "cycle" in cycle.output
    org = as_json(run("budget", "create", "--tenant", "uni", "--amount", "0.01", "--json"))
    llm = as_json(run("budget", "create", "--tenant", "acme", "--amount", "100", "--label", "project=llm",
                      "--carry-over", "unused", "--carry-over-cap", "0.5", "--json"))  # fmt: skip
    assert llm["labels"] == {"project": "llm"} and llm["enforcement_policy"]["carry_over"] == "unused"
    jobs = _job_file(tmp_path, [
        '{"job_id": "j1", "tenant_id": "acme", "queue_name": "q", "cpu_time": 100000, "memory_mb_seconds": 0, '
        '"payload_bytes": 0, "redis_ops": 0, "network_bytes": 0, "labels": {"project": "llm"}}',
        '{"job_id": "j2", "tenant_id": "acme", "queue_name": "q", "cpu_time": 100000, "memory_mb_seconds": 0, '
        '"payload_bytes": 0, "redis_ops": 0, "network_bytes": 0, "exit_state": "NODE_FAIL"}',
    ])  # fmt: skip
    assert run("ingest", jobs).exit_code == 0
    blocked = run("check", "acme", "q", "--label", "project=llm")
    assert blocked.exit_code == 3 and org["id"] in blocked.output  # the organisation's budget
    bad = run("check", "acme", "q", "--label", "oops")
    assert bad.exit_code == 2 and "--label" in bad.output
    refunds = as_json(run("adjustments", "--json"))
    assert [(a["kind"], a["job_id"]) for a in refunds] == [("refund", "j2")]  # the refund policy
    done_run = run("refund", "acme", "j1", "--reason", "node n12 failed", "--json")
    assert done_run.exit_code == 0, done_run.output
    done = as_json(done_run)
    assert done["kind"] == "refund" and done["amount"].startswith("-")
    again = run("refund", "acme", "j1", "--reason", "twice")
    assert again.exit_code == 0 and "refunded before" in again.output
    missing = run("refund", "acme", "nope", "--reason", "x")
    assert missing.exit_code != 0 and "not found" in missing.output
    credit = run("adjust", "acme", "--amount=-2.5", "--reason", "SLA credit")
    assert credit.exit_code == 0 and "Credit of 2.50" in credit.output
    zero = run("adjust", "acme", "--amount", "0", "--reason", "x")
    assert zero.exit_code == 2 and "--amount" in zero.output
    listed = run("adjustments", "--tenant", "uni")
    assert listed.exit_code == 0 and "SLA credit" in listed.output and "node n12 failed" in listed.output
    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    raised = run("budget", "raise", llm["id"], "50", "--until", until, "--approver", "cfo", "--reason", "launch")
    assert raised.exit_code == 0 and "raised by 50.00" in raised.output
    late = run(
        "budget", "raise", llm["id"], "50", "--until", "2020-01-01T00:00:00Z", "--approver", "a", "--reason", "b"
    )
    assert late.exit_code == 2 and "--until" in late.output
    status = json_of(run("budget", "show", llm["id"], "--json"))
    assert status["budget"]["amount"] == "100" and status["amount_in_force"] == "150"  # stored, in force
    shown = run("budget", "show", llm["id"])
    assert "Amount in force" in shown.output and "raised 50.00" in shown.output


def test_gpu_prices_from_the_command_line(run: Run) -> None:
    done = run("costmodel", "set", "--price", "gpu=0.0008", "--price", "gpu:h100=0.0012")
    assert done.exit_code == 0 and "prices new jobs" in done.output
    again = run("costmodel", "set", "--price", "gpu=0.0008")
    assert again.exit_code == 0 and "nothing changed" in again.output
    shown = run("costmodel", "show")
    assert shown.exit_code == 0 and "resource gpu:h100" in shown.output and "0.0012" in shown.output
    assert as_json(run("costmodel", "show", "--json"))["weights"]["resources"] == {
        "gpu": "0.0008",
        "gpu:h100": "0.0012",
    }
    bad = run("costmodel", "set", "--price", "GPU=1")
    assert bad.exit_code == 2 and "--price" in bad.output and "resource name" in bad.output
    none = run("costmodel", "set")
    assert none.exit_code == 2 and "--price" in none.output
