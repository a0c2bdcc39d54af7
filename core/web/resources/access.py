"""The management API for people: login, logout and the API key lifecycle, the audit log."""

from __future__ import annotations

from datetime import timedelta

import falcon

from flashfusion.core.access import apikeys, audit, sessions
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.access.logins import check_password, start_session
from flashfusion.core.access.users import MAX_PASSWORD_BYTES, user_to_dict, usernames_by_id
from flashfusion.core.errors import BadRequest, NotFound, Unauthorized
from flashfusion.core.storage.models import AuditEvent
from flashfusion.core.web.authentication import require_admin
from flashfusion.core.web.parsing import query, query_int
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.core.web.schemas.requests import CreateAPIKeyRequest, KeyIdRequest, LoginRequest


class Login(GatewayResource):
    auth = None

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if (req.get_header("Sec-Fetch-Site") or "").lower() == "cross-site":
            raise Unauthorized("Cross-site logins are refused", error="Cross-site request")
        body = self.body(req, LoginRequest)
        username, password = body.username, body.password
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise BadRequest(f"'password' is longer than {MAX_PASSWORD_BYTES} bytes", error="Invalid parameter")
        user = check_password(self.gw, req, username, password)
        new = start_session(self.gw, req, resp, user)
        now = self.gw.clock()
        auth = self.gw.config.auth
        resp.media = {
            "success": True,
            "user": user_to_dict(user),
            "csrf_token": new.csrf_token,
            "expires_at": (now + timedelta(hours=auth.session_absolute_hours))
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }


class Logout:
    auth = "session"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        sessions.end(req.cookies.get(sessions.COOKIE))
        resp.unset_cookie(sessions.COOKIE, path="/")
        resp.media = {"success": True}


def _key_error(exc: Exception) -> Exception:
    if isinstance(exc, LookupError):
        return NotFound("API key not found", error="API key not found")
    return BadRequest(str(exc), error="Invalid parameter")


class CreateAPIKey(GatewayResource):
    auth = "session"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.body(req, CreateAPIKeyRequest)
        user = req.context.user
        try:
            resp.media = apikeys.create_key(
                body.name,
                body.permissions,
                body.pipeline_ids,
                body.expires_in_days,
                known_pipelines=self.gw.config.pipelines,
                owner=user,
                actor=user.username,
                client_addr=client_addr(req),
                now=self.gw.clock(),
            )
        except apikeys.KeyRequestError as exc:
            raise _key_error(exc) from None


class ListAPIKeys:
    auth = "session"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.user
        owners = usernames_by_id() if user.is_admin else None
        resp.media = {"success": True, "keys": [apikeys.key_to_dict(row, owners) for row in apikeys.visible_keys(user)]}


class RevokeAPIKey(GatewayResource):
    auth = "session"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.body(req, KeyIdRequest)
        try:
            row = apikeys.find_key(body.id, req.context.user)
        except (LookupError, apikeys.KeyRequestError) as exc:
            raise _key_error(exc) from None
        row = apikeys.revoke_key(
            row, actor=req.context.user.username, client_addr=client_addr(req), now=self.gw.clock()
        )
        resp.media = {"success": True, "key": apikeys.key_to_dict(row)}


class RotateAPIKey(GatewayResource):
    auth = "session"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.body(req, KeyIdRequest)
        grace = timedelta(hours=self.gw.config.auth.rotation_grace_hours)
        try:
            row = apikeys.find_key(body.id, req.context.user)
            resp.media = apikeys.rotate_key(
                row, grace, actor=req.context.user.username, client_addr=client_addr(req), now=self.gw.clock()
            )
        except (LookupError, apikeys.KeyRequestError) as exc:
            raise _key_error(exc) from None


class ListAuditEvents:
    auth = "session"

    @falcon.before(require_admin)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = query_int(req, "limit", default=100, low=1, high=500)
        action = query(req, "action", max_length=64)
        rows = AuditEvent.select().order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
        if action is not None:
            rows = rows.where(AuditEvent.action == action)
        resp.media = {"success": True, "events": [audit.event_to_dict(e) for e in rows]}
