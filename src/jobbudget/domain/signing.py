"""Webhook signatures as the Standard Webhooks specification (1.0) defines them.

A signed request carries ``webhook-id`` (the event or digest id: the same on every
retry), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.  Receivers verify with any
Standard Webhooks library and refuse timestamps more than a few minutes old, so a
captured request cannot be replayed later.

Secrets: ``whsec_<base64>`` (the spec's form) is the base64 of the key, which must be
24 to 64 bytes (the spec asks for 24 at least, 512 bits at most); :func:`new_secret`
makes one.  Any other secret (configured before jobbudget followed the spec) is used
as it is: its UTF-8 bytes are the key, and such channels also get the deprecated
``X-JobBudget-Signature`` header (:func:`legacy_signature`) that their receivers
may still check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from .errors import ValidationError

__all__ = [
    "MAX_KEY_BYTES",
    "MIN_KEY_BYTES",
    "SECRET_FIELD",
    "SECRET_PREFIX",
    "is_standard_secret",
    "legacy_signature",
    "new_secret",
    "sign",
    "signing_key",
]

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
#: The field a bad secret is reported under (its value is never repeated).
SECRET_FIELD = "notifications.metadata.secret"
_NEW_KEY_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_NEW_KEY_BYTES)).decode("ascii")


def is_standard_secret(secret: str) -> bool:
    """Whether ``secret`` is in the spec's ``whsec_<base64>`` form."""
    return secret.startswith(SECRET_PREFIX)


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the decoded base64 of a ``whsec_`` secret, else the
    secret's UTF-8 bytes.  Raises :class:`ValidationError` (without the secret) for a
    ``whsec_`` secret that is not base64 of 24 to 64 bytes, or an empty secret."""
    if not secret:
        raise ValidationError(SECRET_FIELD, "***", "must not be empty")
    if not is_standard_secret(secret):
        return secret.encode("utf-8")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            SECRET_FIELD, "whsec_***", "after whsec_ must come standard base64 (A-Z a-z 0-9 + / =)"
        ) from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValidationError(
            SECRET_FIELD,
            "whsec_***",
            f"must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes, not {len(key)} "
            "(make one with `jobbudget notify secret`)",
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.

    The id must not contain ``.`` (the spec's rule, so that id and timestamp cannot
    be shifted into each other)."""
    if "." in msg_id or not msg_id:
        raise ValueError(f"a webhook id must be non-empty and without '.': {msg_id!r}")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def legacy_signature(secret: str, body: bytes) -> str:
    """The deprecated ``X-JobBudget-Signature`` value: ``sha256=<hex HMAC-SHA256 of
    the body>`` keyed with the secret's UTF-8 bytes.  It signs neither the id nor the
    time, so a captured request verifies forever: receivers should move to the
    ``webhook-signature`` header."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
