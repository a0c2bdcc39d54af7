"""The pipelines page (with each pipeline's recent runs and chart), triggering from it, the runs
list, a run's page and cancelling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flashfusion.core.access import audit
from flashfusion.core.access.clientaddr import client_addr
from flashfusion.core.dashboard.pages import (
    Ctx,
    ListPage,
    Page,
    median,
    page,
    parse_time,
    redirect,
)
from flashfusion.core.errors import ApiError, BadRequest, Forbidden, NotFound
from flashfusion.core.hooks import activity
from flashfusion.core.runs import service, triggers
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.storage.db import from_db_time, utcnow
from flashfusion.core.storage.models import Event, Run, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.callers import Caller
from flashfusion.plugins import ProviderError

STATS_WINDOW = 20


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
    out["started_by"] = triggers.describe(out["trigger"])
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
    for i, (run, d) in enumerate(zip(finished, durations, strict=True)):
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
        if not sep or not service.INPUT_NAME.match(name):
            raise BadRequest(f"Input line {number} must look like NAME=value (NAME: letters, digits, _ and -)",
                             error="Invalid parameter")
        inputs[name] = value
    return service.parse_inputs(inputs)


class Pipelines(ListPage):
    nav = "pipelines"

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        rows = []
        hooks = {e.provider: e.describe(self.gw.clock()) for e in activity.report(self.gw.providers.instances)}
        for pid in ctx.access.visible():
            p = self.gw.config.pipelines[pid]
            rows.append({"p": p, "config": ctx.access.may("read_config", pid), "hooks": hooks.get(p.provider),
                         "runs": ctx.access.may("read_runs", pid),
                         "trigger": ctx.access.may("trigger_pipeline", pid),
                         "stats": pipeline_stats(pid) if ctx.access.may("read_runs", pid) else None})
        self.d.page(ctx, "pipelines.html", status, nav=self.nav, rows=rows, **values)


class TriggerPipeline(Page):
    @page
    def on_post(self, ctx: Ctx, pipeline_id: str) -> None:
        if not ctx.access.may("trigger_pipeline", pipeline_id) or pipeline_id not in self.gw.config.pipelines:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        pipeline = self.gw.pipeline(pipeline_id)
        try:
            ref = service.check_ref(ctx.form.get("branch").strip()[:255] or pipeline.branch)
            inputs = parse_input_lines(ctx.form.get("inputs"))
            run = service.start_run(self.gw, pipeline, ref, inputs, None, triggers.dashboard_trigger(ctx.user.username))
        except ApiError as exc:
            Pipelines(self.d).show(ctx, exc.status, error=f"{pipeline_id}: {exc.message}")
            return
        except ProviderError as exc:
            Pipelines(self.d).show(ctx, exc.http_status, error=f"{pipeline_id}: {exc.message}")
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
        if pipeline_id and pipeline_id not in readable:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        if status not in service.STATUSES:
            status = ""
        found = service.list_runs(pipelines=[pipeline_id] if pipeline_id else readable, status=status or None,
                                  branch=branch, cursor=(req.get_param("cursor") or "")[:200] or None, limit=50)
        rows = found.runs
        now = utcnow()
        views = [run_view(r, now) for r in rows]
        filters = {"pipeline": pipeline_id, "status": status, "branch": branch}
        template = "runs_table.html" if req.get_param("fragment") else "runs.html"
        self.d.page(ctx, template, nav=self.nav, runs=views, readable=readable, filters=filters,
                    active=any(v["active"] for v in views),
                    next_cursor=found.next_cursor, query=req.query_string)


def visible_run(ctx: Ctx, run_id: str) -> Run:
    return service.find_run(run_id, ctx.access.allowed("read_runs"))


def timeline(run: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Steps as bars on one time axis: from the run's start to its end (or now)."""
    starts = [parse_time(s.get("started_at")) for s in run["steps"]]
    ends = [parse_time(s.get("completed_at")) for s in run["steps"]]
    t0 = parse_time(run["started_at"]) or min([s for s in starts if s], default=None) or parse_time(run["created_at"])
    assert t0 is not None, "every run has created_at"
    t1 = parse_time(run["finished_at"]) or now
    t1 = max([t1] + [e for e in ends if e])
    span = max((t1 - t0).total_seconds(), 0.05)
    rows = []
    for step, start, end in zip(run["steps"], starts, ends, strict=True):
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
        service.cancel(run)
        audit.record("run.cancel_requested", ctx.user.username, target=run.id, client_addr=client_addr(ctx.req))
        redirect(ctx.resp, f"/dashboard/runs/{run.id}", done="cancel")
