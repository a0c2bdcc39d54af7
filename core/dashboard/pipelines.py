"""The pipelines page (with each pipeline's recent runs and charts), triggering from it, and the
runs list with each pipeline's trends. A run's own page is in ``runpage``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flashfusion.core.dashboard.pages import Ctx, ListPage, Page, page, redirect
from flashfusion.core.dashboard.runfacts import with_secret_inputs
from flashfusion.core.dashboard.trends import TREND_WINDOW, pipeline_stats, pipeline_trends, seconds_of
from flashfusion.core.errors import ApiError, BadRequest, NotFound
from flashfusion.core.hooks import activity
from flashfusion.core.runs import service, triggers
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.storage.db import utcnow
from flashfusion.core.storage.models import Run
from flashfusion.plugins import ProviderError


def run_view(run: Run, now: datetime | None = None) -> dict[str, Any]:
    out = run_to_dict(run)
    out["active"] = run.phase != "completed"
    out["duration"] = seconds_of(run, now)
    out["started_by"] = triggers.describe(out["trigger"])
    return out


def stats_view(pipeline_id: str) -> dict[str, Any]:
    stats = pipeline_stats(pipeline_id)
    return {**stats, "recent": [run_view(r) for r in stats["recent"]]}


def parse_input_lines(text: str) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not service.INPUT_NAME.match(name):
            raise BadRequest(
                f"Input line {number} must look like NAME=value (NAME: letters, digits, _ and -)",
                error="Invalid parameter",
            )
        inputs[name] = value
    return service.parse_inputs(inputs)


class Pipelines(ListPage):
    nav = "pipelines"

    def show(self, ctx: Ctx, status: int = 200, **values: Any) -> None:
        rows = []
        hooks = {e.provider: e.describe(self.gw.clock()) for e in activity.report(self.gw.providers.instances)}
        for pid in ctx.access.visible():
            p = self.gw.config.pipelines[pid]
            rows.append(
                {
                    "p": p,
                    "config": ctx.access.may("read_config", pid),
                    "hooks": hooks.get(p.provider),
                    "runs": ctx.access.may("read_runs", pid),
                    "trigger": ctx.access.may("trigger_pipeline", pid),
                    "stats": stats_view(pid) if ctx.access.may("read_runs", pid) else None,
                }
            )
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
            again = ctx.form.get("rerun_of")
            if again:  # "Run again": the masked inputs were not in the page; take them from that run
                earlier = service.find_run(again[:64], ctx.access.allowed("read_runs"))
                if earlier.pipeline_id == pipeline_id:
                    inputs = with_secret_inputs(inputs, earlier.inputs)
            run = service.start_run(self.gw, pipeline, ref, inputs, None, triggers.dashboard_trigger(ctx.user.username))
        except ApiError as exc:
            Pipelines(self.d).show(ctx, exc.status, error=f"{pipeline_id}: {exc.message}")
            return
        except ProviderError as exc:
            Pipelines(self.d).show(ctx, exc.http_status, error=f"{pipeline_id}: {exc.message}")
            return
        ctx.audit("run.triggered", run.id, pipeline_id=pipeline_id, branch=ref)
        redirect(ctx.resp, f"/dashboard/runs/{run.id}")


class Runs(Page):
    nav = "runs"
    full_template, fragment_template = "runs.html", "runs_table.html"

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
        found = service.list_runs(
            pipelines=[pipeline_id] if pipeline_id else readable,
            status=status or None,
            branch=branch,
            cursor=(req.get_param("cursor") or "")[:200] or None,
            limit=50,
        )
        rows = found.runs
        now = utcnow()
        views = [run_view(r, now) for r in rows]
        trends = pipeline_trends([pipeline_id] if pipeline_id else readable) if not req.get_param("fragment") else []
        self.render_live(
            ctx,
            runs=views,
            readable=readable,
            filters={"pipeline": pipeline_id, "status": status, "branch": branch},
            active=any(v["active"] for v in views),
            trends=trends,
            trend_window=TREND_WINDOW,
            next_cursor=found.next_cursor,
            query=req.query_string,
        )
