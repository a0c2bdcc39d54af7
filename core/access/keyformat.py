"""The ``ffai_`` API key format: prefix, base62 random body, base62 CRC32 checksum.

Like GitHub's tokens, the checksum lets the gateway refuse a mistyped or foreign string
before touching the database, and lets secret scanners recognise a real key offline.
Only the SHA-256 of a key is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "ffai_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 30  # 30 base62 characters: about 178 bits of randomness
CHECKSUM_LENGTH = 6  # CRC32 fits in 6 base62 characters
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
_ALPHABET_SET = frozenset(ALPHABET)


class KeyFormatError(ValueError):
    """``error`` and ``message`` follow the spec's error shape."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error, self.message = error, message


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    key_hash: str
    preview: str


def base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> NewKey:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    plaintext = PREFIX + body + checksum(body)
    return NewKey(plaintext=plaintext, key_hash=hash_key(plaintext), preview=preview(plaintext))


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def preview(plaintext: str) -> str:
    return "..." + plaintext[-6:]


def check_format(candidate: str) -> None:
    """Raise ``KeyFormatError`` unless ``candidate`` is a well-formed key."""
    if not candidate.startswith(PREFIX):
        raise KeyFormatError("Invalid API key format", "API keys must start with ffai_")
    rest = candidate[len(PREFIX) :]
    if (
        len(candidate) != KEY_LENGTH
        or not set(rest) <= _ALPHABET_SET
        or not secrets.compare_digest(checksum(rest[:BODY_LENGTH]), rest[BODY_LENGTH:])
    ):
        raise KeyFormatError("Invalid API key format", "The API key is malformed or mistyped (checksum mismatch)")
