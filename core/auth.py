"""Who is calling, and may they: API keys (with usage counting and rate limiting in one
statement), sessions for people, and permission checks. The one place for these rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import falcon

from flashfusion.core import audit, clientaddr, keys, ratelimit, sessions
from flashfusion.core.clientaddr import client_addr
from flashfusion.core.combining import Combiner, Ticket
from flashfusion.core.config import Config
from flashfusion.core.db import database, to_db_time, write_gate, write_tx
from flashfusion.core.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from flashfusion.core.models import ApiKey, User

PERMISSIONS = ("trigger_pipeline", "read_runs", "read_config", "webhook")
API_KEY_HEADER = "X-API-Key"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
HOUR = 3600.0


def unknown_key() -> Unauthorized:
    return Unauthorized("The API key is unknown, revoked or expired", error="Invalid API key")


@dataclass(frozen=True)
class Actor:
    """Who is calling. ``pipeline_ids`` empty means every pipeline."""

    key_id: str
    key_preview: str
    permissions: frozenset[str]
    pipeline_ids: frozenset[str] = field(default_factory=frozenset)
    owner_id: str | None = None

    def may_see(self, pipeline_id: str) -> bool:
        return not self.pipeline_ids or pipeline_id in self.pipeline_ids


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


def require(permission: str) -> Callable[..., None]:
    """A ``falcon.before`` hook: the caller's key must hold ``permission``. Sessions pass:
    people are limited by what their account may do, not by key permissions."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        actor: Actor | None = getattr(req.context, "actor", None)
        if actor is None:
            return
        if permission not in actor.permissions:
            audit.record_failure("permission.denied", actor.key_id, actor=actor.key_id, client_addr=client_addr(req),
                                 key_preview=actor.key_preview, permission=permission, path=req.path)
            raise Forbidden(f"This API key lacks the '{permission}' permission", error="Insufficient permissions")

    return hook


def check_pipeline_scope(actor: Actor | None, pipeline_id: str, what: str = "Pipeline") -> None:
    """A key scoped to other pipelines learns nothing: the answer is a plain 404."""
    if actor is not None and not actor.may_see(pipeline_id):
        raise NotFound(f"{what} not found", error=f"{what} not found")


class Authentication:
    """Falcon middleware. A resource's ``auth`` attribute names the scheme it takes:
    ``"api_key"`` (the default), ``"session"``, ``"api_key_or_session"`` or ``None``."""

    def __init__(self, config: Config, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.clock = clock
        self.proxies = clientaddr.parse_networks(config.server.trusted_proxies)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        clientaddr.remember(req, self.proxies)

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if resource is None:
            return
        scheme = getattr(resource, "auth", "api_key")
        req.context.actor = None
        req.context.user = None
        if scheme is None:
            return
        if scheme == "session" or (scheme == "api_key_or_session" and not req.get_header(API_KEY_HEADER)):
            self._session(req)
        else:
            self._api_key(req, resp)

    def _api_key(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = self.config.rate_limits.api_requests_per_hour
        try:
            actor, decision = authenticate(req.get_header(API_KEY_HEADER), limit=limit, now=self.clock())
        except Unauthorized as exc:
            self._failed(req, resp, exc)
            raise
        resp.set_headers(decision.headers())
        if not decision.allowed:
            raise too_many(decision, "API key")
        req.context.actor = actor

    def _failed(self, req: falcon.Request, resp: falcon.Response, exc: Unauthorized) -> None:
        """Malformed and unknown keys are limited per client address, and repeated failures
        leave an audit trail."""
        addr = client_addr(req)
        decision = ratelimit.hit(f"addr:{addr}", self.config.rate_limits.api_requests_per_hour, HOUR)
        presented = (req.get_header(API_KEY_HEADER) or "").strip()
        audit.record_failure("auth.failed", addr, actor="anonymous", client_addr=addr,
                             key_preview=keys.preview(presented) if len(presented) >= 12 else None,
                             reason=exc.error, path=req.path)
        for name, value in decision.headers().items():
            exc.headers.setdefault(name, value)
        if not decision.allowed:
            raise too_many(decision, "client address") from None

    def _session(self, req: falcon.Request) -> None:
        req.context.user = session_user(req, self.clock(), self.config)


def session_user(req: falcon.Request, now: datetime, config: Config, form_token: str | None = None) -> User:
    """The person behind the session cookie, or ``Unauthorized``. A state-changing request must
    carry the session's CSRF token: the ``X-CSRF-Token`` header, or — for the dashboard's HTML
    forms, which pass it here as ``form_token`` — the hidden ``csrf_token`` field. Both are
    compared in constant time."""
    if req.method not in SAFE_METHODS and (req.get_header("Sec-Fetch-Site") or "").lower() == "cross-site":
        raise Forbidden("Cross-site requests are refused", error="Cross-site request")
    token = req.cookies.get(sessions.COOKIE)
    user, _ = sessions.resume(token, now, config.auth)
    if req.method not in SAFE_METHODS and not sessions.csrf_ok(token, req.get_header(CSRF_HEADER) or form_token):
        raise Forbidden(f"Send the csrf_token from login in the {CSRF_HEADER} header", error="CSRF token missing or wrong")
    return user


def require_admin(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    user: User | None = req.context.user
    if user is None or not user.is_admin:
        raise Forbidden("Only administrators may do this", error="Administrators only")
