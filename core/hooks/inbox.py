"""The inbox of provider webhooks.

The receiver stores each verified delivery in one INSERT (a delivery id seen before is
ignored by the unique index) and answers at once; a worker claims pending rows with a lease
(a killed worker's rows are taken over when it runs out), applies them in arrival order and
marks them applied. Applied rows are kept for ``RETAIN`` so redeliveries stay recognisable,
and tell ``doctor`` and the reconciler when each repository last sent a hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from flashfusion.core.storage.db import is_sqlite, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import InboundHook

RETAIN = timedelta(days=3)
#: Header names never stored (secrets and signatures are checked, then dropped).
_SECRET_MARKS = ("token", "signature", "secret", "authorization", "cookie")


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping for parsing: the provider's own (``x-*``, ``webhook-*``) and
    the content type, without anything secret."""
    return {
        name: value
        for name, value in headers.items()
        if (name.startswith(("x-", "webhook-")) or name == "content-type")
        and not any(mark in name for mark in _SECRET_MARKS)
    }


def accept(provider: str, delivery_id: str, event: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Store one delivery; False when its id was stored before (a redelivery)."""
    with write_tx():
        inserted = (
            InboundHook.insert(
                provider=provider,
                delivery_id=delivery_id[:200],
                event=event[:64],
                headers=stored_headers(headers),
                body=body.decode("utf-8", "replace"),
                received_at=to_db_time(utcnow()),
            )
            .on_conflict_ignore()
            .execute()
        )
    return bool(inserted)


def claim(owner: str, limit: int, lease_seconds: float) -> list[InboundHook]:
    """Pending deliveries for ``owner``, oldest first: those it holds and up to ``limit``
    that nobody holds (or whose holder's lease ran out)."""
    now = utcnow()
    until = to_db_time(now + timedelta(seconds=lease_seconds))
    pending = InboundHook.applied_at.is_null()
    free = pending & (InboundHook.lease_owner.is_null() | (InboundHook.lease_until < to_db_time(now)))
    with write_tx():
        free_rows = InboundHook.select(InboundHook.id).where(free).order_by(InboundHook.id).limit(limit)
        if not is_sqlite():
            free_rows = free_rows.for_update(skip_locked=True)
        ids = [r.id for r in free_rows]
        if ids:
            InboundHook.update(lease_owner=owner, lease_until=until).where(InboundHook.id.in_(ids)).execute()
    return list(InboundHook.select().where(pending & (InboundHook.lease_owner == owner)).order_by(InboundHook.id))


def done(row: InboundHook, repository: str | None, outcome: str) -> None:
    """Mark a delivery applied (in the caller's transaction when there is one)."""
    InboundHook.update(
        applied_at=to_db_time(utcnow()),
        repository=repository,
        outcome=outcome[:200],
        lease_owner=None,
        lease_until=None,
    ).where(InboundHook.id == row.id).execute()


def prune(now: datetime) -> int:
    with write_tx():
        return (
            InboundHook.delete()
            .where(InboundHook.applied_at.is_null(False) & (InboundHook.received_at < to_db_time(now - RETAIN)))
            .execute()
        )


def pending_count() -> int:
    return InboundHook.select().where(InboundHook.applied_at.is_null()).count()
