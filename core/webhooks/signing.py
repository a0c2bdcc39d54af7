"""Signatures.

- ``X-FlashFusion-Signature``: hex HMAC-SHA256 of the body bytes, keyed with the endpoint
  secret exactly as shown to the user (the whole ``whsec_...`` string, UTF-8), which is what
  the spec's verifier does with ``crypto.createHmac('sha256', secret)``.
- Standard Webhooks: ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
  keyed with the base64-decoded part after ``whsec_`` (the ``standardwebhooks`` libraries'
  convention). During a secret rotation both secrets sign: two space-separated entries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def is_secret(text: str) -> bool:
    if not text.startswith(PREFIX):
        return False
    try:
        return len(base64.b64decode(text[len(PREFIX) :], validate=True)) >= 24
    except ValueError:
        return False


def hex_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_key(secret: str) -> bytes:
    return base64.b64decode(secret[len(PREFIX) :] if secret.startswith(PREFIX) else secret)


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets_: list[str], *, msg_id: str, timestamp: int, event_type: str, body: bytes) -> dict[str, str]:
    """All signature headers for one attempt. ``secrets_`` is newest first (one or two)."""
    out = {
        "Content-Type": "application/json",
        "User-Agent": "FlashFusion-Webhooks/1",
        "X-FlashFusion-Event": event_type,
        "X-FlashFusion-Signature": hex_signature(secrets_[0], body),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(s, msg_id, timestamp, body) for s in secrets_),
    }
    if len(secrets_) > 1:
        out["X-FlashFusion-Signature-Previous"] = hex_signature(secrets_[1], body)
    return out
