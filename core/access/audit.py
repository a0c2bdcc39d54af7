"""The audit log: who did what to which key or user, from where."""

from __future__ import annotations

from typing import Any

import msgspec

from flashfusion.core.access import ratelimit, views
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import iso, to_db_time, utcnow
from flashfusion.core.storage.models import AuditEvent

# Repeated failures are recorded at most once per minute per source, so that a flood of bad
# requests cannot turn the audit log into a write amplifier.
FAILURE_COALESCE_SECONDS = 60
# The columns ``event_to_dict`` passes on as they are (``at`` is written as ISO 8601).
COPIED_FIELDS = ("id", "actor", "action", "target", "client_addr", "key_preview", "detail")


def record(
    action: str,
    actor: str,
    *,
    target: str | None = None,
    client_addr: str | None = None,
    key_preview: str | None = None,
    **detail: Any,
) -> None:
    AuditEvent.create(
        id=new_id("aud"),
        at=to_db_time(utcnow()),
        actor=actor[:200],
        action=action,
        target=target,
        client_addr=client_addr,
        key_preview=key_preview,
        detail=detail,
    )


def record_failure(
    action: str, source: str, *, actor: str, client_addr: str | None, key_preview: str | None = None, **detail: Any
) -> None:
    """Record a repeated-failure event unless one for ``source`` was written in the last minute."""
    if ratelimit.hit(f"audit:{action}:{source}", 1, FAILURE_COALESCE_SECONDS).allowed:
        record(action, actor, client_addr=client_addr, key_preview=key_preview, **detail)


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    return msgspec.to_builtins(
        views.AuditEvent(at=iso(event.at), **{name: getattr(event, name) for name in COPIED_FIELDS})
    )
