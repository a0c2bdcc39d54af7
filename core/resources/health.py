"""Liveness, readiness and the OpenAPI document (no authentication)."""

from __future__ import annotations

import falcon

from flashfusion.core import openapi
from flashfusion.core.db import database
from flashfusion.core.gateway import Gateway
from flashfusion.core.migrations import pending


class Healthz:
    auth = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"success": True, "status": "ok"}


class Readyz:
    auth = None

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {}
        try:
            database.execute_sql("SELECT 1").fetchone()
            missing = pending(database.obj)
            checks["database"] = "ok" if not missing else f"migrations pending: {', '.join(missing)}"
        except Exception as exc:  # the message may name the host, never credentials
            checks["database"] = f"unreachable ({exc.__class__.__name__})"
        ready = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {"success": ready, "checks": checks}


class OpenApi:
    auth = None

    def __init__(self) -> None:
        self.document = openapi.document()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
