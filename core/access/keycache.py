"""Which API keys are valid, remembered per process for at most ``auth.key_cache_seconds``.

A key's check (known, not revoked, not expired, its owner not disabled, an old secret
still in its rotation grace) is a SELECT; its answer is kept for ``key_cache_seconds`` of
the local monotonic clock, so a revocation or a disabled owner takes effect in every
process within that bound. Expiry and the end of a rotation grace are exact: an entry also
carries the instant its secret stops working. On PostgreSQL a revocation is also pushed to
every process at once (``NOTIFY``, see ``revocation_listener``); the bound holds without it.
Unknown keys are not remembered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flashfusion.core.access.keyleases import valid_condition
from flashfusion.core.access.permissions import Actor
from flashfusion.core.storage.db import database, from_db_time
from flashfusion.core.storage.notifications import Listener, notify

CHANNEL = "flashfusion_key_revoked"
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class KeyEntry:
    actor: Actor
    ends: datetime | None  # when this secret stops working (expiry or end of rotation grace)
    fresh_until: float  # time.monotonic()


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, KeyEntry] = {}

    def remembers(self, digest: str) -> bool:
        return digest in self._entries

    def get(self, digest: str, now: datetime, stamp: Any, seconds: float) -> Actor | None:
        """The key behind ``digest`` if valid at ``now`` (``stamp``: the same instant as
        stored), checked in the database when the remembered answer is older than
        ``seconds``; None if unknown or no longer valid."""
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() >= entry.fresh_until:
            entry = self._check(digest, stamp, seconds)
            if entry is None:
                self._entries.pop(digest, None)
                return None
        if entry.ends is not None and now >= entry.ends:
            self._entries.pop(digest, None)
            return None
        return entry.actor

    def _check(self, digest: str, now: Any, seconds: float) -> KeyEntry | None:
        p = database.param
        row = database.execute_sql(
            "SELECT id, key_preview, permissions, pipeline_ids, owner_id, expires_at, "
            f"CASE WHEN key_hash = {p} THEN NULL ELSE previous_expires_at END FROM api_key "
            f"WHERE (key_hash = {p} OR (previous_key_hash = {p} AND previous_expires_at > {p})) "
            f"AND {valid_condition()}",
            (digest, digest, digest, now, now),
        ).fetchone()
        if row is None:
            return None
        key_id, preview, perms, scope, owner_id, expires, grace_end = row
        ends = [t for t in (from_db_time(expires), from_db_time(grace_end)) if t is not None]
        entry = KeyEntry(
            actor=Actor(
                key_id=key_id,
                key_preview=preview,
                permissions=_names(perms),
                pipeline_ids=_names(scope),
                owner_id=owner_id,
            ),
            ends=min(ends) if ends else None,
            fresh_until=time.monotonic() + seconds,
        )
        if seconds > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = entry
        return entry

    def forget(self, key_id: str | None = None) -> None:
        """Drop what is remembered of ``key_id`` (of every key if None)."""
        if key_id is None:
            self._entries.clear()
            return
        for digest, entry in list(self._entries.items()):
            if entry.actor.key_id == key_id:
                self._entries.pop(digest, None)


_NAMES: dict[Any, frozenset[str]] = {}


def _names(value: Any) -> frozenset[str]:
    """A key's permissions or pipeline ids, stored as a JSON list (text on SQLite, jsonb on
    PostgreSQL). Keys share a handful of distinct lists, so each is parsed once."""
    if not isinstance(value, str):
        return frozenset(value or ())
    names = _NAMES.get(value)
    if names is None:
        if len(_NAMES) > 1024:
            _NAMES.clear()
        names = _NAMES[value] = frozenset(json.loads(value))
    return names


def announce_revocation(key_id: str) -> None:
    """Inside the revoking transaction: on PostgreSQL, tell every listening process when it
    commits."""
    notify(CHANNEL, key_id)


def revocation_listener(cache: KeyCache, db: Any) -> Listener:
    """PostgreSQL only: drops each revoked key from ``cache`` as the revocation commits; when
    its connection fails, everything is forgotten (a revocation may have been missed)."""
    return Listener(db, CHANNEL, on_message=cache.forget, on_reset=cache.forget)
