"""The dashboard's routes and its static files. The pages live in one module per feature; each
calls the service functions the API and the CLI use — never HTTP."""

from __future__ import annotations

import mimetypes

import falcon

from flashfusion.core.dashboard.keys import KeyAction, Keys
from flashfusion.core.dashboard.login import Home, Login, Logout
from flashfusion.core.dashboard.pages import (
    STATIC,
    Dashboard,
    HeadersMiddleware,
)
from flashfusion.core.dashboard.people import Account, AuditLog, DisableUser, Users
from flashfusion.core.dashboard.pipelines import Pipelines, Runs, TriggerPipeline
from flashfusion.core.dashboard.runpage import CancelRun, RunPage
from flashfusion.core.dashboard.webhooks import WebhookAction, WebhookPage, Webhooks
from flashfusion.core.gateway import Gateway


class Static:
    """The dashboard's own CSS, JavaScript and icon: a fixed list read at start-up."""

    auth = None
    TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

    def __init__(self) -> None:
        self.files = {
            p.name: (
                p.read_bytes(),
                self.TYPES.get(p.suffix) or mimetypes.guess_type(p.name)[0] or "application/octet-stream",
            )
            for p in STATIC.iterdir()
            if p.is_file()
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = found
        resp.set_header("Cache-Control", "private, max-age=300")


def add_routes(app: falcon.App, gateway: Gateway) -> None:
    dash = Dashboard(gateway)
    app.add_middleware(HeadersMiddleware())
    app.add_route("/", Home())
    app.add_route("/login", Login(dash))
    app.add_route("/logout", Logout(dash))
    app.add_route("/dashboard", Home())
    app.add_route("/dashboard/pipelines", Pipelines(dash))
    app.add_route("/dashboard/pipelines/{pipeline_id}/trigger", TriggerPipeline(dash))
    app.add_route("/dashboard/runs", Runs(dash))
    app.add_route("/dashboard/runs/{run_id}", RunPage(dash))
    app.add_route("/dashboard/runs/{run_id}/cancel", CancelRun(dash))
    app.add_route("/dashboard/keys", Keys(dash))
    app.add_route("/dashboard/keys/{key_id}/{action}", KeyAction(dash))
    app.add_route("/dashboard/webhooks", Webhooks(dash))
    app.add_route("/dashboard/webhooks/{hook_id}", WebhookPage(dash))
    app.add_route("/dashboard/webhooks/{hook_id}/{action}", WebhookAction(dash))
    app.add_route("/dashboard/audit", AuditLog(dash))
    app.add_route("/dashboard/account", Account(dash))
    app.add_route("/dashboard/users", Users(dash))
    app.add_route("/dashboard/users/{username}/disable", DisableUser(dash))
    app.add_route("/static/dashboard/{name}", Static())
