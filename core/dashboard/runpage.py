"""A run's page: what started it, its commit and branch (linked to the provider's web host),
its inputs (secret-looking values masked), the steps on one time axis grouped by stage with
the failed step's log open, results, the events sent; and cancelling it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flashfusion.core.dashboard import runfacts
from flashfusion.core.dashboard.pages import Ctx, Page, page, redirect
from flashfusion.core.dashboard.pipelines import run_view
from flashfusion.core.dashboard.timefmt import parse_time
from flashfusion.core.errors import Forbidden
from flashfusion.core.gateway import Gateway
from flashfusion.core.runs import service
from flashfusion.core.storage.db import utcnow
from flashfusion.core.storage.models import Event, Run, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.management import Caller
from flashfusion.plugins import RepositoryLinks


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
        rows.append(
            {"step": step, "bar": bar, "seconds": seconds, "offset": (start - t0).total_seconds() if start else None}
        )
    ticks = [{"x": round(i * 250), "label": i * span / 4} for i in range(5)]
    return {"rows": rows, "span": span, "ticks": ticks}


def repository_links(gateway: Gateway, pipeline_id: str) -> RepositoryLinks | None:
    """The configured repository's web address, as its provider names it (None: no links)."""
    pipeline = gateway.config.pipelines.get(pipeline_id)
    if pipeline is None:
        return None
    try:
        return gateway.provider_for(pipeline).repository_links(pipeline)
    except Exception:  # a third-party provider's bug costs the links, not the page
        return None


class RunPage(Page):
    nav = "runs"
    full_template, fragment_template = "run.html", "run_body.html"

    @page
    def on_get(self, ctx: Ctx, run_id: str) -> None:
        run = visible_run(ctx, run_id)
        now = utcnow()
        view = run_view(run, now)
        steps = timeline(view, now)
        links = repository_links(self.gw, run.pipeline_id)
        events = list(Event.select().where(Event.run_id == run.id).order_by(Event.created_at, Event.id))
        deliveries: dict[str, list[dict[str, Any]]] = {}
        if events:
            caller = Caller(user=ctx.user)
            endpoints = {ep.id: ep for ep in WebhookEndpoint.select() if caller.may_see(ep)}
            for d in WebhookDelivery.select().where(WebhookDelivery.event_id.in_([e.id for e in events])):
                if d.endpoint_id in endpoints:
                    deliveries.setdefault(d.event_id, []).append(
                        {
                            "url": endpoints[d.endpoint_id].url,
                            "webhook_id": d.endpoint_id,
                            "status": d.status,
                            "status_code": d.last_status_code,
                            "latency_ms": d.last_latency_ms,
                        }
                    )
        self.render_live(
            ctx,
            run=view,
            timeline=steps,
            now=now,
            stages=runfacts.stage_groups(steps["rows"]),
            open_log=runfacts.first_failed(view["steps"]),
            events=events,
            deliveries=deliveries,
            pipeline=self.gw.config.pipelines.get(run.pipeline_id),
            may_cancel=ctx.access.may("trigger_pipeline", run.pipeline_id) and view["active"],
            may_trigger=ctx.access.may("trigger_pipeline", run.pipeline_id),
            inputs=runfacts.shown_inputs(run.inputs),
            rerun_inputs=runfacts.rerun_inputs(run.inputs),
            commit=runfacts.commit_link(links, runfacts.run_commit(view["trigger"])),
            branch=runfacts.branch_link(links, view["branch"]),
        )


class CancelRun(Page):
    @page
    def on_post(self, ctx: Ctx, run_id: str) -> None:
        run = visible_run(ctx, run_id)
        if not ctx.access.may("trigger_pipeline", run.pipeline_id):
            raise Forbidden(
                "Cancelling needs the trigger_pipeline permission for this pipeline", error="Insufficient permissions"
            )
        service.cancel(run)
        ctx.audit("run.cancel_requested", run.id)
        redirect(ctx.resp, f"/dashboard/runs/{run.id}", done="cancel")
