"""``Idempotency-Key`` on trigger-pipeline: the same key returns the same run for 24 h.

Keys are scoped per API key. The same key with a different body is refused (422); a key
whose first request is still dispatching is refused (409) so that two retries racing each
other cannot start two runs. A dispatch that upstream refused releases the key, so the
caller may retry with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import peewee

from flashfusion.core.errors import BadRequest, Conflict, Unprocessable
from flashfusion.core.storage.db import from_db_time, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import IdempotencyKey

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class _Row(Protocol):
    id: str


R = TypeVar("R", bound=_Row)


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def validate_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters", error="Invalid Idempotency-Key"
        )
    return key


def _created(row: IdempotencyKey) -> datetime:
    created = from_db_time(row.created_at)
    assert created is not None, "idempotency_key.created_at is NOT NULL"
    return created


def claim(api_key_id: str, key: str, body_hash: str) -> str | None:
    """Return the run id of an earlier request with this key, or ``None`` when this
    request now owns the key and must create the run."""
    for _ in range(2):
        try:
            with write_tx():
                row = (
                    IdempotencyKey.select()
                    .where((IdempotencyKey.api_key_id == api_key_id) & (IdempotencyKey.key == key))
                    .first()
                )
                if row is not None and _created(row) < utcnow() - TTL:
                    row.delete_instance()
                    row = None
                if row is None:
                    IdempotencyKey.insert(
                        api_key_id=api_key_id,
                        key=key,
                        request_hash=body_hash,
                        run_id=None,
                        created_at=to_db_time(utcnow()),
                    ).execute()
                    return None
        except peewee.IntegrityError:
            continue  # another request inserted the key first: read what it wrote
        if row.request_hash != body_hash:
            raise Unprocessable(
                "This Idempotency-Key was used with a different request body", error="Idempotency-Key reused"
            )
        if row.run_id is None:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly",
                error="Idempotency-Key in use",
            )
        return row.run_id
    raise Conflict(
        "A request with this Idempotency-Key is still in progress; retry shortly", error="Idempotency-Key in use"
    )


def bind(api_key_id: str, key: str, run_id: str) -> None:
    (
        IdempotencyKey.update(run_id=run_id)
        .where((IdempotencyKey.api_key_id == api_key_id) & (IdempotencyKey.key == key))
        .execute()
    )


def release(api_key_id: str, key: str) -> None:
    IdempotencyKey.delete().where((IdempotencyKey.api_key_id == api_key_id) & (IdempotencyKey.key == key)).execute()


def once(
    api_key_id: str, header: str | None, body: dict[str, Any], create: Callable[[], R], replay: Callable[[str], R]
) -> tuple[R, bool]:
    """Call ``create``, unless an earlier request with this Idempotency-Key (``header``) and
    ``body`` made a row already: then ``replay`` reads that row again. Answers the row and
    whether it was replayed. If ``create`` raises, the key is released for a retry."""
    if header is None:
        return create(), False
    key = validate_key(header)
    earlier = claim(api_key_id, key, request_hash(body))
    if earlier is not None:
        return replay(earlier), True
    try:
        made = create()
    except BaseException:
        release(api_key_id, key)
        raise
    bind(api_key_id, key, made.id)
    return made, False
