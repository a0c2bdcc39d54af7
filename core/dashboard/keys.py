"""API keys in the dashboard: create, rotate, revoke (the service calls of the CLI and API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flashfusion.core.access import apikeys
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.access.users import usernames_by_id
from flashfusion.core.dashboard.pages import (
    Ctx,
    ListPage,
    Page,
    page,
    redirect,
)
from flashfusion.core.dashboard.timefmt import parse_time
from flashfusion.core.errors import NotFound


class Keys(ListPage):
    nav = "keys"

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        owners = usernames_by_id() if ctx.user.is_admin else None
        keys = [apikeys.key_to_dict(row, owners) for row in apikeys.visible_keys(ctx.user)]
        now = self.gw.clock()
        for k in keys:
            expires = parse_time(k["expires_at"])
            k["expired"] = expires is not None and expires <= now
        keys.sort(key=lambda k: (k["revoked"] or k["expired"], k["created_at"] or ""), reverse=False)
        values.setdefault("created", None)
        values.setdefault(
            "draft",
            {
                "name": "",
                "permissions": ["trigger_pipeline", "read_runs"],
                "pipelines": [],
                "days": apikeys.DEFAULT_EXPIRY_DAYS,
            },
        )
        self.d.page(
            ctx,
            "keys.html",
            status,
            nav=self.nav,
            keys=keys,
            permissions=PERMISSIONS,
            pipelines=list(self.gw.config.pipelines),
            max_days=apikeys.MAX_EXPIRY_DAYS,
            **values,
        )

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        draft = {
            "name": form.get("name"),
            "permissions": form.getall("permissions"),
            "pipelines": form.getall("pipelines"),
            "days": form.get("expires_in_days"),
        }
        try:
            try:
                days = int(form.get("expires_in_days") or apikeys.DEFAULT_EXPIRY_DAYS)
            except ValueError:
                raise apikeys.KeyRequestError("'expires_in_days' must be a whole number of days") from None
            created = apikeys.create_key(
                draft["name"],
                draft["permissions"],
                draft["pipelines"],
                days,
                known_pipelines=self.gw.config.pipelines,
                owner=ctx.user,
                actor=ctx.user.username,
                client_addr=client_addr(ctx.req),
                now=self.gw.clock(),
            )
        except apikeys.KeyRequestError as exc:
            self.show(ctx, 400, error=str(exc), draft=draft)
            return
        self.show(ctx, created=dict(created, action="created"))


class KeyAction(Page):
    @page
    def on_post(self, ctx: Ctx, key_id: str, action: str) -> None:
        try:
            row = apikeys.find_key(key_id, ctx.user)
        except (LookupError, apikeys.KeyRequestError):
            raise NotFound("API key not found", error="API key not found") from None
        addr = client_addr(ctx.req)
        if action == "revoke":
            apikeys.revoke_key(row, actor=ctx.user.username, client_addr=addr, now=self.gw.clock())
            redirect(ctx.resp, "/dashboard/keys", done="revoked")
        elif action == "rotate":
            grace = timedelta(hours=self.gw.config.auth.rotation_grace_hours)
            try:
                rotated = apikeys.rotate_key(row, grace, actor=ctx.user.username, client_addr=addr, now=self.gw.clock())
            except apikeys.KeyRequestError as exc:
                Keys(self.d).show(ctx, 400, error=str(exc))
                return
            Keys(self.d).show(ctx, created=dict(rotated, action="rotated"))
        else:
            raise NotFound("No such action", error="Not found")
