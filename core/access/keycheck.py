"""Checking an ``X-API-Key``: one UPDATE checks the key, applies its GCRA rate limit with the
database's clock and counts its use. Requests of a process that queue while it writes share
the next UPDATE (``combining``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flashfusion.core.access import keyformat as keys
from flashfusion.core.access import ratelimit
from flashfusion.core.access.combining import Combiner, Ticket
from flashfusion.core.access.permissions import Actor
from flashfusion.core.errors import TooManyRequests, Unauthorized
from flashfusion.core.storage.db import database, to_db_time, write_gate, write_tx
from flashfusion.core.storage.models import ApiKey

API_KEY_HEADER = "X-API-Key"
HOUR = 3600.0


def unknown_key() -> Unauthorized:
    return Unauthorized("The API key is unknown, revoked or expired", error="Invalid API key")


def authenticate(header_value: str | None, *, limit: int, now: datetime) -> tuple[Actor, ratelimit.Decision]:
    """Resolve an ``X-API-Key`` value. One UPDATE checks the key (unknown, revoked, expired,
    owner disabled), applies the key's GCRA rate limit with the database's clock, and counts
    the requests it lets through in ``usage_count``/``last_used``. Requests of this process
    that arrive while another is writing share its next UPDATE (see ``combining``), which
    decides for each of them, in arrival order. Malformed keys are refused before any
    database access."""
    if not header_value:
        raise Unauthorized(f"Send your API key in the {API_KEY_HEADER} header", error="Missing API key")
    candidate = header_value.strip()
    try:
        keys.check_format(candidate)
    except keys.KeyFormatError as exc:
        raise Unauthorized(exc.message, error=exc.error) from None
    stamp = ApiKey.last_used.db_value(to_db_time(now))
    outcome = _key_uses.submit(KeyUse(digest=keys.hash_key(candidate), stamp=stamp, limit=limit))
    if outcome is None:
        raise unknown_key()
    return outcome


@dataclass(frozen=True)
class KeyUse:
    digest: str
    stamp: Any  # the request's time, as stored
    limit: int


def _write_key_uses(tickets: list[Ticket[KeyUse]]) -> None:
    """Decide a batch of requests: one UPDATE per key (one transaction if several keys)."""
    groups: dict[tuple[str, int], list[Ticket[KeyUse]]] = {}
    for ticket in tickets:
        groups.setdefault((ticket.request.digest, ticket.request.limit), []).append(ticket)
    with write_gate() if len(groups) == 1 else write_tx():
        for (digest, limit), group in groups.items():
            _decide(digest, limit, group)


def _decide(digest: str, limit: int, group: list[Ticket[KeyUse]]) -> None:
    period = HOUR
    interval = period / limit
    stamp = max(t.request.stamp for t in group)
    granted = (len(group), period, interval)
    params = granted + granted + (interval,) + granted * 2 + (stamp, digest, digest, stamp, stamp)
    row = database.execute_sql(_authenticate_sql(), params).fetchone()
    if row is None:
        for ticket in group:
            ticket.result = None
        return
    key_id, preview, perms, scope, owner_id, tat, passed, db_time = row
    actor = Actor(key_id=key_id, key_preview=preview, permissions=_names(perms), pipeline_ids=_names(scope),
                  owner_id=owner_id)
    tat, db_time, passed = float(tat), float(db_time), int(passed)
    base = tat - passed * interval
    for position, ticket in enumerate(group, start=1):
        allowed = position <= passed
        ticket.result = (actor, ratelimit.Decision(allowed=allowed, limit=limit, period=period,
                                                   tat=base + position * interval if allowed else tat,
                                                   now=db_time))


_key_uses: Combiner[KeyUse] = Combiner(_write_key_uses)
_SQL: dict[type, str] = {}


def _authenticate_sql() -> str:
    """The statement of ``_decide`` for the open backend, built once."""
    backend = type(database.obj)
    sql = _SQL.get(backend)
    if sql is None:
        granted, db_now, new_tat = ratelimit.gcra_terms("rl_tat")
        p = database.param
        sql = _SQL[backend] = (
            f"UPDATE api_key SET rl_granted = {granted}, rl_tat = {new_tat}, "
            f"usage_count = usage_count + {granted}, "
            f"last_used = CASE WHEN ({granted}) > 0 THEN {p} ELSE last_used END "
            f"WHERE (key_hash = {p} OR (previous_key_hash = {p} AND previous_expires_at > {p})) "
            f"AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {p}) "
            f"AND NOT EXISTS (SELECT 1 FROM app_user WHERE app_user.id = api_key.owner_id AND disabled_at IS NOT NULL) "
            f"RETURNING id, key_preview, permissions, pipeline_ids, owner_id, rl_tat, rl_granted, {db_now}"
        )
    return sql


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


def too_many(decision: ratelimit.Decision, what: str) -> TooManyRequests:
    return TooManyRequests(f"Rate limit of {decision.limit} requests per hour exceeded for this {what}; "
                           f"retry in {max(1, decision.retry_after)} s",
                           retry_after=decision.retry_after, headers=decision.headers())
