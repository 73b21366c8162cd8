"""The in-memory store's API keys (same contract as the SQL one)."""

from __future__ import annotations

import hmac
import threading
from dataclasses import replace
from datetime import datetime

from ..domain.apikeys import ApiKey
from ..domain.errors import ConflictError, NotFoundError

__all__ = ["MemoryKeys"]


class MemoryKeys:
    _lock: threading.RLock

    def _keys_init(self) -> None:
        self._api_keys: dict[str, ApiKey] = {}
        self._key_hashes: dict[str, str] = {}  # hash -> key id
        self._hash_of: dict[str, str] = {}  # key id -> hash

    def add_api_key(self, key: ApiKey, *, key_hash: str) -> None:
        with self._lock:
            if key.id in self._api_keys:
                raise ConflictError(f"api key {key.id} exists")
            if key_hash in self._key_hashes or any(k.prefix == key.prefix for k in self._api_keys.values()):
                raise ConflictError("an api key with this prefix or hash exists")
            self._api_keys[key.id] = key
            self._key_hashes[key_hash] = key.id
            self._hash_of[key.id] = key_hash

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._lock:
            key_id = self._key_hashes.get(key_hash)
            if key_id is None:
                return None
            if not hmac.compare_digest(self._hash_of[key_id].encode(), key_hash.encode()):
                return None
            return self._api_keys[key_id]

    def list_api_keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._api_keys.values(), key=lambda k: (k.created_at, k.id))

    def revoke_api_key(self, key_id: str, *, at: datetime) -> None:
        with self._lock:
            key = self._api_keys.get(key_id)
            if key is None:
                raise NotFoundError("api key", key_id)
            if key.revoked_at is None:
                self._api_keys[key_id] = replace(key, revoked_at=at)
