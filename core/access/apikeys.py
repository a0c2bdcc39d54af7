"""The API key lifecycle: create, list, rotate, revoke, prune (CLI and management API)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET

from flashfusion.core.access import audit, keycheck, views
from flashfusion.core.access import keyformat as keys
from flashfusion.core.access.keycache import announce_revocation
from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import from_db_time, iso, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import ApiKey, User

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365
# The columns ``key_to_dict`` passes on as they are, and those it writes as ISO 8601 times.
COPIED_FIELDS = ("id", "name", "key_preview", "permissions", "pipeline_ids", "usage_count")
TIME_FIELDS = ("created_at", "expires_at", "last_used")


class KeyRequestError(ValueError):
    pass


def validate_request(
    name: Any, permissions: Any, pipeline_ids: Any, expires_in_days: Any, known_pipelines: Iterable[str]
) -> tuple[str, list[str], list[str], int]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise KeyRequestError("'name' must be a string of 1 to 200 characters")
    if not isinstance(permissions, list) or not permissions or not all(isinstance(p, str) for p in permissions):
        raise KeyRequestError(f"'permissions' must be a non-empty array of: {', '.join(PERMISSIONS)}")
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        raise KeyRequestError(f"unknown permission {unknown[0][:50]!r} (known: {', '.join(PERMISSIONS)})")
    pipeline_ids = [] if pipeline_ids is None else pipeline_ids
    if not isinstance(pipeline_ids, list) or not all(isinstance(p, str) for p in pipeline_ids):
        raise KeyRequestError("'pipeline_ids' must be an array of pipeline ids")
    missing = [p for p in pipeline_ids if p not in set(known_pipelines)]
    if missing:
        raise KeyRequestError(f"unknown pipeline {missing[0][:64]!r}")
    if expires_in_days is None:
        expires_in_days = DEFAULT_EXPIRY_DAYS
    if (
        not isinstance(expires_in_days, int)
        or isinstance(expires_in_days, bool)
        or not 1 <= expires_in_days <= MAX_EXPIRY_DAYS
    ):
        raise KeyRequestError(f"'expires_in_days' must be an integer from 1 to {MAX_EXPIRY_DAYS}")
    return name.strip(), sorted(set(permissions)), sorted(set(pipeline_ids)), expires_in_days


def create_key(
    name: Any,
    permissions: Any,
    pipeline_ids: Any = None,
    expires_in_days: Any = DEFAULT_EXPIRY_DAYS,
    *,
    known_pipelines: Iterable[str],
    owner: User | None = None,
    actor: str = "cli",
    client_addr: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create a key and return the spec's answer, with the plaintext (shown only once)."""
    name, perms, scope, days = validate_request(
        name,
        list(permissions) if isinstance(permissions, tuple) else permissions,
        list(pipeline_ids) if isinstance(pipeline_ids, tuple) else pipeline_ids,
        expires_in_days,
        known_pipelines,
    )
    new = keys.generate()
    now = now or utcnow()
    with write_tx():
        row = ApiKey.create(
            id=new_id("key"),
            name=name,
            key_hash=new.key_hash,
            key_preview=new.preview,
            permissions=perms,
            pipeline_ids=scope,
            created_at=to_db_time(now),
            expires_at=to_db_time(now + timedelta(days=days)),
            created_by=actor,
            owner_id=owner.id if owner else None,
        )
        audit_key("key.created", row, actor, client_addr, permissions=perms, pipeline_ids=scope, expires_in_days=days)
    return secret_answer(row, new)


def audit_key(action: str, row: ApiKey, actor: str, client_addr: str | None, **detail: Any) -> None:
    """Audit ``action`` on the key ``row``; ``detail`` may name a newer ``key_preview``."""
    detail.setdefault("key_preview", row.key_preview)
    audit.record(action, actor, target=row.id, client_addr=client_addr, **detail)


def secret_answer(row: ApiKey, new: keys.NewKey, **extra: Any) -> dict[str, Any]:
    """The answer that carries a key's new secret, the only time its plaintext is shown."""
    return {
        "success": True,
        "id": row.id,
        "name": row.name,
        "plaintext_key": new.plaintext,
        "key_preview": new.preview,
        **extra,
    }


def visible_keys(user: User | None):
    """Keys a person may manage: their own, or all for an administrator (and the CLI).
    This process's pending usage counts are written first."""
    keycheck.flush()
    query = ApiKey.select().order_by(ApiKey.created_at)
    if user is not None and not user.is_admin:
        query = query.where(ApiKey.owner_id == user.id)
    return query


def find_key(key_id: Any, user: User | None) -> ApiKey:
    if not isinstance(key_id, str) or not key_id:
        raise KeyRequestError("'id' must be a key id")
    row = visible_keys(user).where(ApiKey.id == key_id).first()
    if row is None:
        raise LookupError("API key not found")
    return row


def revoke_key(
    row: ApiKey, *, actor: str, client_addr: str | None = None, action: str = "key.revoked", now: datetime | None = None
) -> ApiKey:
    with write_tx():
        if row.revoked_at is None:
            ApiKey.update(revoked_at=to_db_time(now or utcnow())).where(ApiKey.id == row.id).execute()
            announce_revocation(row.id)
        audit_key(action, row, actor, client_addr)
    keycheck.forget(row.id)
    return ApiKey.get_by_id(row.id)


def rotate_key(
    row: ApiKey, grace: timedelta, *, actor: str, client_addr: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """A new secret for the same key (same id, permissions, scope, usage and rate limit).
    The old secret keeps working for ``grace``, then answers 401 everywhere."""
    if row.revoked_at is not None:
        raise KeyRequestError("a revoked key cannot be rotated")
    now = now or utcnow()
    new = keys.generate()
    old_until = now + grace
    with write_tx():
        ApiKey.update(
            previous_key_hash=row.key_hash,
            previous_expires_at=to_db_time(old_until),
            key_hash=new.key_hash,
            key_preview=new.preview,
        ).where(ApiKey.id == row.id).execute()
        audit_key(
            "key.rotated",
            row,
            actor,
            client_addr,
            key_preview=new.preview,
            previous_key_preview=row.key_preview,
            previous_key_expires_at=iso(old_until),
        )
    return secret_answer(row, new, previous_key_expires_at=iso(old_until))


def prune_keys(unused_days: int, *, actor: str = "cli", now: datetime | None = None) -> list[ApiKey]:
    """Disable (revoke) keys not used for ``unused_days`` (never-used keys count from creation)."""
    if unused_days < 1:
        raise KeyRequestError("--unused-days must be at least 1")
    now = now or utcnow()
    cutoff = to_db_time(now - timedelta(days=unused_days))
    stale = list(
        ApiKey.select().where(
            ApiKey.revoked_at.is_null()
            & ((ApiKey.last_used.is_null() & (ApiKey.created_at < cutoff)) | (ApiKey.last_used < cutoff))
        )
    )
    return [revoke_key(row, actor=actor, action="key.pruned", now=now) for row in stale]


def key_to_dict(row: ApiKey, owners: dict[str, str] | None = None) -> dict[str, Any]:
    previous = row.previous_expires_at
    rotating = previous is not None and from_db_time(previous) > utcnow()
    return msgspec.to_builtins(
        views.ApiKeyInfo(
            **{name: getattr(row, name) for name in COPIED_FIELDS},
            **{name: iso(getattr(row, name)) for name in TIME_FIELDS},
            revoked=row.revoked_at is not None,
            previous_key_expires_at=iso(previous) if previous is not None and rotating else UNSET,
            owner=owners.get(row.owner_id or "", None) if owners is not None else UNSET,
        )
    )
