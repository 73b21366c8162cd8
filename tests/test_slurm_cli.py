"""``jobbudget slurm install | print | backfill`` without a cluster: the files written,
their settings, what is refused; and the pure pieces (array counts, messages).  The
real cluster's tests are in tests/e2e/test_slurm_budgets.py."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cli_support import checked, runner
from jobbudget.cli import app
from jobbudget.domain.budget import Budget
from jobbudget.domain.enforcement import EnforcementAction
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.periods import BudgetPeriod
from jobbudget.slurm.messages import decision_text, reply
from jobbudget.slurm.policy import SlurmPolicy
from jobbudget.slurm.requests import array_tasks
from jobbudget.slurm.scripts import ScriptSettings, job_submit_lua, jobcomp_script


def test_install_writes_both_files_and_a_private_key_file(tmp_path: Path) -> None:
    done = checked(runner.invoke(app, ["slurm", "install", "--url", "http://jb:8080/", "--dir", str(tmp_path),
                                       "--key", "jb_secret", "--fail", "closed", "--timeout", "0.5"]))  # fmt: skip
    assert done.exit_code == 0, done.output
    lua = (tmp_path / "job_submit.lua").read_text()
    assert (
        'local URL = "http://jb:8080"' in lua and 'local FAIL_MODE = "closed"' in lua and "local TIMEOUT = 0.5" in lua
    )
    assert f'local KEY_FILE = "{tmp_path}/jobbudget.key"' in lua and "jb_secret" not in lua
    jobcomp = tmp_path / "jobbudget-jobcomp.sh"
    assert jobcomp.stat().st_mode & 0o777 == 0o755 and "URL=http://jb:8080" in jobcomp.read_text()
    key = tmp_path / "jobbudget.key"
    assert key.read_text() == "Authorization: Bearer jb_secret\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"JobCompLoc={tmp_path}/jobbudget-jobcomp.sh" in done.output
    again = checked(runner.invoke(app, ["slurm", "install", "--url", "http://jb:9090", "--dir", str(tmp_path)]))
    assert again.exit_code == 0, again.output  # ours is replaced; the key file is kept
    assert 'local URL = "http://jb:9090"' in (tmp_path / "job_submit.lua").read_text() and key.exists()


def test_install_never_replaces_a_sites_own_plugin_unless_told(tmp_path: Path) -> None:
    theirs = tmp_path / "job_submit.lua"
    theirs.write_text("-- our site's rules\nreturn slurm.SUCCESS\n")
    done = checked(runner.invoke(app, ["slurm", "install", "--url", "http://jb:8080", "--dir", str(tmp_path),
                                       "--key", "k"]))  # fmt: skip
    assert done.exit_code == 2 and "not jobbudget's" in done.output and "--force" in done.output
    assert theirs.read_text().startswith("-- our site's rules")
    forced = checked(runner.invoke(app, ["slurm", "install", "--url", "http://jb:8080", "--dir", str(tmp_path),
                                         "--key", "k", "--force"]))  # fmt: skip
    assert forced.exit_code == 0 and theirs.read_text().startswith("-- jobbudget's job_submit.lua")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--url", "jb:8080"], "--url"),
        (["--url", "http://jb:8080", "--timeout", "5"], "--timeout"),
        (["--url", "http://jb:8080", "--fail", "maybe"], "--fail"),
    ],
)
def test_bad_settings_are_refused_naming_the_option(tmp_path: Path, args: list[str], words: str) -> None:
    done = checked(runner.invoke(app, ["slurm", "install", "--dir", str(tmp_path), "--key", "k", *args]))
    assert done.exit_code == 2 and words in done.output, done.output
    assert not (tmp_path / "job_submit.lua").exists()


def test_install_without_a_key_needs_an_existing_key_file(tmp_path: Path) -> None:
    done = checked(runner.invoke(app, ["slurm", "install", "--url", "http://jb:8080", "--dir", str(tmp_path)]))
    assert done.exit_code == 2 and "--key-file" in done.output and "does not exist" in done.output


def test_print_shows_each_file_and_the_conf_lines() -> None:
    for what, start in (("job-submit", "-- jobbudget's job_submit.lua"), ("jobcomp", "#!/bin/sh"),
                        ("conf", "JobSubmitPlugins=lua")):  # fmt: skip
        done = checked(runner.invoke(app, ["slurm", "print", what, "--url", "http://jb:8080"]))
        assert done.exit_code == 0 and done.output.startswith(start), done.output
    bad = checked(runner.invoke(app, ["slurm", "print", "everything"]))
    assert bad.exit_code == 2 and "job-submit, jobcomp or conf" in bad.output


def test_backfill_reports_an_unreadable_key_file_in_words(tmp_path: Path) -> None:
    done = checked(runner.invoke(app, ["slurm", "backfill", "--url", "http://127.0.0.1:9",
                                       "--key-file", str(tmp_path / "missing")]))  # fmt: skip
    assert done.exit_code == 2 and "--key-file" in done.output and "cannot be read" in done.output
    odd = tmp_path / "key"
    odd.write_text("jb_just_the_key\n")
    done = checked(runner.invoke(app, ["slurm", "backfill", "--url", "http://127.0.0.1:9", "--key-file", str(odd)]))
    assert done.exit_code == 2 and "Authorization: Bearer" in done.output


def test_settings_written_into_the_files_cannot_break_out_of_their_quotes() -> None:
    settings = ScriptSettings(url='http://jb:8080/x"y', key_file="/etc/slurm/it's.key")
    lua = job_submit_lua(settings)
    assert 'local URL = "http://jb:8080/x\\"y"' in lua
    assert 'KEY_FILE="/etc/slurm/it\'s.key"' not in jobcomp_script(settings)
    assert "KEY_FILE='/etc/slurm/it'\"'\"'s.key'" in jobcomp_script(settings)
    with pytest.raises(ValidationError):
        ScriptSettings(url="http://jb:8080", key_file="relative/key")


@pytest.mark.parametrize(
    ("text", "tasks"),
    [("", 1), ("7", 1), ("1-100%10", 100), ("0-15:4", 4), ("1,3,5-9:2", 5), ("1-4,10%2", 5)],
)
def test_array_task_counts(text: str, tasks: int) -> None:
    assert array_tasks(text) == tasks


@pytest.mark.parametrize("text", ["1-", "a", "5-1", "1-9:0", "0-4000001", "1-4%2,10"])
def test_bad_arrays_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        array_tasks(text)
    assert caught.value.field == "array"


def test_a_budget_above_the_tenant_shows_how_full_it_is_not_its_amounts() -> None:
    month = BudgetPeriod("monthly", start_date=date(2026, 12, 1), end_date=date(2026, 12, 31))
    org = Budget(tenant_id="science", amount=Decimal(10_000), period=month, id="b1")
    action = EnforcementAction(type="block", budget_id="b1", utilization=Decimal("1.012"),
                               current_spend=Decimal("10120"), budget_amount=Decimal(10_000), tenant_id="science")  # fmt: skip
    now = datetime(2026, 12, 6, tzinfo=UTC)
    text = decision_text(action, org, tenant_id="physics", estimate=Decimal(5), now=now, spent=Decimal("10120"))
    assert text == (
        "a budget of physics's team or organisation (science) is 101.2 % used (block at 100 %); resets 2027-01-01"
    )
    assert "10,120" not in text and "10,000" not in text


def test_the_reply_is_one_line_per_value_whatever_a_value_holds() -> None:
    assert reply({"action": "block", "message": "two\nlines\r\nhere"}) == "action=block\nmessage=two lines here\n"


def test_the_policy_refuses_a_throttle_slurm_cannot_express() -> None:
    with pytest.raises(ValidationError) as caught:
        SlurmPolicy(throttle="slower")
    assert caught.value.field == "slurm.throttle"
    assert SlurmPolicy(throttle="qos:slow").throttled(0.5) == {"qos": "slow"}
    assert SlurmPolicy(throttle="hold").throttled(0.5) == {"hold": "1"}
    assert SlurmPolicy().throttled(0.25) == {"nice": "7500"}
