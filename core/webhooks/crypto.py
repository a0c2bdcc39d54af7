"""Endpoint secrets at rest: AES-256-GCM with a key derived from ``FLASHFUSION_SECRET_KEY``.

``FLASHFUSION_SECRET_KEY`` (environment only) holds one or more comma-separated key strings
of at least 32 characters; the first encrypts, every one decrypts, so a key can be rotated
by prepending a new one. When it is unset, the embedded default generates a random key into
``webhooks.secret_key_file`` (mode 0600, beside the config file) on first use. Deployments
with several hosts must set the variable to the same value on every host.

A stored value is ``ffenc1:<key id>:<base64(nonce | ciphertext)>``; the endpoint id is bound
as associated data, so a ciphertext copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from flashfusion.core.storage.db import from_db_time
from flashfusion.core.storage.models import WebhookEndpoint

log = logging.getLogger("flashfusion.webhooks")
ENV_NAME = "FLASHFUSION_SECRET_KEY"
PREFIX = "ffenc1"
MIN_KEY_CHARS = 32


class SecretKeyError(Exception):
    pass


def _derive(material: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"flashfusion", info=b"webhook-secrets-v1").derive(
        material.encode("utf-8")
    )


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"kid" + key).hexdigest()[:8]


class SecretBox:
    def __init__(self, materials: list[str]) -> None:
        if not materials:
            raise SecretKeyError(f"{ENV_NAME} holds no key")
        for material in materials:
            if len(material) < MIN_KEY_CHARS:
                raise SecretKeyError(f"each key in {ENV_NAME} needs at least {MIN_KEY_CHARS} characters")
        self._keys = [_derive(m) for m in materials]
        self._by_id = {_key_id(k): k for k in self._keys}

    def encrypt(self, plaintext: str, aad: str) -> str:
        key = self._keys[0]
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return f"{PREFIX}:{_key_id(key)}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, aad: str) -> str:
        try:
            prefix, kid, blob = stored.split(":", 2)
            key = self._by_id[kid]
            raw = base64.b64decode(blob)
            return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode("utf-8")).decode("utf-8")
        except KeyError:
            raise SecretKeyError(f"a webhook secret was encrypted with a key that is not in {ENV_NAME}") from None
        except Exception:
            raise SecretKeyError("a stored webhook secret could not be decrypted") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str], key_file: Path) -> SecretBox:
        value = env.get(ENV_NAME)
        if value:
            return cls([part.strip() for part in value.split(",") if part.strip()])
        return cls([load_or_create_key_file(key_file)])


def load_or_create_key_file(path: Path) -> str:
    """Read the generated key, creating it (0600, atomically) on first use."""
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = None
        if text:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode)
            return text
        if text is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (secrets.token_urlsafe(48) + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # fails if another process won the race: then read theirs
                log.info("generated a webhook secret key in %s (set %s on real deployments)", path, ENV_NAME)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
    raise SecretKeyError(f"{path} is empty")


def box_for(config) -> SecretBox:
    key_file = Path(config.webhooks.secret_key_file)
    if not key_file.is_absolute():
        key_file = Path(config.path).resolve().parent / key_file
    return SecretBox.from_env(config.env, key_file)


def endpoint_secrets(box: SecretBox, ep: WebhookEndpoint, now: datetime) -> list[str]:
    """An endpoint's signing secrets, newest first: two while a rotation's grace period lasts."""
    found = [box.decrypt(ep.secret_enc, ep.id)]
    expires = from_db_time(ep.previous_expires_at)
    if ep.previous_secret_enc and expires is not None and expires > now:
        found.append(box.decrypt(ep.previous_secret_enc, ep.id))
    return found
