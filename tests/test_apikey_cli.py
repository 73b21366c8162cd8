"""``jobbudget apikey create|list|revoke`` through CliRunner on a SQLite file: the key
is printed once, at creation, and never again (nor its digest)."""

from __future__ import annotations

import json
import re

import pytest

from cli_support import Run, as_json
from jobbudget.domain.apikeys import hash_key
from jobbudget.service import BudgetService
from jobbudget.storage.sql.store import SqlStore

pytestmark = pytest.mark.usefixtures("cli_env")
KEY = re.compile(r"jb_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}")


def test_create_prints_the_key_once_with_a_warning(run: Run, db: str) -> None:
    result = run("apikey", "create", "--role", "tenant", "--tenant", "acme", "--name", "deploy bot")
    assert result.exit_code == 0, result.output
    keys = KEY.findall(result.output)
    assert len(keys) == 1
    assert "cannot be shown again" in result.output
    listed = as_json(run("apikey", "list", "--json"))
    assert [(k["role"], k["tenant_id"], k["name"], k["revoked_at"]) for k in listed] == [
        ("tenant", "acme", "deploy bot", None)
    ]
    assert listed[0]["id"] in result.output and keys[0][3:11] == listed[0]["prefix"]
    with BudgetService(store=SqlStore(db)) as service:  # the printed key works
        assert service.authenticate(keys[0]).id == listed[0]["id"]


def test_create_json(run: Run) -> None:
    created = as_json(run("apikey", "create", "--role", "reporter", "--json"))
    assert KEY.fullmatch(created["key"])
    assert created["role"] == "reporter" and created["tenant_id"] is None
    assert "cannot be shown again" in created["warning"]
    assert "key_hash" not in created and hash_key(created["key"]) not in json.dumps(created)


def test_list_never_shows_the_key_or_its_hash(run: Run) -> None:
    created = [
        as_json(run("apikey", "create", "--role", "admin", "--name", "ops", "--json")),
        as_json(run("apikey", "create", "--role", "tenant", "--tenant", "globex", "--json")),
    ]
    text = run("apikey", "list")
    listed = run("apikey", "list", "--json")
    assert text.exit_code == 0 and listed.exit_code == 0
    for output in (text.output, listed.output):
        assert not KEY.search(output)
        for c in created:
            assert c["key"] not in output and c["key"][12:] not in output and hash_key(c["key"]) not in output
    for c in created:
        assert c["id"] in text.output and c["prefix"] in text.output
    assert {"id", "name", "role", "tenant_id", "prefix", "created_at", "revoked_at"} == set(as_json(listed)[0])


def test_revoke(run: Run, db: str) -> None:
    created = as_json(run("apikey", "create", "--role", "admin", "--json"))
    result = run("apikey", "revoke", created["id"])
    assert result.exit_code == 0, result.output
    assert f"Revoked API key {created['id']}" in result.output
    (listed,) = as_json(run("apikey", "list", "--json"))
    assert listed["revoked_at"] is not None
    assert "Revoked" in run("apikey", "list").output
    with BudgetService(store=SqlStore(db)) as service:
        from jobbudget import AuthenticationError

        with pytest.raises(AuthenticationError):
            service.authenticate(created["key"])


def test_revoke_unknown_key_fails_cleanly(run: Run) -> None:
    result = run("apikey", "revoke", "nope")
    assert result.exit_code == 1  # not found: 1; invalid input: 2
    assert "API_KEY_NOT_FOUND" in result.output


def test_create_validates(run: Run) -> None:
    missing = run("apikey", "create", "--role", "tenant")
    assert missing.exit_code == 2 and "VALIDATION_FAILED" in missing.output and "tenant_id" in missing.output
    admin = run("apikey", "create", "--role", "admin", "--tenant", "acme")
    assert admin.exit_code == 2 and "tenant_id" in admin.output
    bad_role = run("apikey", "create", "--role", "root")
    assert bad_role.exit_code == 2
    assert as_json(run("apikey", "list", "--json")) == []


def test_empty_list(run: Run) -> None:
    result = run("apikey", "list")
    assert result.exit_code == 0 and "No API keys" in result.output
