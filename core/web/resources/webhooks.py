"""The webhook management API and sendWebhook: ``/functions/*Webhook*``, deliveries,
redeliver, replay. An API key needs the ``webhook`` permission; a session also works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
import msgspec

from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.gateway import Gateway
from flashfusion.core.web.authentication import require
from flashfusion.core.web.parsing import query, query_int
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.core.web.schemas.requests import (
    Body,
    CreateWebhookRequest,
    RedeliverRequest,
    ReplayWebhooksRequest,
    SendWebhookRequest,
    UpdateWebhookRequest,
    WebhookIdRequest,
)
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.management import WebhookService

ServiceMethod = Callable[[WebhookService, Caller, Any], dict[str, Any]]


def caller(req: falcon.Request) -> Caller:
    return Caller(
        actor=getattr(req.context, "actor", None), user=getattr(req.context, "user", None), client_addr=client_addr(req)
    )


class _Resource(GatewayResource):
    auth = "api_key_or_session"

    def __init__(self, gateway: Gateway, service: WebhookService) -> None:
        super().__init__(gateway)
        self.service = service


class ServiceCall(_Resource):
    """A POST handed to one ``WebhookService`` method: the caller, then the checked body's
    declared fields as the service takes them (unsent ones left out), or only the one field
    ``pick`` names."""

    def __init__(
        self, gateway: Gateway, service: WebhookService, method: ServiceMethod, body: type[Body], pick: str | None
    ) -> None:
        super().__init__(gateway, service)
        self.method = method
        self.body_type = body
        self.pick = pick

    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.body(req, self.body_type)
        arg = getattr(body, self.pick) if self.pick else msgspec.to_builtins(body)
        resp.media = self.method(self.service, caller(req), arg)


class ListWebhooks(_Resource):
    @falcon.before(require("webhook"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"success": True, "webhooks": self.service.list(caller(req))}


class ListDeliveries(_Resource):
    @falcon.before(require("webhook"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        webhook_id = query(req, "webhook_id", required=True, max_length=40)
        resp.media = self.service.deliveries(
            caller(req),
            webhook_id,
            status=query(req, "status", max_length=16),
            limit=query_int(req, "limit", default=50, low=1, high=200),
            cursor=query(req, "cursor", max_length=40),
        )


GETS = {"/functions/listWebhooks": ListWebhooks, "/functions/listDeliveries": ListDeliveries}
# path: (the WebhookService method, the body it takes, the one field it takes instead of all)
POSTS: dict[str, tuple[ServiceMethod, type[Body], str | None]] = {
    "/functions/createWebhook": (WebhookService.create, CreateWebhookRequest, None),
    "/functions/updateWebhook": (WebhookService.update, UpdateWebhookRequest, None),
    "/functions/deleteWebhook": (WebhookService.delete, WebhookIdRequest, "id"),
    "/functions/rotateWebhookSecret": (WebhookService.rotate, WebhookIdRequest, "id"),
    "/functions/testWebhook": (WebhookService.test, WebhookIdRequest, "id"),
    "/functions/sendWebhook": (WebhookService.send, SendWebhookRequest, None),
    "/functions/redeliver": (WebhookService.redeliver, RedeliverRequest, "delivery_id"),
    "/functions/replayWebhooks": (WebhookService.replay, ReplayWebhooksRequest, None),
}


def add_routes(app: falcon.App, gateway: Gateway) -> None:
    for path, cls in GETS.items():
        app.add_route(path, cls(gateway, gateway.webhooks))
    for path, (method, body, pick) in POSTS.items():
        app.add_route(path, ServiceCall(gateway, gateway.webhooks, method, body, pick))
