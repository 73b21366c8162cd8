"""The API-key part of the store contract, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from jobbudget.domain.apikeys import ApiKey, generate_key, hash_key, key_prefix
from jobbudget.domain.errors import ConflictError, NotFoundError
from jobbudget.ports import Store

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def new_key(
    key_id: str, *, role: str = "tenant", tenant_id: str | None = "acme", at: datetime = T0
) -> tuple[ApiKey, str, str]:
    text, digest = generate_key()
    key = ApiKey(
        id=key_id, name=f"key {key_id}", role=role, tenant_id=tenant_id, prefix=key_prefix(text), created_at=at
    )
    return key, text, digest


def test_add_and_find_by_hash(store: Store) -> None:
    key, text, digest = new_key("k1")
    store.add_api_key(key, key_hash=digest)
    assert store.find_api_key(digest) == key
    assert store.find_api_key(hash_key(text)) == key
    assert store.find_api_key(hash_key(text + "x")) is None
    assert store.find_api_key("0" * 64) is None
    assert store.find_api_key("") is None


def test_keys_survive_a_new_store_on_the_same_database(store_factory: Callable[[], Store]) -> None:
    first = store_factory()
    key, _, digest = new_key("k1", role="reporter", tenant_id=None)
    first.add_api_key(key, key_hash=digest)
    found = store_factory().find_api_key(digest)
    assert found == key
    assert found is not None and found.tenant_id is None and found.created_at == T0


def test_list_is_oldest_first_and_has_no_hash(store: Store) -> None:
    b, _, hb = new_key("b", at=T0 + timedelta(hours=1))
    a, _, ha = new_key("a", role="admin", tenant_id=None)
    store.add_api_key(b, key_hash=hb)
    store.add_api_key(a, key_hash=ha)
    listed = store.list_api_keys()
    assert listed == [a, b]
    assert all(ha not in repr(k) and hb not in repr(k) for k in listed)


def test_duplicate_id_hash_or_prefix_conflicts(store: Store) -> None:
    key, _, digest = new_key("k1")
    store.add_api_key(key, key_hash=digest)
    other, _, other_hash = new_key("k2")
    with pytest.raises(ConflictError):
        store.add_api_key(ApiKey(**{**_fields(other), "id": "k1"}), key_hash=other_hash)
    with pytest.raises(ConflictError):
        store.add_api_key(other, key_hash=digest)
    with pytest.raises(ConflictError):
        store.add_api_key(ApiKey(**{**_fields(other), "prefix": key.prefix}), key_hash=other_hash)
    store.add_api_key(other, key_hash=other_hash)
    assert [k.id for k in store.list_api_keys()] == ["k1", "k2"]


def _fields(key: ApiKey) -> dict[str, object]:
    return {name: getattr(key, name) for name in ApiKey.__dataclass_fields__}


def test_revoke_marks_the_key_and_keeps_the_first_time(store: Store) -> None:
    key, _, digest = new_key("k1")
    store.add_api_key(key, key_hash=digest)
    store.revoke_api_key("k1", at=T0 + timedelta(minutes=1))
    store.revoke_api_key("k1", at=T0 + timedelta(minutes=2))
    found = store.find_api_key(digest)
    assert found is not None and found.revoked and found.revoked_at == T0 + timedelta(minutes=1)
    assert store.list_api_keys()[0].revoked_at == T0 + timedelta(minutes=1)


def test_revoke_unknown_key_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.revoke_api_key("nope", at=T0)
    assert caught.value.code == "API_KEY_NOT_FOUND"
