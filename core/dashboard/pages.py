"""The page machinery: templates, headers, forms, the session check and redirects.

Dashboard resources take no part in the API's authentication middleware (``auth = None``):
each responder calls :func:`flashfusion.core.web.authentication.session_user` itself — the same rules as the
management API, with the CSRF token also accepted from the form field ``csrf_token`` — so
that a visitor who is not logged in is sent to ``/login`` rather than answered with JSON.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import falcon
import jinja2

from flashfusion.core.access import audit, sessions
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.dashboard import timefmt
from flashfusion.core.dashboard.visibility import Access, access_for
from flashfusion.core.errors import ApiError, Forbidden, PayloadTooLarge, Unauthorized
from flashfusion.core.gateway import Gateway
from flashfusion.core.storage.models import User
from flashfusion.core.web.authentication import session_user
from flashfusion.core.web.parsing import read_body, string_problem

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
DASHBOARD_PREFIXES = ("/dashboard", "/login", "/logout", "/static/dashboard")
SAFE_NEXT = re.compile(r"^/dashboard(?:/[A-Za-z0-9_.\-/]*)?(?:\?[A-Za-z0-9_.\-=&%]*)?$")

#: Fixed messages for ``?done=`` after a redirect (never text from the URL itself).
DONE = {
    "logout": "You are logged out.",
    "password": "Password changed. Every session of yours has ended; log in with the new password.",
    "revoked": "The key is revoked: it is refused at once.",
    "cancel": "Cancellation requested; the worker stops the run upstream.",
    "user_created": "User created.",
    "user_disabled": "User disabled: their sessions ended and their keys stop working.",
    "ping": "Test ping queued; it appears in the delivery log below.",
    "redeliver": "Redelivery queued.",
    "enabled": "Endpoint enabled.",
    "disabled": "Endpoint disabled.",
    "deleted": "Endpoint deleted.",
}


class HeadersMiddleware:
    """The Content-Security-Policy and friends on every dashboard response (pages, redirects,
    errors, static files). The API's own security headers come from ``RequestContext``."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req.path == "/" or req.path.startswith(DASHBOARD_PREFIXES):
            for name, value in PAGE_HEADERS.items():
                resp.set_header(name, value)


# --- formatting ---------------------------------------------------------------------------


def http_link(url: Any) -> str:
    """Only http(s) addresses from upstream become links (never ``javascript:`` and the like)."""
    return url if isinstance(url, str) and re.match(r"^https?://", url, re.I) else ""


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(link=http_link)
    timefmt.install(env)
    env.globals["static_version"] = secrets.token_hex(4)
    return env


# --- forms --------------------------------------------------------------------------------


class Form:
    """An ``application/x-www-form-urlencoded`` body, read with a size bound."""

    def __init__(self, values: dict[str, list[str]] | None = None) -> None:
        self.values = values or {}

    @classmethod
    def read(cls, req: falcon.Request, max_bytes: int) -> Form:
        media = (req.content_type or "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return cls()
        try:
            raw = read_body(req, max_bytes, too_large="The form")
        except PayloadTooLarge as exc:
            raise BadForm(exc.message) from None
        try:
            text = raw.decode("utf-8")
            # strict: a percent-encoded byte sequence that is not UTF-8 (%ED%A0%80) is refused,
            # not turned into U+FFFD
            values = parse_qs(text, keep_blank_values=True, max_num_fields=500, errors="strict")
        except UnicodeDecodeError:
            raise BadForm("The form is not UTF-8") from None
        except ValueError:
            raise BadForm("The form has too many fields") from None
        for key, vals in values.items():
            problem = next(filter(None, map(string_problem, [key, *vals])), None)
            if problem:
                raise BadForm(problem)  # PostgreSQL cannot store NUL; refused alike everywhere
        return cls(values)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def getall(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v != ""]


class BadForm(ApiError):
    status = 400
    error = "Bad form"


# --- requests -----------------------------------------------------------------------------


@dataclass
class Ctx:
    req: falcon.Request
    resp: falcon.Response
    user: User
    access: Access
    csrf: str
    form: Form = field(default_factory=Form)

    def audit(self, action: str, target: str, **detail: Any) -> None:
        """Record ``action`` on ``target`` in the audit log, done by this page's user from this request."""
        audit.record(action, self.user.username, target=target, client_addr=client_addr(self.req), **detail)


def redirect(resp: falcon.Response, location: str, **params: str) -> None:
    if params:
        location += ("&" if "?" in location else "?") + urlencode(params)
    resp.status = falcon.HTTP_303
    resp.location = location
    resp.content_type = "text/plain; charset=utf-8"
    resp.text = ""


class Dashboard:
    """Shared state of every page: the gateway, the template environment."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.env = make_env()
        self.webhooks = gateway.webhooks

    def render(self, resp: falcon.Response, template: str, status: int = 200, **values: Any) -> None:
        text = self.env.get_template(template).render(**values)
        resp.status = falcon.code_to_http_status(status)
        resp.content_type = "text/html; charset=utf-8"
        resp.text = text

    def page(self, ctx: Ctx, template: str, status: int = 200, **values: Any) -> None:
        done = DONE.get(ctx.req.get_param("done") or "")
        values.setdefault("flash", done)
        values.setdefault("error", None)
        self.render(
            ctx.resp, template, status, user=ctx.user, access=ctx.access, csrf=ctx.csrf, path=ctx.req.path, **values
        )


class Page:
    """Base of every logged-in page. ``admin_only`` pages answer 403 to everyone else."""

    auth = None  # the session is checked by ``@page``, which redirects to /login instead of a JSON 401
    admin_only = False
    nav = ""

    # A live page polls for its changing part (``?fragment=1``): that part's template.
    full_template = ""
    fragment_template = ""

    def __init__(self, dash: Dashboard) -> None:
        self.d = dash
        self.gw = dash.gw

    def render_live(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        """Render the whole page, or only its changing part when the page polls for it."""
        template = self.fragment_template if ctx.req.get_param("fragment") else self.full_template
        self.d.page(ctx, template, status, nav=self.nav, **values)


def page(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a responder: read the form, check the session (and CSRF on POST), build the
    caller's ``Access``, render errors as pages."""

    @functools.wraps(fn)
    def responder(self: Page, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        try:
            form = Form.read(req, self.gw.config.server.max_body_bytes) if req.method == "POST" else Form()
            user = session_user(req, self.gw.clock(), self.gw.config, form_token=form.get("csrf_token") or None)
        except Unauthorized:
            target = req.relative_uri if req.method == "GET" and SAFE_NEXT.match(req.relative_uri) else None
            redirect(resp, "/login", **({"next": target} if target else {}))
            return
        except ApiError as exc:
            self.d.render(resp, "error.html", exc.status, user=None, title=exc.error, message=exc.message)
            return
        token = req.cookies.get(sessions.COOKIE) or ""
        ctx = Ctx(
            req=req,
            resp=resp,
            user=user,
            csrf=sessions.csrf_for(token),
            form=form,
            access=access_for(user, list(self.gw.config.pipelines), self.gw.clock()),
        )
        try:
            if self.admin_only and not user.is_admin:
                raise Forbidden("Only administrators may see this page", error="Administrators only")
            fn(self, ctx, **params)
        except ApiError as exc:
            self.d.page(ctx, "error.html", exc.status, title=exc.error, message=exc.message)

    return responder


class ListPage(Page):
    """A page that lists things, often with a form to add one: GET shows the list, and a
    failed POST shows it again through ``show`` with the form's values and error."""

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        raise NotImplementedError

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.show(ctx)
