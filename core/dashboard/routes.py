"""The dashboard's pages. Each calls the service functions the API and the CLI use
(``apikeys``, ``users``, ``runs``, ``start_run``, ``WebhookService``) — never HTTP."""

from __future__ import annotations

import hmac
import mimetypes
import secrets
from datetime import datetime, timedelta
from typing import Any

import falcon

from flashfusion.core.access import apikeys

from flashfusion.core.access import audit

from flashfusion.core.runs import transitions as runs

from flashfusion.core.access import sessions

from flashfusion.core.access import users
from flashfusion.core.dashboard.pages import (SAFE_NEXT, STATIC, BadForm, Ctx, Dashboard, Form, HeadersMiddleware, Page,
                                              median, page, parse_time, redirect)
from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.storage.db import from_db_time, utcnow
from flashfusion.core.errors import ApiError, BadRequest, Forbidden, NotFound
from flashfusion.core.gateway import Gateway
from flashfusion.core.storage.models import AuditEvent, Event, Run, User, WebhookDelivery, WebhookEndpoint
from flashfusion.core.access.logins import check_password, client_addr, cookie_secure, start_session
from flashfusion.core.web.resources.pipelines import (INPUT_NAME, check_ref, decode_cursor, encode_cursor, parse_inputs,
                                                  start_run)
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.access.users import MAX_PASSWORD_BYTES, UserError
from flashfusion.core.webhooks.endpoints import EVENT_TYPES, Caller, endpoint_to_dict

LOGIN_COOKIE = "ff_login"   # double-submit token against login CSRF (a form posted from elsewhere)
STATS_WINDOW = 20


# --- login and logout ------------------------------------------------------------------------

class Login:
    auth = None

    def __init__(self, dash: Dashboard) -> None:
        self.d = dash
        self.gw = dash.gw

    def _form(self, req: falcon.Request, resp: falcon.Response, status: int = 200, error: str | None = None,
              username: str = "") -> None:
        nonce = secrets.token_urlsafe(24)
        resp.set_cookie(LOGIN_COOKIE, nonce, http_only=True, secure=cookie_secure(self.gw), same_site="Strict",
                        path="/login", max_age=3600)
        nxt = req.get_param("next") or ""
        flash = {"logout": "You are logged out.",
                 "password": "Password changed. Log in with the new password."}.get(req.get_param("done") or "")
        self.d.render(resp, "login.html", status, user=None, login_token=nonce, error=error, flash=flash,
                      next=nxt if SAFE_NEXT.match(nxt) else "", username=username)

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
        if not nonce or not hmac.compare_digest(nonce, form.get("login_token")):
            self._form(req, resp, 403, "The login form expired; please try again.")
            return
        username = form.get("username").strip()[:100]
        password = form.get("password")
        if not username or not password or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            self._form(req, resp, 400, "Enter your username and password.", username)
            return
        try:
            user = check_password(self.gw, req, username, password)
        except ApiError as exc:
            self._form(req, resp, exc.status, exc.message, username)
            for name, value in exc.headers.items():
                resp.set_header(name, value)
            return
        start_session(self.gw, req, resp, user)
        resp.unset_cookie(LOGIN_COOKIE, path="/login")
        nxt = form.get("next")
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


# --- pipelines and runs ------------------------------------------------------------------------

def seconds_of(run: Run, now: datetime | None = None) -> float | None:
    """The run's duration to the sub-second (the API's ``duration_seconds`` is whole seconds)."""
    start = from_db_time(run.started_at)
    if start is None:
        return None
    end = from_db_time(run.finished_at) or now or utcnow()
    return max(0.0, (end - start).total_seconds())


def run_view(run: Run, now: datetime | None = None) -> dict[str, Any]:
    out = run_to_dict(run)
    out["active"] = run.phase != "completed"
    out["duration"] = seconds_of(run, now)
    return out


def pipeline_stats(pipeline_id: str) -> dict[str, Any]:
    recent = list(Run.select().where(Run.pipeline_id == pipeline_id)
                  .order_by(Run.created_at.desc(), Run.id.desc()).limit(STATS_WINDOW))
    finished = [r for r in recent if r.phase == "completed"]
    durations = [d for d in (seconds_of(r) for r in finished) if d is not None]
    successes = sum(1 for r in finished if r.status == "success")
    chart = chart_bars([r for r in reversed(finished) if r.started_at is not None])
    return {"recent": [run_view(r) for r in recent[:5]], "count": len(recent), "finished": len(finished),
            "success_rate": round(100 * successes / len(finished)) if finished else None,
            "median": median([float(d) for d in durations]), "chart": chart}


def chart_bars(finished: list[Run], width: int = 240, height: int = 48) -> dict[str, Any]:
    """Bars for a small inline SVG: one per finished run, oldest left, height by duration."""
    durations = [seconds_of(r) or 0.0 for r in finished]
    top = max(durations, default=0) or 1
    slot = width / STATS_WINDOW
    bars = []
    for i, (run, d) in enumerate(zip(finished, durations)):
        h = max(2.0, (height - 2) * d / top)
        bars.append({"x": round(i * slot + 1, 1), "y": round(height - h, 1), "w": round(slot - 2, 1),
                     "h": round(h, 1), "status": run.status, "run_id": run.id, "duration": d})
    return {"bars": bars, "width": width, "height": height, "max": top}


def parse_input_lines(text: str) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not INPUT_NAME.match(name):
            raise BadRequest(f"Input line {number} must look like NAME=value (NAME: letters, digits, _ and -)",
                             error="Invalid parameter")
        inputs[name] = value
    return parse_inputs(inputs)


class Pipelines(Page):
    nav = "pipelines"

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        rows = []
        for pid in ctx.access.visible():
            p = self.gw.config.pipelines[pid]
            rows.append({"p": p, "config": ctx.access.may("read_config", pid),
                         "runs": ctx.access.may("read_runs", pid),
                         "trigger": ctx.access.may("trigger_pipeline", pid),
                         "stats": pipeline_stats(pid) if ctx.access.may("read_runs", pid) else None})
        self.d.page(ctx, "pipelines.html", status, nav=self.nav, rows=rows, **values)

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.show(ctx)


class TriggerPipeline(Page):
    @page
    def on_post(self, ctx: Ctx, pipeline_id: str) -> None:
        if not ctx.access.may("trigger_pipeline", pipeline_id) or pipeline_id not in self.gw.config.pipelines:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        pipeline = self.gw.pipeline(pipeline_id)
        try:
            ref = check_ref(ctx.form.get("branch").strip()[:255] or pipeline.branch)
            inputs = parse_input_lines(ctx.form.get("inputs"))
            run = start_run(self.gw, pipeline, ref, inputs, None)
        except ApiError as exc:
            Pipelines(self.d).show(ctx, exc.status, error=f"{pipeline_id}: {exc.message}")
            return
        audit.record("run.triggered", ctx.user.username, target=run.id, client_addr=client_addr(ctx.req),
                     pipeline_id=pipeline_id, branch=ref)
        redirect(ctx.resp, f"/dashboard/runs/{run.id}")


class Runs(Page):
    nav = "runs"

    @page
    def on_get(self, ctx: Ctx) -> None:
        req = ctx.req
        readable = ctx.access.allowed("read_runs")
        pipeline_id = req.get_param("pipeline") or ""
        status = req.get_param("status") or ""
        branch = (req.get_param("branch") or "")[:255]
        q = Run.select()
        if pipeline_id:
            if pipeline_id not in readable:
                raise NotFound("Pipeline not found", error="Pipeline not found")
            q = q.where(Run.pipeline_id == pipeline_id)
        else:
            q = q.where(Run.pipeline_id.in_(readable or [""]))
        if status in ("running", "success", "failed"):
            q = q.where(Run.status == status)
        else:
            status = ""
        if branch:
            q = q.where(Run.ref == branch)
        cursor = req.get_param("cursor")
        if cursor:
            created, last_id = decode_cursor(cursor[:200])
            q = q.where((Run.created_at < created) | ((Run.created_at == created) & (Run.id < last_id)))
        page_size = 50
        rows = list(q.order_by(Run.created_at.desc(), Run.id.desc()).limit(page_size + 1))
        more = len(rows) > page_size
        rows = rows[:page_size]
        now = utcnow()
        views = [run_view(r, now) for r in rows]
        filters = {"pipeline": pipeline_id, "status": status, "branch": branch}
        template = "runs_table.html" if req.get_param("fragment") else "runs.html"
        self.d.page(ctx, template, nav=self.nav, runs=views, readable=readable, filters=filters,
                    active=any(v["active"] for v in views),
                    next_cursor=encode_cursor(rows[-1]) if more else None, query=req.query_string)


def visible_run(ctx: Ctx, run_id: str) -> Run:
    run = Run.get_or_none(Run.id == run_id[:64])
    if run is None or not ctx.access.may("read_runs", run.pipeline_id):
        raise NotFound("Run not found", error="Run not found")
    return run


def timeline(run: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Steps as bars on one time axis: from the run's start to its end (or now)."""
    starts = [parse_time(s.get("started_at")) for s in run["steps"]]
    ends = [parse_time(s.get("completed_at")) for s in run["steps"]]
    t0 = parse_time(run["started_at"]) or min([s for s in starts if s], default=None) or parse_time(run["created_at"])
    t1 = parse_time(run["finished_at"]) or now
    t1 = max([t1] + [e for e in ends if e])
    span = max((t1 - t0).total_seconds(), 0.05)
    rows = []
    for step, start, end in zip(run["steps"], starts, ends):
        bar = None
        if start is not None:
            stop = end or (now if step.get("status") == "running" else start)
            x = max(0.0, (start - t0).total_seconds()) / span * 1000
            w = max(4.0, (stop - start).total_seconds() / span * 1000)
            bar = {"x": round(min(x, 996), 1), "w": round(min(w, 1000 - min(x, 996)), 1)}
        seconds = step.get("duration_seconds")
        if seconds is None and start is not None and end is not None:
            seconds = (end - start).total_seconds()
        rows.append({"step": step, "bar": bar, "seconds": seconds, "offset": (start - t0).total_seconds() if start else None})
    ticks = [{"x": round(i * 250), "label": i * span / 4} for i in range(5)]
    return {"rows": rows, "span": span, "ticks": ticks}


class RunPage(Page):
    nav = "runs"

    @page
    def on_get(self, ctx: Ctx, run_id: str) -> None:
        run = visible_run(ctx, run_id)
        now = utcnow()
        view = run_view(run, now)
        events = list(Event.select().where(Event.run_id == run.id).order_by(Event.created_at, Event.id))
        deliveries: dict[str, list[dict[str, Any]]] = {}
        if events:
            caller = Caller(user=ctx.user)
            endpoints = {ep.id: ep for ep in WebhookEndpoint.select() if caller.may_see(ep)}
            for d in WebhookDelivery.select().where(WebhookDelivery.event_id.in_([e.id for e in events])):
                if d.endpoint_id in endpoints:
                    deliveries.setdefault(d.event_id, []).append(
                        {"url": endpoints[d.endpoint_id].url, "webhook_id": d.endpoint_id, "status": d.status,
                         "status_code": d.last_status_code, "latency_ms": d.last_latency_ms})
        template = "run_body.html" if ctx.req.get_param("fragment") else "run.html"
        self.d.page(ctx, template, nav=self.nav, run=view, timeline=timeline(view, now),
                    events=events, deliveries=deliveries, pipeline=self.gw.config.pipelines.get(run.pipeline_id),
                    may_cancel=ctx.access.may("trigger_pipeline", run.pipeline_id) and view["active"],
                    may_trigger=ctx.access.may("trigger_pipeline", run.pipeline_id), run_inputs=run.inputs)


class CancelRun(Page):
    @page
    def on_post(self, ctx: Ctx, run_id: str) -> None:
        run = visible_run(ctx, run_id)
        if not ctx.access.may("trigger_pipeline", run.pipeline_id):
            raise Forbidden("Cancelling needs the trigger_pipeline permission for this pipeline",
                            error="Insufficient permissions")
        runs.request_cancel(run.id)
        audit.record("run.cancel_requested", ctx.user.username, target=run.id, client_addr=client_addr(ctx.req))
        redirect(ctx.resp, f"/dashboard/runs/{run.id}", done="cancel")


# --- API keys -----------------------------------------------------------------------------------

class Keys(Page):
    nav = "keys"

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        owners = dict(User.select(User.id, User.username).tuples()) if ctx.user.is_admin else None
        keys = [apikeys.key_to_dict(row, owners) for row in apikeys.visible_keys(ctx.user)]
        now = self.gw.clock()
        for k in keys:
            expires = parse_time(k["expires_at"])
            k["expired"] = expires is not None and expires <= now
        keys.sort(key=lambda k: (k["revoked"] or k["expired"], k["created_at"] or ""), reverse=False)
        values.setdefault("created", None)
        values.setdefault("draft", {"name": "", "permissions": ["trigger_pipeline", "read_runs"], "pipelines": [],
                                    "days": apikeys.DEFAULT_EXPIRY_DAYS})
        self.d.page(ctx, "keys.html", status, nav=self.nav, keys=keys, permissions=PERMISSIONS,
                    pipelines=list(self.gw.config.pipelines), max_days=apikeys.MAX_EXPIRY_DAYS, **values)

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.show(ctx)

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        draft = {"name": form.get("name"), "permissions": form.getall("permissions"),
                 "pipelines": form.getall("pipelines"), "days": form.get("expires_in_days")}
        try:
            try:
                days = int(form.get("expires_in_days") or apikeys.DEFAULT_EXPIRY_DAYS)
            except ValueError:
                raise apikeys.KeyRequestError("'expires_in_days' must be a whole number of days") from None
            created = apikeys.create_key(draft["name"], draft["permissions"], draft["pipelines"], days,
                                         known_pipelines=self.gw.config.pipelines, owner=ctx.user,
                                         actor=ctx.user.username, client_addr=client_addr(ctx.req),
                                         now=self.gw.clock())
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
                rotated = apikeys.rotate_key(row, grace, actor=ctx.user.username, client_addr=addr,
                                             now=self.gw.clock())
            except apikeys.KeyRequestError as exc:
                Keys(self.d).show(ctx, 400, error=str(exc))
                return
            Keys(self.d).show(ctx, created=dict(rotated, action="rotated"))
        else:
            raise NotFound("No such action", error="Not found")


# --- webhooks -----------------------------------------------------------------------------------

class Webhooks(Page):
    nav = "webhooks"

    def choices(self, ctx: Ctx) -> list[str]:
        return list(self.gw.config.pipelines) if ctx.user.is_admin else ctx.access.visible()

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        values.setdefault("created", None)
        values.setdefault("draft", {"url": "", "description": "", "events": [], "pipelines": []})
        self.d.page(ctx, "webhooks.html", status, nav=self.nav, hooks=self.d.webhooks.list(Caller(user=ctx.user)),
                    event_types=EVENT_TYPES, pipelines=self.choices(ctx), **values)

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.show(ctx)

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        draft = {"url": form.get("url").strip(), "description": form.get("description"),
                 "events": form.getall("events"), "pipelines": form.getall("pipelines")}
        try:
            pipelines = self.scope(ctx, draft["pipelines"])
            created = self.d.webhooks.create(Caller(user=ctx.user), {
                "url": draft["url"], "description": draft["description"], "events": draft["events"],
                "pipeline_ids": pipelines}, client_addr=client_addr(ctx.req))
        except ApiError as exc:
            self.show(ctx, exc.status, error=exc.message, draft=draft)
            return
        self.show(ctx, created={"id": created["id"], "secret": created["secret"], "url": draft["url"],
                                "action": "created"})

    def scope(self, ctx: Ctx, chosen: list[str]) -> list[str]:
        """People who see only some pipelines subscribe only to those (none chosen = all they see)."""
        if ctx.user.is_admin:
            return chosen
        visible = ctx.access.visible()
        if set(visible) == set(self.gw.config.pipelines):
            return chosen
        if not visible:
            raise Forbidden("Your API keys give you no pipeline to subscribe to; create a key first",
                            error="No pipelines")
        if any(p not in visible for p in chosen):
            raise NotFound("Pipeline not found", error="Pipeline not found")
        return chosen or visible


class WebhookPage(Page):
    nav = "webhooks"

    def show(self, ctx: Ctx, hook_id: str, status: int = 200, **values: Any) -> None:
        caller = Caller(user=ctx.user)
        ep = self.d.webhooks.visible(caller, hook_id)
        log = self.d.webhooks.deliveries(caller, ep.id, status=None, limit=50, cursor=None)["deliveries"]
        values.setdefault("secret", None)
        template = "deliveries_table.html" if ctx.req.get_param("fragment") else "webhook.html"
        self.d.page(ctx, template, status, nav=self.nav, hook=endpoint_to_dict(ep, self.gw.clock()),
                    deliveries=log, active=any(d["status"] == "pending" for d in log), **values)

    @page
    def on_get(self, ctx: Ctx, hook_id: str) -> None:
        self.show(ctx, hook_id)


class WebhookAction(Page):
    nav = "webhooks"

    @page
    def on_post(self, ctx: Ctx, hook_id: str, action: str) -> None:
        caller = Caller(user=ctx.user)
        service = self.d.webhooks
        addr = client_addr(ctx.req)
        back = f"/dashboard/webhooks/{hook_id}"
        if action == "rotate":
            rotated = service.rotate(caller, hook_id, client_addr=addr)
            WebhookPage(self.d).show(ctx, hook_id, secret={"secret": rotated["secret"], "action": "rotated",
                                                           "previous_until": rotated["previous_secret_expires_at"]})
        elif action == "test":
            service.test(caller, hook_id)
            redirect(ctx.resp, back, done="ping")
        elif action in ("enable", "disable"):
            service.update(caller, {"id": hook_id, "enabled": action == "enable"}, client_addr=addr)
            redirect(ctx.resp, back, done=action + "d")
        elif action == "delete":
            service.delete(caller, hook_id, client_addr=addr)
            redirect(ctx.resp, "/dashboard/webhooks", done="deleted")
        elif action == "redeliver":
            delivery = WebhookDelivery.get_or_none(WebhookDelivery.id == ctx.form.get("delivery_id")[:40])
            if delivery is None or delivery.endpoint_id != hook_id:
                raise NotFound("Delivery not found", error="Delivery not found")
            service.redeliver(caller, delivery.id)
            redirect(ctx.resp, back, done="redeliver")
        else:
            raise NotFound("No such action", error="Not found")


# --- people -------------------------------------------------------------------------------------

class AuditLog(Page):
    nav = "audit"
    admin_only = True

    @page
    def on_get(self, ctx: Ctx) -> None:
        action = (ctx.req.get_param("action") or "")[:64]
        actions = [a for (a,) in AuditEvent.select(AuditEvent.action).distinct().order_by(AuditEvent.action).tuples()]
        q = AuditEvent.select().order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(200)
        if action:
            q = q.where(AuditEvent.action == action)
        self.d.page(ctx, "audit.html", nav=self.nav, events=[audit.event_to_dict(e) for e in q], actions=actions,
                    action=action)


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
                users.set_password(self.gw.passwords, ctx.user.username, new)
            except UserError as exc:
                raise BadRequest(str(exc), error="Invalid parameter") from None
        except ApiError as exc:
            message = "Wrong current password" if exc.status == 401 else exc.message
            self.d.page(ctx, "account.html", exc.status, nav=self.nav, error=message)
            return
        audit.record("user.password_changed", ctx.user.username, target=ctx.user.username,
                     client_addr=client_addr(ctx.req))
        ctx.resp.unset_cookie(sessions.COOKIE, path="/")
        redirect(ctx.resp, "/login", done="password")


class Users(Page):
    nav = "users"
    admin_only = True

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        rows = [users.user_to_dict(u) for u in User.select().order_by(User.username)]
        values.setdefault("draft", {"username": "", "admin": False})
        self.d.page(ctx, "users.html", status, nav=self.nav, users=rows, **values)

    @page
    def on_get(self, ctx: Ctx) -> None:
        self.show(ctx)

    @page
    def on_post(self, ctx: Ctx) -> None:
        form = ctx.form
        draft = {"username": form.get("username").strip(), "admin": form.get("admin") == "on"}
        try:
            if form.get("password") != form.get("password_again"):
                raise UserError("the two passwords differ")
            user = users.create_user(self.gw.passwords, draft["username"], form.get("password"), admin=draft["admin"])
        except UserError as exc:
            self.show(ctx, 400, error=str(exc), draft=draft)
            return
        audit.record("user.created", ctx.user.username, target=user.username, client_addr=client_addr(ctx.req),
                     is_admin=bool(user.is_admin))
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
        audit.record("user.disabled", ctx.user.username, target=username, client_addr=client_addr(ctx.req))
        redirect(ctx.resp, "/dashboard/users", done="user_disabled")


# --- static files -------------------------------------------------------------------------------

class Static:
    """The dashboard's own CSS, JavaScript and icon: a fixed list read at start-up."""

    auth = None
    TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

    def __init__(self) -> None:
        self.files = {p.name: (p.read_bytes(), self.TYPES.get(p.suffix) or mimetypes.guess_type(p.name)[0]
                               or "application/octet-stream")
                      for p in STATIC.iterdir() if p.is_file()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        found = self.files.get(name)
        if found is None:
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = found
        resp.set_header("Cache-Control", "private, max-age=300")


def add_routes(app: falcon.App, gateway: Gateway) -> None:
    dash = Dashboard(gateway)
    app.add_middleware(HeadersMiddleware())
    app.add_route("/", Home())
    app.add_route("/login", Login(dash))
    app.add_route("/logout", Logout(dash))
    app.add_route("/dashboard", Home())
    app.add_route("/dashboard/pipelines", Pipelines(dash))
    app.add_route("/dashboard/pipelines/{pipeline_id}/trigger", TriggerPipeline(dash))
    app.add_route("/dashboard/runs", Runs(dash))
    app.add_route("/dashboard/runs/{run_id}", RunPage(dash))
    app.add_route("/dashboard/runs/{run_id}/cancel", CancelRun(dash))
    app.add_route("/dashboard/keys", Keys(dash))
    app.add_route("/dashboard/keys/{key_id}/{action}", KeyAction(dash))
    app.add_route("/dashboard/webhooks", Webhooks(dash))
    app.add_route("/dashboard/webhooks/{hook_id}", WebhookPage(dash))
    app.add_route("/dashboard/webhooks/{hook_id}/{action}", WebhookAction(dash))
    app.add_route("/dashboard/audit", AuditLog(dash))
    app.add_route("/dashboard/account", Account(dash))
    app.add_route("/dashboard/users", Users(dash))
    app.add_route("/dashboard/users/{username}/disable", DisableUser(dash))
    app.add_route("/static/dashboard/{name}", Static())
