"""Logging in and out of the dashboard (the same rules as ``POST /functions/login``), and the
home redirect."""

from __future__ import annotations

import hmac
import secrets

import falcon

from flashfusion.core.access import sessions
from flashfusion.core.access.logins import check_password, cookie_secure, start_session
from flashfusion.core.access.users import MAX_PASSWORD_BYTES
from flashfusion.core.dashboard.pages import (
    SAFE_NEXT,
    BadForm,
    Ctx,
    Dashboard,
    Form,
    Page,
    page,
    redirect,
)
from flashfusion.core.errors import ApiError

LOGIN_COOKIE = "ff_login"  # double-submit token against login CSRF (a form posted from elsewhere)


class Login:
    auth = None

    def __init__(self, dash: Dashboard) -> None:
        self.d = dash
        self.gw = dash.gw

    def _form(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        status: int = 200,
        error: str | None = None,
        username: str = "",
        nxt: str | None = None,
    ) -> None:
        """The login page; ``nxt`` is the page to go to after logging in (a failed post
        keeps the one it carried)."""
        nonce = secrets.token_urlsafe(24)
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            http_only=True,
            secure=cookie_secure(self.gw),
            same_site="Strict",
            path="/login",
            max_age=3600,
        )
        nxt = (req.get_param("next") or "") if nxt is None else nxt
        flash = {"logout": "You are logged out.", "password": "Password changed. Log in with the new password."}.get(
            req.get_param("done") or ""
        )
        self.d.render(
            resp,
            "login.html",
            status,
            user=None,
            login_token=nonce,
            error=error,
            flash=flash,
            next=nxt if SAFE_NEXT.match(nxt) else "",
            username=username,
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            sessions.resume(req.cookies.get(sessions.COOKIE), self.gw.clock(), self.gw.config.auth)
        except ApiError:
            self._form(req, resp)
            return
        redirect(resp, "/dashboard")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if (req.get_header("Sec-Fetch-Site") or "").lower() == "cross-site":
            self._form(req, resp, 403, "Cross-site logins are refused.")
            return
        try:
            form = Form.read(req, self.gw.config.server.max_body_bytes)
        except BadForm as exc:
            self._form(req, resp, 400, exc.message)
            return
        nonce = req.cookies.get(LOGIN_COOKIE) or ""
        nxt = form.get("next")
        if not nonce or not hmac.compare_digest(nonce, form.get("login_token")):
            self._form(req, resp, 403, "The login form expired; please try again.", nxt=nxt)
            return
        username = form.get("username").strip()[:100]
        password = form.get("password")
        if not username or not password or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            self._form(req, resp, 400, "Enter your username and password.", username, nxt)
            return
        try:
            user = check_password(self.gw, req, username, password)
        except ApiError as exc:
            self._form(req, resp, exc.status, exc.message, username, nxt)
            for name, value in exc.headers.items():
                resp.set_header(name, value)
            return
        start_session(self.gw, req, resp, user)
        resp.unset_cookie(LOGIN_COOKIE, path="/login")
        redirect(resp, nxt if SAFE_NEXT.match(nxt) else "/dashboard")


class Logout(Page):
    @page
    def on_post(self, ctx: Ctx) -> None:
        sessions.end(ctx.req.cookies.get(sessions.COOKIE))
        ctx.resp.unset_cookie(sessions.COOKIE, path="/")
        redirect(ctx.resp, "/login", done="logout")


class Home:
    auth = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        redirect(resp, "/dashboard/pipelines")
