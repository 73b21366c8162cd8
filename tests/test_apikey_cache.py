"""The API-key cache of a service: a refused key (unknown, or revoked elsewhere) costs
one store lookup per :data:`~jobbudget.core.keys.CACHE_SECONDS`, however often and
however concurrently it is sent; ``remembered_key`` (what the event loop calls) never
waits on a lock; the cache is made once per service."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from jobbudget import BudgetService, Config
from jobbudget.core import keys as service_keys
from jobbudget.domain.apikeys import ApiKey
from jobbudget.domain.errors import AuthenticationError
from jobbudget.storage.memory import MemoryStore

UNKNOWN = "jb_" + "A" * 8 + "_" + "A" * 43  # well formed, never created


class CountingStore(MemoryStore):
    """A memory store that counts key lookups and can make each one slow."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.delay = 0.0

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        if self.delay:
            time.sleep(self.delay)
        return super().find_api_key(key_hash)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    clock = [1000.0]
    monkeypatch.setattr(service_keys, "monotonic", lambda: clock[0])
    return clock


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def service(store: CountingStore) -> Iterator[BudgetService]:
    with BudgetService(Config(notifications_in_background=False), store=store) as made:
        yield made


def _refused(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(AuthenticationError) as raised:
        call(*args)
    return str(raised.value)


def test_the_unknown_key_token_is_well_formed(service: BudgetService) -> None:
    assert service.remembered_key(UNKNOWN) is None  # not malformed: it needs a lookup


def test_an_unknown_key_is_looked_up_once_per_window(
    service: BudgetService, store: CountingStore, now: list[float]
) -> None:
    for _ in range(20):
        assert "unknown API key" in _refused(service.authenticate, UNKNOWN)
        assert "unknown API key" in _refused(service.remembered_key, UNKNOWN)  # the event loop's path
    assert store.lookups == 1
    now[0] += service_keys.CACHE_SECONDS - 0.1
    _refused(service.authenticate, UNKNOWN)
    assert store.lookups == 1
    now[0] += 0.2  # the window is over: one more lookup, then refused from memory again
    assert service.remembered_key(UNKNOWN) is None
    for _ in range(5):
        _refused(service.authenticate, UNKNOWN)
    assert store.lookups == 2


def test_concurrent_requests_with_one_unknown_key_make_one_lookup(service: BudgetService, store: CountingStore) -> None:
    store.delay = 0.2
    with ThreadPoolExecutor(16) as pool:
        reasons = list(pool.map(lambda _: _refused(service.authenticate, UNKNOWN), range(16)))
    assert reasons == ["unknown API key"] * 16
    assert store.lookups == 1


def test_concurrent_requests_with_one_new_key_make_one_lookup(service: BudgetService, store: CountingStore) -> None:
    key, text = service.create_api_key(role="admin")
    store.delay = 0.2
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda _: service.authenticate(text), range(16)))
    assert found == [key] * 16
    assert store.lookups == 1


def test_a_key_revoked_elsewhere_is_looked_up_once_per_window(
    service: BudgetService, store: CountingStore, now: list[float]
) -> None:
    key, text = service.create_api_key(role="tenant", tenant_id="acme")
    assert service.authenticate(text) == key
    with BudgetService(Config(notifications_in_background=False), store=store) as other:
        other.revoke_api_key(key.id)
    assert service.authenticate(text) == key  # still cached here (the documented window)
    now[0] += service_keys.CACHE_SECONDS
    for _ in range(10):
        assert "was revoked" in _refused(service.authenticate, text)
        assert "was revoked" in _refused(service.remembered_key, text)
    assert store.lookups == 2
    now[0] += service_keys.CACHE_SECONDS
    _refused(service.authenticate, text)
    assert store.lookups == 3


def test_remembered_key_never_waits_on_the_cache_lock(service: BudgetService, now: list[float]) -> None:
    """What the event loop calls answers while another thread holds the cache's lock."""
    key, text = service.create_api_key(role="admin")
    assert service.authenticate(text) == key
    _refused(service.authenticate, UNKNOWN)
    cache = service.core.keys._key_cache()
    answers: list[object] = []

    def on_the_loop() -> None:
        answers.append(service.remembered_key(text))
        try:
            service.remembered_key(UNKNOWN)
        except AuthenticationError as exc:
            answers.append(str(exc))
        now[0] += service_keys.CACHE_SECONDS  # expired: still no lock, no eviction
        answers.append(service.remembered_key(text))

    with cache._lock:
        reader = threading.Thread(target=on_the_loop)
        reader.start()
        reader.join(timeout=2)
        assert not reader.is_alive(), "remembered_key waited for the cache's lock"
    assert answers == [key, "unknown API key", None]


def test_the_cache_is_made_once_and_threads_share_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A revocation made through one thread's cache is never lost to another's: the
    cache is made with the service's API keys (once), never on first use."""
    made: list[object] = []

    class Counted(service_keys._KeyCache):
        def __init__(self) -> None:
            made.append(self)
            time.sleep(0.01)  # a window in which racing threads could make a second one
            super().__init__()

    monkeypatch.setattr(service_keys, "_KeyCache", Counted)
    start = threading.Barrier(8)
    with BudgetService(Config(database_url=f"sqlite:///{tmp_path / 'k.db'}")) as service:

        def make(_: int) -> object:
            start.wait()
            return service.core.keys._key_cache()

        with ThreadPoolExecutor(8) as pool:
            caches = list(pool.map(make, range(8)))
    assert made == caches[:1] and all(c is made[0] for c in caches)


def test_over_http_an_unknown_key_costs_one_lookup_per_window(
    service: BudgetService, store: CountingStore, now: list[float]
) -> None:
    """Through the API (its auth middleware): 20 concurrent requests and 20 more with
    one unknown key, all 401, one store lookup; the next window, one more."""
    from jobbudget.api.app import create_app

    store.delay = 0.2  # the first lookup is still running when the others arrive
    headers = {"Authorization": f"Bearer {UNKNOWN}"}

    async def send(n: int) -> list[int]:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            answers = await asyncio.gather(*(client.get("/v1/budgets", headers=headers) for _ in range(n)))
        return [a.status_code for a in answers]

    assert asyncio.run(send(20)) == [401] * 20
    assert asyncio.run(send(20)) == [401] * 20
    assert store.lookups == 1
    now[0] += service_keys.CACHE_SECONDS
    assert asyncio.run(send(20)) == [401] * 20
    assert store.lookups == 2
