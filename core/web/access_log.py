"""One access line per request, and the request metrics.

The line names the route template (``/api/webhooks/{id}``, not the id) so that lines and
metrics group by endpoint, and who called by key preview or user name: never the key, a
password or a token, which only ever travel in headers and bodies this does not read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import falcon

from flashfusion.core.observability import logs, metrics, tracing

log = logging.getLogger("flashfusion.access")
UNROUTED = "(unrouted)"
LINE = "%(method)s %(route)s %(status)s %(duration_ms)sms request_id=%(request_id)s caller=%(caller)s client=%(client)s"


def route_of(req: falcon.Request) -> str:
    return req.uri_template or UNROUTED


def caller_of(req: falcon.Request) -> str:
    actor = req.context.get("actor")
    if actor is not None:
        return f"key:{actor.key_preview}"
    user = req.context.get("user")
    if user is not None:
        return f"user:{user.username}"
    return "-"


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_SERIES_MAX = 1024


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter's and latency histogram's series for one kind of request. prometheus
    validates label values on every ``labels()`` call; the series are looked up once here (up to
    ``_SERIES_MAX`` kinds: past that, clients inventing methods are not remembered)."""
    found = _SERIES.get((method, route, status))
    if found is None:
        found = (metrics.http_requests.labels(method, route, str(status)), metrics.http_latency.labels(method, route))
        if len(_SERIES) < _SERIES_MAX:
            _SERIES[(method, route, status)] = found
    return found


class AccessLog:
    """Falcon middleware; first in the chain, so its time (and its trace span, when tracing
    is on) covers the others."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.span = tracing.start_request_span(req.method)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        now = time.perf_counter()
        started = req.context.get("started")
        seconds = now - (now if started is None else started)
        route = route_of(req)
        status = resp.status_code
        tracing.end_request_span(req.context.get("span"), req.method, route, status)
        counted, timed = _series(req.method, route, status)
        counted.inc()
        timed.observe(seconds)
        if status == 429:
            metrics.rate_limited.labels(route).inc()
        if not log.isEnabledFor(logging.INFO):
            return
        fields = {
            "method": req.method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": req.context.get("request_id", "-"),
            "caller": caller_of(req),
            "client": req.context.get("client_addr") or req.remote_addr or "-",
        }
        logs.emit_line(log, logging.INFO, LINE % fields, fields)
