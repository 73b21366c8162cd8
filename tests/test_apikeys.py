"""API keys: the pure domain (format, hashing, the permission matrix) and the
service's create / authenticate / authorize / revoke on every backend."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from jobbudget import AuthenticationError, PermissionDeniedError
from jobbudget.domain import apikeys
from jobbudget.domain.apikeys import ApiKey, can, generate_key, hash_key, is_well_formed, key_prefix, matches
from jobbudget.domain.errors import NotFoundError, ValidationError, error_code
from jobbudget.service import BudgetService

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
ServiceFactory = Callable[..., Any]


def make(role: str, tenant_id: str | None, **kw: Any) -> ApiKey:
    return ApiKey(id="k1", name="n", role=role, tenant_id=tenant_id, prefix="abcdEF12", created_at=T0, **kw)


# -- generation and hashing -------------------------------------------------------------
def test_generated_key_format() -> None:
    text, digest = generate_key()
    assert re.fullmatch(r"jb_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}", text)
    assert text[12:20] == text[3:11] == key_prefix(text)
    assert is_well_formed(text)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == hash_key(text)
    assert text not in digest


def test_keys_are_random() -> None:
    drawn = [generate_key() for _ in range(200)]
    assert len({t for t, _ in drawn}) == len({h for _, h in drawn}) == len({key_prefix(t) for t, _ in drawn}) == 200


def test_matches_is_exact() -> None:
    text, digest = generate_key()
    assert matches(digest, text)
    assert not matches(digest, text[:-1])
    assert not matches(digest, text + "A")
    assert not matches(digest.upper(), text)


@pytest.mark.parametrize(
    "text",
    ["", "jb_", "jb_short_x", "xx_abcdefgh_" + "a" * 43, "jb_abcdefgh_" + "a" * 42, "jb_abcdefgh_" + "a" * 44,
     "jb_abcdefgh_" + "!" * 43, "jb_zzzzzzzz_" + "a" * 43, None, 42],
)  # fmt: skip
def test_malformed_keys(text: Any) -> None:
    assert not is_well_formed(text)


def test_key_prefix_does_not_echo_the_key() -> None:
    with pytest.raises(ValidationError) as caught:
        key_prefix("jb_secretsecret")
    assert "secretsecret" not in str(caught.value)


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "tenant_id", "field"),
    [
        ("root", None, "role"),
        ("tenant", None, "tenant_id"),
        ("admin", "acme", "tenant_id"),
        ("tenant", "", "tenant_id"),
        ("reporter", "x" * 51, "tenant_id"),
    ],
)
def test_invalid_keys_name_the_field(role: str, tenant_id: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(role, tenant_id)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 101}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"prefix": "short"}, "prefix"),
        ({"created_at": datetime(2024, 1, 1)}, "created_at"),
        ({"revoked_at": datetime(2024, 1, 1)}, "revoked_at"),
        ({"id": ""}, "id"),
    ],
)
def test_other_fields_are_validated(changes: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "id": "k1", "name": "n", "role": "tenant", "tenant_id": "acme", "prefix": "abcdEF12", "created_at": T0,
    }  # fmt: skip
    values.update(changes)
    with pytest.raises(ValidationError) as caught:
        ApiKey(**values)
    assert caught.value.field == field


# -- the permission matrix -----------------------------------------------------------------
KEYS = {
    "admin": make("admin", None),
    "tenant": make("tenant", "acme"),
    "reporter-acme": make("reporter", "acme"),
    "reporter-all": make("reporter", None),
}
#: a team's key: bound to "research", which acme lies below
TEAM = replace(make("tenant", "research"), below=frozenset({"acme"}))
TARGETS = {"own": "acme", "other": "globex", "all": None}
#: (key, action, target) -> allowed; every combination is listed.
EXPECTED = {
    ("admin", "read", "own"): True, ("admin", "read", "other"): True, ("admin", "read", "all"): True,
    ("admin", "write", "own"): True, ("admin", "write", "other"): True, ("admin", "write", "all"): True,
    ("admin", "admin", "own"): True, ("admin", "admin", "other"): True, ("admin", "admin", "all"): True,
    ("tenant", "read", "own"): True, ("tenant", "read", "other"): False, ("tenant", "read", "all"): False,
    ("tenant", "write", "own"): True, ("tenant", "write", "other"): False, ("tenant", "write", "all"): False,
    ("tenant", "admin", "own"): False, ("tenant", "admin", "other"): False, ("tenant", "admin", "all"): False,
    ("reporter-acme", "read", "own"): True, ("reporter-acme", "read", "other"): False,
    ("reporter-acme", "read", "all"): False,
    ("reporter-acme", "write", "own"): False, ("reporter-acme", "write", "other"): False,
    ("reporter-acme", "write", "all"): False,
    ("reporter-acme", "admin", "own"): False, ("reporter-acme", "admin", "other"): False,
    ("reporter-acme", "admin", "all"): False,
    ("reporter-all", "read", "own"): True, ("reporter-all", "read", "other"): True,
    ("reporter-all", "read", "all"): True,
    ("reporter-all", "write", "own"): False, ("reporter-all", "write", "other"): False,
    ("reporter-all", "write", "all"): False,
    ("reporter-all", "admin", "own"): False, ("reporter-all", "admin", "other"): False,
    ("reporter-all", "admin", "all"): False,
    # "budget": setting budgets, as "write" for every key but a team's (see below)
    ("admin", "budget", "own"): True, ("admin", "budget", "other"): True, ("admin", "budget", "all"): True,
    ("tenant", "budget", "own"): True, ("tenant", "budget", "other"): False, ("tenant", "budget", "all"): False,
    ("reporter-acme", "budget", "own"): False, ("reporter-acme", "budget", "other"): False,
    ("reporter-acme", "budget", "all"): False,
    ("reporter-all", "budget", "own"): False, ("reporter-all", "budget", "other"): False,
    ("reporter-all", "budget", "all"): False,
}  # fmt: skip


def test_a_team_key_reads_and_caps_the_tenants_below_but_never_acts_in_their_name() -> None:
    assert can(TEAM, action="read", tenant_id="acme") and can(TEAM, action="budget", tenant_id="acme")
    assert not can(TEAM, action="write", tenant_id="acme")  # jobs, admissions: in its own name only
    assert can(TEAM, action="write", tenant_id="research")
    for action in ("read", "write", "budget", "admin"):
        assert not can(TEAM, action=action, tenant_id="globex")
        assert not can(TEAM, action=action, tenant_id=None)


def test_matrix_is_complete() -> None:
    assert set(EXPECTED) == set(itertools.product(KEYS, apikeys.ACTIONS, TARGETS))


@pytest.mark.parametrize(("who", "action", "target"), sorted(EXPECTED))
def test_permission_matrix(who: str, action: str, target: str) -> None:
    assert can(KEYS[who], action=action, tenant_id=TARGETS[target]) is EXPECTED[(who, action, target)]


@pytest.mark.parametrize("who", sorted(KEYS))
def test_revoked_keys_may_do_nothing(who: str) -> None:
    from dataclasses import replace

    revoked = replace(KEYS[who], revoked_at=T0)
    assert not any(can(revoked, action=a, tenant_id=t) for a in apikeys.ACTIONS for t in TARGETS.values())


def test_unknown_action_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        can(KEYS["admin"], action="delete", tenant_id=None)
    assert caught.value.field == "action"


def test_error_codes() -> None:
    assert error_code(AuthenticationError("x")) == "UNAUTHENTICATED"
    assert error_code(PermissionDeniedError("x")) == "FORBIDDEN"


# -- the service on every backend ------------------------------------------------------------
def test_create_authenticate_revoke(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    key, text = service.create_api_key(role="tenant", tenant_id="acme", name="ci")
    assert (key.role, key.tenant_id, key.name, key.prefix) == ("tenant", "acme", "ci", key_prefix(text))
    assert key.created_at == T0 and not key.revoked
    assert service.authenticate(text) == key
    assert service.authenticate(text) == key  # from the cache
    assert service.list_api_keys() == [key]
    service.revoke_api_key(key.id)
    with pytest.raises(AuthenticationError) as caught:
        service.authenticate(text)  # at once, despite the cache
    assert text not in str(caught.value) and key.prefix not in str(caught.value)
    listed = service.list_api_keys()
    assert listed[0].id == key.id and listed[0].revoked_at == T0


def test_revoke_unknown_key(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    with pytest.raises(NotFoundError):
        service.revoke_api_key("no-such-key")


def test_wrong_and_malformed_keys(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    _, text = service.create_api_key(role="admin")
    other, _ = generate_key()
    flipped = text[:-1] + ("A" if text[-1] != "A" else "B")
    for token in (other, flipped, "", None, "Bearer " + text, text + " ", "jb_nope", "x" * 10_000):
        with pytest.raises(AuthenticationError) as caught:
            service.authenticate(token)  # type: ignore[arg-type]
        assert caught.value.code == "UNAUTHENTICATED"
        assert not token or str(token) not in str(caught.value)


def test_create_validates(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    with pytest.raises(ValidationError):
        service.create_api_key(role="tenant")
    with pytest.raises(ValidationError):
        service.create_api_key(role="admin", tenant_id="acme")
    with pytest.raises(ValidationError):
        service.create_api_key(role="superuser")
    assert service.list_api_keys() == []


def test_authorize(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    _, text = service.create_api_key(role="reporter", tenant_id="acme")
    found = service.authenticate(text)
    service.authorize(found, action="read", tenant_id="acme")
    for action, tenant in (("read", "globex"), ("read", None), ("write", "acme"), ("admin", None)):
        with pytest.raises(PermissionDeniedError) as caught:
            service.authorize(found, action=action, tenant_id=tenant)
        assert caught.value.code == "FORBIDDEN"


def test_audit_entries_hold_no_key_material(service_factory: ServiceFactory) -> None:
    service: BudgetService = service_factory()
    key, text = service.create_api_key(role="tenant", tenant_id="acme", name="deploy", actor="alice")
    service.revoke_api_key(key.id, actor="bob")
    created = service.store.list_audit(kind="api_key_created")
    revoked = service.store.list_audit(kind="api_key_revoked")
    assert [(e.actor, e.tenant_id, e.details["key_id"]) for e in created] == [("alice", "acme", key.id)]
    assert [(e.actor, e.details["key_id"]) for e in revoked] == [("bob", key.id)]
    dumped = json.dumps([e.details for e in (*created, *revoked)])
    secret = text[12:]  # the random part
    for material in (text, hash_key(text), secret, key.prefix):
        assert material not in dumped


def test_other_services_see_revocation_within_the_cache_window(
    service_factory: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented behaviour: another process (here a second service on the same
    database) may accept a revoked key for at most CACHE_SECONDS."""
    from jobbudget.core import keys as service_keys

    now = [1000.0]
    monkeypatch.setattr(service_keys, "monotonic", lambda: now[0])
    first: BudgetService = service_factory()
    second: BudgetService = service_factory()
    key, text = first.create_api_key(role="admin")
    assert second.authenticate(text) == key  # created elsewhere: no negative caching
    second.authenticate(text)
    first.revoke_api_key(key.id)
    with pytest.raises(AuthenticationError):
        first.authenticate(text)
    now[0] += service_keys.CACHE_SECONDS - 0.5
    assert second.authenticate(text) == key  # still cached there
    now[0] += 1.0
    with pytest.raises(AuthenticationError):
        second.authenticate(text)


def test_a_short_max_age_sees_another_services_revocation_and_evicts_the_key(
    service_factory: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an open WebSocket's re-check does: a lookup at most ``max_age`` old sees a
    revocation by another process, and from then on this service refuses the key on
    every path (no waiting for the rest of CACHE_SECONDS)."""
    from jobbudget.core import keys as service_keys

    now = [1000.0]
    monkeypatch.setattr(service_keys, "monotonic", lambda: now[0])
    first: BudgetService = service_factory()
    second: BudgetService = service_factory()
    key, text = first.create_api_key(role="admin")
    assert second.authenticate(text) == key
    first.revoke_api_key(key.id)
    now[0] += 0.5
    assert second.authenticate(text, max_age=1.0) == key  # the lookup is 0.5 s old: still served
    now[0] += 0.6
    with pytest.raises(AuthenticationError, match="revoked"):
        second.authenticate(text, max_age=1.0)  # 1.1 s old: looked up again
    with pytest.raises(AuthenticationError):
        second.authenticate(text)  # the default age would still have served it from the cache


def test_keys_created_in_one_service_work_in_another(service_factory: ServiceFactory) -> None:
    first: BudgetService = service_factory()
    _, text = first.create_api_key(role="reporter")
    second: BudgetService = service_factory()
    assert second.authenticate(text).role == "reporter"
