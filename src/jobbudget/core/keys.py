"""API keys: create, list and revoke keys, authenticate a presented key and
authorize what it asks to do.

Successful lookups are cached in this process for at most :data:`CACHE_SECONDS`, so
authenticating a request rarely touches the database.  Revoking a key through this
service takes effect here at once; other processes (another API worker, a CLI)
see a revocation within :data:`CACHE_SECONDS`.  An unknown key is remembered as
unknown for as long (a client sending the same wrong key again costs no lookup); a
new key is 256 random bits, so no key created elsewhere was ever seen as unknown.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from ..domain.apikeys import ApiKey, can, generate_key, hash_key, is_well_formed, key_prefix
from ..domain.errors import AuthenticationError, ConflictError, PermissionDeniedError, ValidationError
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
    """hash -> (key, time it was read), and hashes known to be unknown; ids revoked in
    this process are never served again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._unknown: dict[str, float] = {}
        self._revoked: set[str] = set()

    def unknown(self, key_hash: str) -> bool:
        expires = self._unknown.get(key_hash)
        return expires is not None and monotonic() < expires

    def put_unknown(self, key_hash: str) -> None:
        with self._lock:
            if len(self._unknown) >= _CACHE_MAX:
                self._unknown.clear()
            self._unknown[key_hash] = monotonic() + CACHE_SECONDS

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


class ApiKeys:
    def __init__(self, keys: KeyStore, *, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self._keys = keys
        self._audit = audit
        self.now = clock
        self._cache = _KeyCache()

    def _key_cache(self) -> _KeyCache:
        return self._cache

    def remembered_key(self, token: str) -> ApiKey | None:
        """The key ``token`` is, if this process knows it without a lookup (None: look
        it up with :meth:`authenticate`); AuthenticationError for a malformed token or
        one known to be unknown.  Never touches the database."""
        if not is_well_formed(token):
            raise AuthenticationError("malformed API key")
        digest = hash_key(token)
        cache = self._key_cache()
        if cache.unknown(digest):
            raise AuthenticationError("unknown API key")
        return cache.get(digest)

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
        if cache.unknown(digest):
            raise AuthenticationError("unknown API key")
        key = self._keys.find_api_key(digest)
        if key is None:
            cache.put_unknown(digest)
            raise AuthenticationError("unknown API key")
        if key.revoked:
            cache.revoke(key.id)  # seen here (a WebSocket's re-check): refused by every request from now on
            raise AuthenticationError(f"API key {key.id} was revoked")
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
