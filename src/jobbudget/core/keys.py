"""API keys: create, list and revoke keys, authenticate a presented key and
authorize what it asks to do.

Successful lookups are cached in this process for at most :data:`CACHE_SECONDS`, so
authenticating a request rarely touches the database.  Revoking a key through this
service takes effect here at once; other processes (another API worker, a CLI)
see a revocation within :data:`CACHE_SECONDS`.  A refused key (unknown, or found
revoked) is remembered as refused for as long: a client sending the same wrong key
again costs no lookup, and concurrent requests with one key not in the cache make one
lookup between them.  A new key is 256 random bits, so no key created elsewhere was
ever seen as unknown.

:meth:`ApiKeys.remembered_key` answers from memory alone, without taking a lock,
so that an event loop may call it; :meth:`ApiKeys.authenticate` may query the
database and wait for another thread's lookup of the same key (a worker thread's job).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from ..domain.apikeys import ApiKey, can, generate_key, hash_key, is_well_formed, key_prefix
from ..domain.errors import AuthenticationError, ConflictError, PermissionDeniedError, ValidationError
from ..domain.hierarchy import TenantTree
from ..domain.records import AuditEntry
from ..domain.validation import check_identifier
from ..ports import AuditLog, KeyStore

__all__ = ["CACHE_SECONDS", "ApiKeys"]

#: How long a successful authentication is remembered (revocations elsewhere show
#: up within this time).
CACHE_SECONDS = 5.0
_CACHE_MAX = 10_000
_ATTEMPTS = 3  # a new key whose 48-bit prefix collides with a stored one is redrawn

#: Monotonic seconds for the cache (a module attribute so tests can move it on).
monotonic = time.monotonic


class _KeyCache:
    """hash -> (key, time it was read), and hashes refused (unknown or revoked) until a
    time, with the reason; ids revoked in this process are never served again.

    :meth:`peek` and :meth:`refusal` only read (single dict and set reads, atomic
    under the GIL) and take no lock, so the event loop can call them; every write
    takes ``_lock``, which is only ever held for dictionary updates (no I/O)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._refused: dict[str, tuple[float, str]] = {}
        self._revoked: set[str] = set()
        self._lookups: dict[str, tuple[threading.Lock, int]] = {}  # hash -> (its lookup, threads using it)

    def refusal(self, key_hash: str) -> str | None:
        """Why ``key_hash`` was refused less than :data:`CACHE_SECONDS` ago (None: it
        was not).  Lock-free."""
        found = self._refused.get(key_hash)
        return found[1] if found is not None and monotonic() < found[0] else None

    def refuse(self, key_hash: str, reason: str) -> None:
        with self._lock:
            if len(self._refused) >= _CACHE_MAX:
                self._refused.clear()
            self._refused[key_hash] = (monotonic() + CACHE_SECONDS, reason)

    def peek(self, key_hash: str) -> ApiKey | None:
        """The key read less than :data:`CACHE_SECONDS` ago and not revoked here, if
        any.  Lock-free and read-only (an expired entry stays until :meth:`get` or
        :meth:`put` replaces it)."""
        found = self._entries.get(key_hash)
        if found is None:
            return None
        key, read_at = found
        return key if monotonic() - read_at < CACHE_SECONDS and key.id not in self._revoked else None

    def get(self, key_hash: str, max_age: float = CACHE_SECONDS) -> ApiKey | None:
        """The key read at most ``max_age`` seconds ago (and never more than
        :data:`CACHE_SECONDS`), if any."""
        now = monotonic()
        with self._lock:
            found = self._entries.get(key_hash)
            if found is None:
                return None
            key, read_at = found
            if now - read_at >= CACHE_SECONDS or key.id in self._revoked:
                del self._entries[key_hash]
                return None
            return key if now - read_at < max_age else None

    def put(self, key_hash: str, key: ApiKey) -> None:
        read_at = monotonic()
        with self._lock:
            if key.id in self._revoked:
                return
            if len(self._entries) >= _CACHE_MAX:
                self._entries.clear()
            self._entries[key_hash] = (key, read_at)

    def revoke(self, key_id: str) -> None:
        with self._lock:
            self._revoked.add(key_id)
            for key_hash in [h for h, (k, _) in self._entries.items() if k.id == key_id]:
                del self._entries[key_hash]

    @contextmanager
    def lookup(self, key_hash: str) -> Iterator[None]:
        """One lookup of ``key_hash`` at a time: a thread that finds another one
        looking the same key up waits for it, and then finds its answer cached."""
        with self._lock:
            gate, users = self._lookups.get(key_hash) or (threading.Lock(), 0)
            self._lookups[key_hash] = (gate, users + 1)
        try:
            with gate:
                yield
        finally:
            with self._lock:
                gate, users = self._lookups[key_hash]
                if users == 1:
                    del self._lookups[key_hash]
                else:
                    self._lookups[key_hash] = (gate, users - 1)


class ApiKeys:
    def __init__(
        self,
        keys: KeyStore,
        *,
        audit: AuditLog,
        clock: Callable[[], datetime],
        tree: Callable[[], TenantTree] = TenantTree,
    ) -> None:
        self._tree = tree
        self._keys = keys
        self._audit = audit
        self.now = clock
        self._cache = _KeyCache()

    def _key_cache(self) -> _KeyCache:
        return self._cache  # made once, with the service: no thread can race to make it

    def remembered_key(self, token: str) -> ApiKey | None:
        """The key ``token`` is, if this process knows it without a lookup (None: look
        it up with :meth:`authenticate`); AuthenticationError for a malformed token or
        one refused less than :data:`CACHE_SECONDS` ago.  Pure CPU (a regular
        expression and a SHA-256 of the token) and memory reads: no I/O, no lock, so
        an event loop may call it."""
        if not is_well_formed(token):
            raise AuthenticationError("malformed API key")
        digest = hash_key(token)
        cache = self._key_cache()
        refused = cache.refusal(digest)
        if refused is not None:
            raise AuthenticationError(refused)
        return cache.peek(digest)

    def create_api_key(
        self, *, role: str, tenant_id: str | None = None, name: str = "", actor: str = "system"
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext.  The plaintext is returned this once and never
        stored (only its SHA-256 digest is); the audit entry carries no key material."""
        check_identifier("actor", actor, max_len=100)
        for attempt in range(_ATTEMPTS):
            text, digest = generate_key()
            key = ApiKey(
                id=str(uuid.uuid4()),
                name=name,
                role=role,
                tenant_id=tenant_id,
                prefix=key_prefix(text),
                created_at=self.now(),
            )
            try:
                self._keys.add_api_key(key, key_hash=digest)
            except ConflictError:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            break
        self._audit.add_audit(
            [
                AuditEntry(
                    at=key.created_at,
                    kind="api_key_created",
                    tenant_id=key.tenant_id or "",
                    actor=actor,
                    details={"key_id": key.id, "name": key.name, "role": key.role},
                )
            ]
        )
        return key, text

    def list_api_keys(self) -> list[ApiKey]:
        """Every key (revoked ones too), oldest first; never a secret or hash."""
        return self._keys.list_api_keys()

    def revoke_api_key(self, key_id: str, *, actor: str = "system") -> None:
        """Revoke a key (NotFoundError if there is none); revoking twice keeps the
        first time.  This process refuses the key from now on."""
        check_identifier("key_id", key_id, max_len=36)
        check_identifier("actor", actor, max_len=100)
        now = self.now()
        self._keys.revoke_api_key(key_id, at=now)
        self._key_cache().revoke(key_id)
        self._audit.add_audit([AuditEntry(at=now, kind="api_key_revoked", actor=actor, details={"key_id": key_id})])

    def authenticate(self, token: str | None, *, max_age: float = CACHE_SECONDS) -> ApiKey:
        """The key ``token`` is; AuthenticationError if it is missing, malformed,
        unknown or revoked (the message never contains the token).  ``max_age``: how
        old (seconds) a remembered lookup may be for this call; a long-lived
        connection re-checking its key passes a short one, so that a revocation by
        another process is seen within it (one lookup per key and ``max_age``)."""
        if not token:
            raise AuthenticationError("no API key given")
        if not is_well_formed(token):
            raise AuthenticationError("malformed API key")
        digest = hash_key(token)
        cache = self._key_cache()
        key = cache.get(digest, max_age)
        if key is not None:
            return key
        with cache.lookup(digest):
            key = cache.get(digest, max_age)  # looked up by another thread meanwhile
            if key is not None:
                return key
            refused = cache.refusal(digest)
            if refused is not None:
                raise AuthenticationError(refused)
            key = self._keys.find_api_key(digest)  # a StorageError is not remembered
            if key is not None and key.tenant_id is not None:
                tree = self._tree()
                if tree:
                    key = replace(key, below=tree.subtree(key.tenant_id) - {key.tenant_id})
            if key is None:
                cache.refuse(digest, "unknown API key")
                raise AuthenticationError("unknown API key")
            if key.revoked:
                reason = f"API key {key.id} was revoked"
                cache.revoke(key.id)  # seen here (a WebSocket's re-check): refused by every request from now on
                cache.refuse(digest, reason)
                raise AuthenticationError(reason)
            cache.put(digest, key)
            return key

    def authorize(self, key: ApiKey, *, action: str, tenant_id: str | None) -> None:
        """PermissionDeniedError unless ``key`` may do ``action`` on ``tenant_id``'s
        data (None: every tenant's)."""
        if not isinstance(key, ApiKey):
            raise ValidationError("key", type(key).__name__, "must be an ApiKey")
        if not can(key, action=action, tenant_id=tenant_id):
            scope = "every tenant" if tenant_id is None else f"tenant {tenant_id!r}"
            raise PermissionDeniedError(f"a {key.role} key may not {action} for {scope}")
