"""Creating and listing API keys (shared by the CLI and the management API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from flashfusion.core import keys
from flashfusion.core.auth import PERMISSIONS
from flashfusion.core.db import iso, to_db_time, utcnow
from flashfusion.core.ids import new_id
from flashfusion.core.models import ApiKey

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365


class KeyRequestError(ValueError):
    pass


def create_key(name: str, permissions: Iterable[str], pipeline_ids: Iterable[str] = (),
               expires_in_days: int = DEFAULT_EXPIRY_DAYS, *, known_pipelines: Iterable[str],
               created_by: str = "cli") -> dict[str, Any]:
    """Create a key and return the spec's answer, with the plaintext (shown only once)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise KeyRequestError("'name' must be 1 to 200 characters")
    perms = sorted(set(permissions))
    if not perms:
        raise KeyRequestError(f"'permissions' must name at least one of {', '.join(PERMISSIONS)}")
    unknown = [p for p in perms if p not in PERMISSIONS]
    if unknown:
        raise KeyRequestError(f"unknown permission {unknown[0]!r} (known: {', '.join(PERMISSIONS)})")
    scope = sorted(set(pipeline_ids))
    missing = [p for p in scope if p not in set(known_pipelines)]
    if missing:
        raise KeyRequestError(f"unknown pipeline {missing[0]!r}")
    if not isinstance(expires_in_days, int) or isinstance(expires_in_days, bool) or not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise KeyRequestError(f"'expires_in_days' must be an integer from 1 to {MAX_EXPIRY_DAYS}")
    new = keys.generate()
    now = utcnow()
    row = ApiKey.create(id=new_id("key"), name=name, key_hash=new.key_hash, key_preview=new.preview,
                        permissions=perms, pipeline_ids=scope, created_at=to_db_time(now),
                        expires_at=to_db_time(now + timedelta(days=expires_in_days)), created_by=created_by)
    return {"success": True, "id": row.id, "name": row.name, "plaintext_key": new.plaintext,
            "key_preview": row.key_preview}


def key_to_dict(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "key_preview": row.key_preview, "permissions": row.permissions,
        "pipeline_ids": row.pipeline_ids, "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
        "last_used": iso(row.last_used), "usage_count": row.usage_count, "revoked": row.revoked_at is not None,
    }
