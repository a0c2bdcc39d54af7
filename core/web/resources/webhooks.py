"""The webhook management API and sendWebhook: ``/functions/*Webhook*``, deliveries,
redeliver, replay. An API key needs the ``webhook`` permission; a session also works."""

from __future__ import annotations

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


def caller(req: falcon.Request) -> Caller:
    return Caller(actor=getattr(req.context, "actor", None), user=getattr(req.context, "user", None))


class _Resource(GatewayResource):
    auth = "api_key_or_session"

    def __init__(self, gateway: Gateway, service: WebhookService) -> None:
        super().__init__(gateway)
        self.service = service

    def fields(self, req: falcon.Request, cls: type[Body]) -> dict[str, Any]:
        """The body's declared fields, checked, as the service takes them (unsent ones left out)."""
        return msgspec.to_builtins(self.body(req, cls))


class CreateWebhook(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.create(
            caller(req), self.fields(req, CreateWebhookRequest), client_addr=client_addr(req)
        )


class ListWebhooks(_Resource):
    @falcon.before(require("webhook"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"success": True, "webhooks": self.service.list(caller(req))}


class UpdateWebhook(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.update(
            caller(req), self.fields(req, UpdateWebhookRequest), client_addr=client_addr(req)
        )


class DeleteWebhook(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.delete(caller(req), self.body(req, WebhookIdRequest).id, client_addr=client_addr(req))


class RotateWebhookSecret(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.rotate(caller(req), self.body(req, WebhookIdRequest).id, client_addr=client_addr(req))


class TestWebhook(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.test(caller(req), self.body(req, WebhookIdRequest).id)


class SendWebhook(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.send(caller(req), self.fields(req, SendWebhookRequest))


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


class Redeliver(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.redeliver(caller(req), self.body(req, RedeliverRequest).delivery_id)


class ReplayWebhooks(_Resource):
    @falcon.before(require("webhook"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.replay(caller(req), self.fields(req, ReplayWebhooksRequest))


ROUTES = {
    "/functions/createWebhook": CreateWebhook,
    "/functions/listWebhooks": ListWebhooks,
    "/functions/updateWebhook": UpdateWebhook,
    "/functions/deleteWebhook": DeleteWebhook,
    "/functions/rotateWebhookSecret": RotateWebhookSecret,
    "/functions/testWebhook": TestWebhook,
    "/functions/sendWebhook": SendWebhook,
    "/functions/listDeliveries": ListDeliveries,
    "/functions/redeliver": Redeliver,
    "/functions/replayWebhooks": ReplayWebhooks,
}


def add_routes(app: falcon.App, gateway: Gateway) -> None:
    for path, cls in ROUTES.items():
        app.add_route(path, cls(gateway, gateway.webhooks))
