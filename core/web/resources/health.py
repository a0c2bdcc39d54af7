"""Liveness, readiness and the OpenAPI document (no authentication; readiness details for
administrators)."""

from __future__ import annotations

import time

import falcon
import peewee

from flashfusion.core.access import sessions
from flashfusion.core.checks import CheckCache
from flashfusion.core.errors import ApiError
from flashfusion.core.gateway import Gateway
from flashfusion.core.hooks import activity
from flashfusion.core.storage.db import database, iso
from flashfusion.core.storage.migrations import schema_state
from flashfusion.core.web import openapi
from flashfusion.core.web.authentication import session_user


class Healthz:
    auth = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"success": True, "status": "ok"}

    on_head = on_get  # falcon sends no body for HEAD


class Readyz:
    """Readiness: 503 only when the database is unreachable, behind on migrations or
    migrated by a newer release.

    Each pipeline's provider check (credentials, workflow, project) is reported under
    ``pipelines`` without failing readiness: a pipeline with problems is ``degraded`` and the
    top-level ``status`` says ``degraded``, still with 200, because the gateway itself can
    serve (other pipelines, reads, and this pipeline again once upstream is fixed). Results are
    kept per process for ``ttl_seconds`` and a probe waits at most ``wait_seconds`` for a
    refresh; a pipeline not checked yet says ``checking``.

    Anyone gets the overall ``success`` and ``status``; ``checks`` and ``pipelines`` (which
    name every pipeline, repository and problem) go only to an administrator's session.
    """

    auth = None
    ttl_seconds = 60.0
    wait_seconds = 2.0
    check_timeout_seconds = 20.0
    clock = time.monotonic

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.checks = CheckCache(
            gateway,
            ttl=self.ttl_seconds,
            wait=self.wait_seconds,
            timeout=self.check_timeout_seconds,
            clock=type(self).clock,
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {}
        try:
            database.execute_sql("SELECT 1").fetchone()
            checks["database"] = schema_state(database.obj)
        except Exception as exc:  # the message may name the host, never credentials
            checks["database"] = f"unreachable ({exc.__class__.__name__})"
        ready = all(v == "ok" for v in checks.values())
        results, checked_at = self.checks.get()
        pipelines: dict[str, dict] = {}
        for pid, pipeline in sorted(self.gw.config.pipelines.items()):
            result = results.get(pid)
            entry: dict = {"provider": pipeline.provider}
            if result is None:
                entry["status"] = "checking"
            elif result.ok:
                entry["status"] = "ok"
            else:
                entry["status"] = "degraded"
                entry["problems"] = list(result.problems)
            pipelines[pid] = entry
        degraded = any(e["status"] == "degraded" for e in pipelines.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"success": ready, "status": "not_ready" if not ready else "degraded" if degraded else "ready"}
        if self._administrator(req):
            resp.media.update(checks=checks, pipelines=pipelines, pipelines_checked_at=iso(checked_at))
            if ready:
                now = self.gw.clock()
                hooks = {e.provider: e.describe(now) for e in activity.report(self.gw.providers.instances)}
                if hooks:
                    resp.media["hooks"] = hooks

    on_head = on_get

    def _administrator(self, req: falcon.Request) -> bool:
        if sessions.COOKIE not in req.cookies:
            return False
        try:
            return bool(session_user(req, self.gw.clock(), self.gw.config).is_admin)
        except (ApiError, peewee.DatabaseError):  # not logged in, or no database: the anonymous answer
            return False


class OpenApi:
    auth = None

    def __init__(self) -> None:
        self.document = openapi.document()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
