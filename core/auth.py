"""API-key authentication and permission checks: the one place for both rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import falcon

from flashfusion.core import keys
from flashfusion.core.db import to_db_time, utcnow
from flashfusion.core.errors import Forbidden, NotFound, Unauthorized
from flashfusion.core.models import ApiKey

PERMISSIONS = ("trigger_pipeline", "read_runs", "read_config", "webhook")
API_KEY_HEADER = "X-API-Key"
UNKNOWN_KEY = Unauthorized("The API key is unknown, revoked or expired", error="Invalid API key")


@dataclass(frozen=True)
class Actor:
    """Who is calling. ``pipeline_ids`` empty means every pipeline."""

    key_id: str
    key_preview: str
    permissions: frozenset[str]
    pipeline_ids: frozenset[str] = field(default_factory=frozenset)

    def may_see(self, pipeline_id: str) -> bool:
        return not self.pipeline_ids or pipeline_id in self.pipeline_ids


def authenticate(header_value: str | None) -> Actor:
    """Resolve an ``X-API-Key`` value to an ``Actor``, counting the use in the same
    statement. Malformed keys are refused before any database access."""
    if not header_value:
        raise Unauthorized(f"Send your API key in the {API_KEY_HEADER} header", error="Missing API key")
    candidate = header_value.strip()
    try:
        keys.check_format(candidate)
    except keys.KeyFormatError as exc:
        raise Unauthorized(exc.message, error=exc.error) from None
    now = to_db_time(utcnow())
    rows = list(
        ApiKey.update(usage_count=ApiKey.usage_count + 1, last_used=now)
        .where((ApiKey.key_hash == keys.hash_key(candidate)) & ApiKey.revoked_at.is_null()
               & (ApiKey.expires_at.is_null() | (ApiKey.expires_at > now)))
        .returning(ApiKey.id, ApiKey.key_preview, ApiKey.permissions, ApiKey.pipeline_ids)
        .execute()
    )
    if not rows:
        raise UNKNOWN_KEY
    row = rows[0]
    return Actor(key_id=row.id, key_preview=row.key_preview, permissions=frozenset(row.permissions or ()),
                 pipeline_ids=frozenset(row.pipeline_ids or ()))


def require(permission: str) -> Callable[..., None]:
    """A ``falcon.before`` hook: the caller's key must hold ``permission``."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        actor: Actor = req.context.actor
        if permission not in actor.permissions:
            raise Forbidden(f"This API key lacks the '{permission}' permission", error="Insufficient permissions")

    return hook


def check_pipeline_scope(actor: Actor, pipeline_id: str, what: str = "Pipeline") -> None:
    """A key scoped to other pipelines learns nothing: the answer is a plain 404."""
    if not actor.may_see(pipeline_id):
        raise NotFound(f"{what} not found", error=f"{what} not found")
