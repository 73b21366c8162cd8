"""API keys: roles, generation, hashing and the permission matrix (pure).

A key reads ``jb_<prefix>_<secret>``: ``secret`` is ``secrets.token_urlsafe(32)``
(43 URL-safe characters, 256 random bits) and ``prefix`` its first 8 characters,
shown in lists so a key can be recognised without revealing it.  Only the SHA-256
hex digest of the whole key is stored; the plaintext is shown once, at creation.

Roles:

* ``admin``: everything, for every tenant, including the ``admin`` actions
  (managing keys, the cost model, calibration); never bound to a tenant.
* ``tenant``: read and write its own tenant's data only.
* ``reporter``: read only; its own tenant's data if it has one, else every tenant's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from .errors import ValidationError
from .validation import MAX_TENANT_LEN, check_aware, check_identifier

__all__ = [
    "ACTIONS",
    "KEY_PATTERN",
    "ROLES",
    "Action",
    "ApiKey",
    "Role",
    "can",
    "generate_key",
    "hash_key",
    "is_well_formed",
    "key_prefix",
    "matches",
]

Role = Literal["admin", "tenant", "reporter"]
#: ``budget``: set stricter budgets (a team's key may, for the tenants below it);
#: ``write``: everything else a tenant does in its own name (jobs, admissions)
Action = Literal["read", "write", "budget", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
ACTIONS: tuple[str, ...] = get_args(Action)

PREFIX_LEN = 8
MAX_NAME_LEN = 100
MAX_ID_LEN = 36
#: The exact shape of a key; anything else is rejected before any lookup.
KEY_PATTERN = re.compile(r"jb_([A-Za-z0-9_-]{8})_([A-Za-z0-9_-]{43})")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{8}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key, without its secret or hash."""

    id: str
    name: str
    role: str
    tenant_id: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    #: the tenants below the key's node in the organisation tree (filled in when the
    #: key is authenticated): a team's key reads its tenants' data too
    below: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        check_identifier("id", self.id, max_len=MAX_ID_LEN)
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_LEN or not self.name.isprintable():
            raise ValidationError("name", self.name, f"must be printable text of at most {MAX_NAME_LEN} characters")
        if self.role not in ROLES:
            raise ValidationError("role", self.role, f"must be one of {', '.join(ROLES)}")
        if self.tenant_id is not None:
            check_identifier("tenant_id", self.tenant_id, max_len=MAX_TENANT_LEN)
        if self.role == "tenant" and self.tenant_id is None:
            raise ValidationError("tenant_id", self.tenant_id, "is required for a tenant key")
        if self.role == "admin" and self.tenant_id is not None:
            raise ValidationError("tenant_id", self.tenant_id, "must be empty for an admin key (admins see all)")
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise ValidationError("prefix", self.prefix, f"must be {PREFIX_LEN} URL-safe characters")
        check_aware("created_at", self.created_at)
        if self.revoked_at is not None:
            check_aware("revoked_at", self.revoked_at)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def generate_key() -> tuple[str, str]:
    """A new key and its SHA-256 hex digest: ``(plaintext, hash)``.  Store only the hash."""
    secret = secrets.token_urlsafe(32)
    text = f"jb_{secret[:PREFIX_LEN]}_{secret}"
    return text, hash_key(text)


def hash_key(text: str) -> str:
    """The SHA-256 hex digest of a key (64 characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def matches(stored_hash: str, text: str) -> bool:
    """True when ``text`` is the key whose hash is ``stored_hash`` (constant time)."""
    return hmac.compare_digest(stored_hash.encode(), hash_key(text).encode())


def is_well_formed(text: object) -> bool:
    """True for a string shaped like a key, whose prefix is its secret's start."""
    if not isinstance(text, str):
        return False
    found = KEY_PATTERN.fullmatch(text)
    return found is not None and found.group(2).startswith(found.group(1))


def key_prefix(text: str) -> str:
    """The prefix of a well-formed key (ValidationError otherwise; the key is not echoed)."""
    found = KEY_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValidationError("key", "***", "is not a jobbudget API key")
    return found.group(1)


def can(key: ApiKey, *, action: str, tenant_id: str | None) -> bool:
    """May ``key`` do ``action`` on ``tenant_id``'s data (None: data of every tenant)?"""
    if action not in ACTIONS:
        raise ValidationError("action", action, f"must be one of {', '.join(ACTIONS)}")
    if key.revoked:
        return False
    if key.role == "admin":
        return True
    if action == "admin":
        return False
    if key.role == "tenant":
        if tenant_id is None:
            return False
        if action == "write":  # jobs and admissions: in the key's own name only
            return tenant_id == key.tenant_id
        return tenant_id == key.tenant_id or tenant_id in key.below
    # reporter
    return action == "read" and (key.tenant_id is None or tenant_id == key.tenant_id or tenant_id in key.below)
