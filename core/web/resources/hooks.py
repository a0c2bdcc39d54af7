"""``POST /hooks/{provider}``: provider webhooks in.

No API key: the provider's signature is the authentication. The request path does as little
as it can: check the size and the signature (the provider's ``verify_delivery``, constant
time), store the raw delivery in the inbox in one INSERT, answer 202. The worker applies it.
"""

from __future__ import annotations

import falcon

from flashfusion.core.access import audit
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.errors import NotFound, Unauthorized
from flashfusion.core.gateway import Gateway
from flashfusion.core.hooks import inbox
from flashfusion.core.web.parsing import read_body
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.plugins import DeliveryRejected

MAX_HOOK_BYTES = 1024 * 1024


class ProviderHooks(GatewayResource):
    auth = None

    def on_post(self, req: falcon.Request, resp: falcon.Response, provider: str) -> None:
        instance = self.gw.providers.instances.get(provider)
        if instance is None:
            raise NotFound(f"No provider {provider!r} is configured", error="Not Found")
        body = read_body(req, MAX_HOOK_BYTES, too_large="Webhook body")
        headers = {name.lower(): value for name, value in req.headers.items()}
        try:
            delivery = instance.verify_delivery(headers, body)
        except DeliveryRejected as exc:
            audit.record_failure(
                "hook.rejected",
                f"{provider}:{client_addr(req)}",
                actor=f"hooks:{provider}",
                client_addr=client_addr(req),
                reason=str(exc),
            )
            raise Unauthorized(
                "The webhook signature is missing or does not match", error="Invalid signature"
            ) from None
        resp.status = falcon.HTTP_202
        if not delivery.wanted:
            resp.media = {"success": True, "status": "ignored"}
            return
        stored = inbox.accept(provider, delivery.delivery_id, delivery.event, headers, body)
        resp.media = {"success": True, "status": "accepted" if stored else "duplicate"}


def add_routes(app: falcon.App, gateway: Gateway) -> None:
    app.add_route("/hooks/{provider}", ProviderHooks(gateway))
