"""People: the audit log, one's own account and password, and (for admins) the users page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from flashfusion.core.access import audit, sessions, users
from flashfusion.core.access.logins import check_password
from flashfusion.core.access.users import MAX_PASSWORD_BYTES, UserError
from flashfusion.core.dashboard.pages import (
    Ctx,
    ListPage,
    Page,
    page,
    redirect,
)
from flashfusion.core.errors import ApiError, BadRequest, NotFound
from flashfusion.core.storage.models import AuditEvent, User


class AuditLog(Page):
    nav = "audit"
    admin_only = True

    @page
    def on_get(self, ctx: Ctx) -> None:
        action = (ctx.req.get_param("action") or "")[:64]
        # peewee's stubs type ``.tuples()`` as yielding models
        names = cast(
            Iterable[tuple[str]], AuditEvent.select(AuditEvent.action).distinct().order_by(AuditEvent.action).tuples()
        )
        actions = [a for (a,) in names]
        q = AuditEvent.select().order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(200)
        if action:
            q = q.where(AuditEvent.action == action)
        self.d.page(
            ctx, "audit.html", nav=self.nav, events=[audit.event_to_dict(e) for e in q], actions=actions, action=action
        )


class Account(Page):
    nav = "account"

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.d.page(ctx, "account.html", nav=self.nav)

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        current, new, again = form.get("current_password"), form.get("new_password"), form.get("new_password_again")
        try:
            if len(current.encode("utf-8")) > MAX_PASSWORD_BYTES:
                raise BadRequest("Wrong current password", error="Invalid credentials")
            check_password(self.gw, ctx.req, ctx.user.username, current)
            if new != again:
                raise BadRequest("The two new passwords differ", error="Invalid parameter")
            try:
                assert self.gw.passwords is not None, "Gateway.__post_init__ always sets passwords"
                users.set_password(self.gw.passwords, ctx.user.username, new)
            except UserError as exc:
                raise BadRequest(str(exc), error="Invalid parameter") from None
        except ApiError as exc:
            message = "Wrong current password" if exc.status == 401 else exc.message
            self.d.page(ctx, "account.html", exc.status, nav=self.nav, error=message)
            return
        ctx.audit("user.password_changed", ctx.user.username)
        ctx.resp.unset_cookie(sessions.COOKIE, path="/")
        redirect(ctx.resp, "/login", done="password")


class Users(ListPage):
    nav = "users"
    admin_only = True

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        rows = [users.user_to_dict(u) for u in User.select().order_by(User.username)]
        values.setdefault("draft", {"username": "", "admin": False})
        self.d.page(ctx, "users.html", status, nav=self.nav, users=rows, **values)

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        username, admin = form.get("username").strip(), form.get("admin") == "on"
        draft = {"username": username, "admin": admin}
        try:
            if form.get("password") != form.get("password_again"):
                raise UserError("the two passwords differ")
            assert self.gw.passwords is not None, "Gateway.__post_init__ always sets passwords"
            user = users.create_user(self.gw.passwords, username, form.get("password"), admin=admin)
        except UserError as exc:
            self.show(ctx, 400, error=str(exc), draft=draft)
            return
        ctx.audit("user.created", user.username, is_admin=bool(user.is_admin))
        redirect(ctx.resp, "/dashboard/users", done="user_created")


class DisableUser(Page):
    admin_only = True

    @page
    def on_post(self, ctx: Ctx, username: str) -> None:
        if username == ctx.user.username:
            raise BadRequest("You cannot disable your own account", error="Invalid parameter")
        try:
            users.disable_user(username, self.gw.clock())
        except UserError:
            raise NotFound("User not found", error="User not found") from None
        ctx.audit("user.disabled", username)
        redirect(ctx.resp, "/dashboard/users", done="user_disabled")
