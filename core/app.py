"""The composition root: ``create_app`` wires config, database, plugins and resources.

gunicorn runs ``flashfusion.core.app:get_app()``, which reads the configuration named by
``FLASHFUSION_CONFIG``; tests call ``create_app`` directly.
"""

from __future__ import annotations

import logging
import random

import falcon
import msgspec

from flashfusion.core import dashboard
from flashfusion.core.config import Config, load_config
from flashfusion.core.errors import ApiError
from flashfusion.core.gateway import Gateway
from flashfusion.core.observability import logs, tracing
from flashfusion.core.plugin_manager import get_plugin_manager, load_providers
from flashfusion.core.runs import runcache
from flashfusion.core.runs.longpoll import RunWatcher
from flashfusion.core.storage import db as dbmod
from flashfusion.core.web.access_log import AccessLog
from flashfusion.core.web.authentication import Authentication
from flashfusion.core.web.resources import (
    access,
    apidocs,
    artifacts,
    groups,
    health,
    hooks,
    metrics,
    pipelines,
    webhooks,
)

log = logging.getLogger("flashfusion.app")

FALCON_ERROR_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class RequestContext:
    """Request id and security headers. Each server thread keeps its database connection
    open between requests (peewee opens it at the first query); a request that failed hands
    it back to the pool, which drops a connection the server has closed."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = (
            incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else f"{random.getrandbits(128):032x}"
        )
        resp.set_header("X-Request-ID", req.context.request_id)
        resp.set_headers(SECURITY_HEADERS)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if not req_succeeded and not dbmod.database.is_closed() and not dbmod.database.in_transaction():
            dbmod.database.close()


def _api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, params: dict) -> None:
    resp.status = ex.status
    resp.media = {"error": ex.error, "message": ex.message}
    for name, value in ex.headers.items():
        resp.set_header(name, value)


def _http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict) -> None:
    code = ex.status_code
    resp.status = ex.status
    name = FALCON_ERROR_NAMES.get(code, ex.title or "Error")
    if code == 404:
        message = f"No route for {req.method} {req.path}"
    elif code == 405:
        message = f"{req.method} is not allowed on {req.path}"
    else:
        message = ex.description or ex.title or name
    resp.media = {"error": name, "message": message}
    if ex.headers:
        resp.set_headers(ex.headers)


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    log.exception(
        "unhandled error in %s %s (request %s)", req.method, req.path, getattr(req.context, "request_id", "-")
    )
    resp.status = falcon.HTTP_500
    resp.media = {
        "error": "Internal Server Error",
        "message": f"Something went wrong; quote request id {getattr(req.context, 'request_id', '-')}",
    }


def create_app(gateway: Gateway) -> falcon.App:
    runcache.configure(gateway.config.server.run_cache_seconds)
    logs.access_lines.flush_seconds = gateway.config.logging.access_flush_seconds
    app: falcon.App[falcon.Request, falcon.Response] = falcon.App(
        middleware=[AccessLog(), RequestContext(), Authentication(gateway.config, gateway.clock)]
    )
    app.req_options.strip_url_path_trailing_slash = True
    # Answers are encoded by msgspec (compact, UTF-8): several times faster than json.dumps on
    # every response; request bodies keep the parser in web/parsing (it names line and column).
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=msgspec.json.encode)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(ApiError, _api_error)
    app.add_route("/api/trigger-pipeline", pipelines.TriggerPipeline(gateway))
    app.add_route("/api/get-status", pipelines.GetStatus(gateway))
    app.add_route("/api/get-config", pipelines.GetConfig(gateway))
    app.add_route("/api/runs", pipelines.ListRuns(gateway))
    app.add_route("/api/cancel-run", pipelines.CancelRun(gateway))
    app.add_route("/api/get-artifact", artifacts.GetArtifact(gateway))
    app.add_route("/api/trigger-pipelines", groups.TriggerPipelines(gateway))
    app.add_route("/api/get-group", groups.GetGroup(gateway))
    app.add_route("/functions/login", access.Login(gateway))
    app.add_route("/functions/logout", access.Logout())
    app.add_route("/functions/createAPIKey", access.CreateAPIKey(gateway))
    app.add_route("/functions/listAPIKeys", access.ListAPIKeys())
    app.add_route("/functions/revokeAPIKey", access.RevokeAPIKey(gateway))
    app.add_route("/functions/rotateAPIKey", access.RotateAPIKey(gateway))
    app.add_route("/functions/listAuditEvents", access.ListAuditEvents())
    app.add_route("/healthz", health.Healthz())
    app.add_route("/readyz", health.Readyz(gateway))
    app.add_route("/openapi.json", health.OpenApi())
    app.add_route("/metrics", metrics.Metrics(gateway))
    app.add_route("/docs", apidocs.ApiDocsPage())
    app.add_route("/docs/{name}", apidocs.ApiDocsAsset())
    webhooks.add_routes(app, gateway)
    hooks.add_routes(app, gateway)
    dashboard.add_routes(app, gateway)
    gateway.pm.hook.startup(app=app, config=gateway.config)
    return app


def build_gateway(config: Config) -> Gateway:
    """Open the database and load the plugins and providers for ``config``."""
    dbmod.open_database(config.server.database_url)
    tracing.configure(config.tracing)
    pm = get_plugin_manager()
    providers = load_providers(pm, config)
    return Gateway(config=config, pm=pm, providers=providers, watcher=RunWatcher(config.server.long_poll_max_waiters))


def get_app(config_path: str | None = None) -> falcon.App:
    """gunicorn's entry point: ``flashfusion.core.app:get_app()``."""
    config = load_config(config_path)
    logs.configure(config.logging.format, config.logging.level)
    return create_app(build_gateway(config))
