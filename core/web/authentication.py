"""The Falcon side of access control: which scheme a resource takes (API key, session or
none), the permission hooks, and the session check with its CSRF rule. The rules themselves
live in ``flashfusion.core.access``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import falcon

from flashfusion.core.access import audit, clientaddr, keycheck, ratelimit, sessions
from flashfusion.core.access import keyformat as keys
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.access.keycheck import API_KEY_HEADER, HOUR, authenticate, too_many
from flashfusion.core.access.permissions import PERMISSIONS, Actor
from flashfusion.core.config import Config
from flashfusion.core.errors import Forbidden, Unauthorized
from flashfusion.core.storage.models import User

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


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
            audit.record_failure(
                "permission.denied",
                actor.key_id,
                actor=actor.key_id,
                client_addr=client_addr(req),
                key_preview=actor.key_preview,
                permission=permission,
                path=req.path,
            )
            raise Forbidden(f"This API key lacks the '{permission}' permission", error="Insufficient permissions")

    return hook


class Authentication:
    """Falcon middleware. A resource's ``auth`` attribute names the scheme it takes:
    ``"api_key"`` (the default), ``"session"``, ``"api_key_or_session"`` or ``None``."""

    def __init__(self, config: Config, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.clock = clock
        self.proxies = clientaddr.parse_networks(config.server.trusted_proxies)
        keycheck.configure(
            key_cache_seconds=config.auth.key_cache_seconds, usage_flush_seconds=config.auth.usage_flush_seconds
        )

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
        headers = decision.headers()
        if not decision.allowed:
            raise too_many(decision, "API key", headers)
        resp.set_headers(headers)
        req.context.actor = actor

    def _failed(self, req: falcon.Request, resp: falcon.Response, exc: Unauthorized) -> None:
        """Malformed and unknown keys are limited per client address, and repeated failures
        leave an audit trail."""
        addr = client_addr(req)
        decision = ratelimit.hit(f"addr:{addr}", self.config.rate_limits.api_requests_per_hour, HOUR)
        presented = (req.get_header(API_KEY_HEADER) or "").strip()
        audit.record_failure(
            "auth.failed",
            addr,
            actor="anonymous",
            client_addr=addr,
            key_preview=keys.preview(presented) if len(presented) >= 12 else None,
            reason=exc.error,
            path=req.path,
        )
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
    assert token is not None, "resume() refuses a request without a session cookie"
    if req.method not in SAFE_METHODS and not sessions.csrf_ok(token, req.get_header(CSRF_HEADER) or form_token):
        raise Forbidden(
            f"Send the csrf_token from login in the {CSRF_HEADER} header", error="CSRF token missing or wrong"
        )
    return user


def require_admin(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    user: User | None = req.context.user
    if user is None or not user.is_admin:
        raise Forbidden("Only administrators may do this", error="Administrators only")
