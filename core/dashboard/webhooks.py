"""Webhook endpoints in the dashboard: create, scope, rotate, test, deliveries."""

from __future__ import annotations

from typing import Any

from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.dashboard.pages import (
    Ctx,
    ListPage,
    Page,
    page,
    redirect,
)
from flashfusion.core.errors import ApiError, Forbidden, NotFound
from flashfusion.core.storage.models import WebhookDelivery
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.outbox import EVENT_TYPES
from flashfusion.core.webhooks.views import endpoint_to_dict


class Webhooks(ListPage):
    nav = "webhooks"

    def choices(self, ctx: Ctx) -> list[str]:
        return list(self.gw.config.pipelines) if ctx.user.is_admin else ctx.access.visible()

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        values.setdefault("created", None)
        values.setdefault("draft", {"url": "", "description": "", "events": [], "pipelines": []})
        self.d.page(
            ctx,
            "webhooks.html",
            status,
            nav=self.nav,
            hooks=self.d.webhooks.list(Caller(user=ctx.user)),
            event_types=EVENT_TYPES,
            pipelines=self.choices(ctx),
            **values,
        )

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        draft: dict[str, Any] = {
            "url": form.get("url").strip(),
            "description": form.get("description"),
            "events": form.getall("events"),
            "pipelines": form.getall("pipelines"),
        }
        try:
            pipelines = self.scope(ctx, draft["pipelines"])
            created = self.d.webhooks.create(
                Caller(user=ctx.user, client_addr=client_addr(ctx.req)),
                {
                    "url": draft["url"],
                    "description": draft["description"],
                    "events": draft["events"],
                    "pipeline_ids": pipelines,
                },
            )
        except ApiError as exc:
            self.show(ctx, exc.status, error=exc.message, draft=draft)
            return
        self.show(
            ctx, created={"id": created["id"], "secret": created["secret"], "url": draft["url"], "action": "created"}
        )

    def scope(self, ctx: Ctx, chosen: list[str]) -> list[str]:
        """People who see only some pipelines subscribe only to those (none chosen = all they see)."""
        if ctx.user.is_admin:
            return chosen
        visible = ctx.access.visible()
        if set(visible) == set(self.gw.config.pipelines):
            return chosen
        if not visible:
            raise Forbidden(
                "Your API keys give you no pipeline to subscribe to; create a key first", error="No pipelines"
            )
        if any(p not in visible for p in chosen):
            raise NotFound("Pipeline not found", error="Pipeline not found")
        return chosen or visible


class WebhookPage(Page):
    nav = "webhooks"
    full_template, fragment_template = "webhook.html", "deliveries_table.html"

    def show(self, ctx: Ctx, hook_id: str, status: int = 200, **values: Any) -> None:
        caller = Caller(user=ctx.user)
        ep = self.d.webhooks.visible(caller, hook_id)
        log = self.d.webhooks.deliveries(caller, ep.id, status=None, limit=50, cursor=None)["deliveries"]
        values.setdefault("secret", None)
        self.render_live(
            ctx,
            status,
            hook=endpoint_to_dict(ep, self.gw.clock()),
            deliveries=log,
            active=any(d["status"] == "pending" for d in log),
            **values,
        )

    @page
    def on_get(self, ctx: Ctx, hook_id: str) -> None:
        self.show(ctx, hook_id)


class WebhookAction(Page):
    nav = "webhooks"

    @page
    def on_post(self, ctx: Ctx, hook_id: str, action: str) -> None:
        caller = Caller(user=ctx.user, client_addr=client_addr(ctx.req))
        service = self.d.webhooks
        back = f"/dashboard/webhooks/{hook_id}"
        if action == "rotate":
            rotated = service.rotate(caller, hook_id)
            WebhookPage(self.d).show(
                ctx,
                hook_id,
                secret={
                    "secret": rotated["secret"],
                    "action": "rotated",
                    "previous_until": rotated["previous_secret_expires_at"],
                },
            )
        elif action == "test":
            service.test(caller, hook_id)
            redirect(ctx.resp, back, done="ping")
        elif action in ("enable", "disable"):
            service.update(caller, {"id": hook_id, "enabled": action == "enable"})
            redirect(ctx.resp, back, done=action + "d")
        elif action == "delete":
            service.delete(caller, hook_id)
            redirect(ctx.resp, "/dashboard/webhooks", done="deleted")
        elif action == "redeliver":
            delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == ctx.form.get("delivery_id")[:40])
            if delivery is None or delivery.endpoint_id != hook_id:
                raise NotFound("Delivery not found", error="Delivery not found")
            service.redeliver(caller, delivery.id)
            redirect(ctx.resp, back, done="redeliver")
        else:
            raise NotFound("No such action", error="Not found")
