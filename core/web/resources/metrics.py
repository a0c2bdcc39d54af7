"""``GET /metrics``: the Prometheus exposition, behind a Bearer token or for loopback only.

With ``[metrics] token_env`` set, the request must carry ``Authorization: Bearer <token>``
(compared in constant time). Without it, only a peer on a loopback address that came
directly (no ``Forwarded``/``X-Forwarded-For`` header: a local reverse proxy's public
clients are not local) is answered.
"""

from __future__ import annotations

import hmac
import ipaddress

import falcon

from flashfusion.core.errors import Forbidden, Unauthorized
from flashfusion.core.gateway import Gateway
from flashfusion.core.observability import exposition


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class Metrics:
    auth = None

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.token_env = gateway.config.metrics.token_env

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.check_access(req)
        resp.content_type = exposition.CONTENT_TYPE
        resp.data = exposition.render()

    def check_access(self, req: falcon.Request) -> None:
        if not self.token_env:
            forwarded = req.get_header("Forwarded") or req.get_header("X-Forwarded-For")
            if forwarded or not is_loopback(req.remote_addr):
                raise Forbidden(
                    "GET /metrics answers only to loopback clients; set [metrics] token_env "
                    "to allow others with a Bearer token"
                )
            return
        token = self.gw.config.env.get(self.token_env, "")
        if not token:
            raise Forbidden(
                f"[metrics] token_env names {self.token_env}, which is not set in the gateway's environment"
            )
        scheme, _, given = (req.get_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized(
                f"GET /metrics needs Authorization: Bearer <the token in {self.token_env}>",
                headers={"WWW-Authenticate": "Bearer"},
            )
