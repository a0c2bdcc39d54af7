"""The spec's pipeline API: trigger-pipeline, get-status, get-config; plus runs and cancel-run."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import msgspec

from flashfusion.core.access.permissions import Actor, check_pipeline_scope
from flashfusion.core.errors import ApiError
from flashfusion.core.runs import idempotency, runcache, service, triggers
from flashfusion.core.runs.serialize import duration_seconds, run_view
from flashfusion.core.storage.db import fetch_by_id
from flashfusion.core.storage.models import Run
from flashfusion.core.web.authentication import require
from flashfusion.core.web.parsing import query, query_int
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.core.web.schemas.requests import CancelRunRequest, TriggerPipelineRequest
from flashfusion.core.web.schemas.responses import (
    ConfigAnswer,
    PipelineConfig,
    PipelineStepConfig,
    RunAnswer,
    RunsPage,
    TriggerPipelineAnswer,
)
from flashfusion.plugins import Pipeline, ProviderError

log = logging.getLogger("flashfusion.api")

MAX_WAIT_SECONDS = 60


def scoped_run(actor: Actor, run_id: str, *, remembered: bool = False) -> Run:
    return service.find_run(run_id, actor.pipeline_ids or None, remembered=remembered)


def provider_error(exc: ProviderError, pipeline: Pipeline) -> ApiError:
    err = ApiError(exc.message, error=exc.error)
    err.status = exc.http_status
    if exc.retry_after:
        err.headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    return err


class TriggerPipeline(GatewayResource):
    @falcon.before(require("trigger_pipeline"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        body = self.body(req, TriggerPipelineRequest)
        pipeline_id = body.pipeline_id
        inputs = dict(body.inputs or {})
        check_pipeline_scope(actor, pipeline_id)
        pipeline = self.gw.pipeline(pipeline_id)
        ref = service.check_ref(body.branch or pipeline.branch)

        run, replayed = idempotency.once(
            actor.key_id,
            req.get_header("Idempotency-Key"),
            {"pipeline_id": pipeline_id, "branch": ref, "inputs": inputs},
            lambda: self._start(actor, pipeline, ref, inputs),
            Run.get_by_id,
        )
        if replayed:
            resp.set_header("Idempotent-Replayed", "true")
        resp.media = self._answer(run)

    def _start(self, actor: Actor, pipeline: Pipeline, ref: str, inputs: dict[str, str]) -> Run:
        try:
            return service.start_run(
                self.gw, pipeline, ref, inputs, actor.key_id, triggers.api_trigger(actor.key_id, actor.key_preview)
            )
        except ProviderError as exc:
            raise provider_error(exc, pipeline) from exc

    @staticmethod
    def _answer(run: Run) -> dict[str, Any]:
        return msgspec.to_builtins(
            TriggerPipelineAnswer(
                success=True,
                run_id=run.id,
                status=run.status,
                workflow_id=run.workflow_id or run.pipeline_id,
                phase=run.phase,
                conclusion=run.conclusion,
                upstream_run_id=run.upstream_id,
                html_url=run.html_url,
            )
        )


class GetStatus(GatewayResource):
    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        run_id = query(req, "run_id", required=True, max_length=64)
        wait = query_int(req, "wait", default=0, low=0, high=MAX_WAIT_SECONDS)
        version = query_int(req, "version", default=None, low=0, high=2**31)
        run = scoped_run(actor, run_id, remembered=True)
        if wait and run.phase != "completed":
            seen = run.version if version is None else version
            if seen == run.version and self.gw.watcher.wait(run.id, seen, wait):
                fresh = fetch_by_id(Run, run.id)
                assert fresh is not None, "runs are never deleted"
                run = fresh
        view = msgspec.structs.replace(
            runcache.view(run, run_view), version=run.version, duration_seconds=duration_seconds(run)
        )
        resp.media = msgspec.to_builtins(RunAnswer(success=True, run=view))


class GetConfig(GatewayResource):
    @falcon.before(require("read_config"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        pipeline_id = query(req, "pipeline_id", required=True, max_length=64)
        check_pipeline_scope(actor, pipeline_id)
        p = self.gw.pipeline(pipeline_id)
        resp.media = msgspec.to_builtins(
            ConfigAnswer(
                success=True,
                config=PipelineConfig(
                    id=p.id,
                    name=p.name,
                    provider=p.provider,
                    project_type=p.project_type,
                    repository_name=p.repository_name,
                    branch=p.branch,
                    triggers=dict(p.triggers),
                    build_command=p.build_command,
                    quality_gates=dict(p.quality_gates),
                    steps=[PipelineStepConfig(name=s.name, run=s.run) for s in p.steps],
                    timeout_seconds=p.timeout_seconds,
                    workflow=p.option("workflow"),
                ),
            )
        )


class ListRuns(GatewayResource):
    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        pipeline_id = query(req, "pipeline_id", max_length=64)
        status = query(req, "status", max_length=16)
        limit = query_int(req, "limit", default=20, low=1, high=100)
        cursor = query(req, "cursor", max_length=200)
        service.check_status(status)
        visible = {pipeline_id} if pipeline_id is not None else (actor.pipeline_ids or None)
        if pipeline_id is not None:
            check_pipeline_scope(actor, pipeline_id)
        page = service.list_runs(pipelines=visible, status=status, cursor=cursor, limit=limit)
        resp.media = msgspec.to_builtins(
            RunsPage(success=True, runs=[run_view(r) for r in page.runs], next_cursor=page.next_cursor)
        )


class CancelRun(GatewayResource):
    @falcon.before(require("trigger_pipeline"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        body = self.body(req, CancelRunRequest)
        run = scoped_run(actor, body.run_id)
        run = service.cancel(run)
        resp.media = msgspec.to_builtins(RunAnswer(success=True, run=run_view(run)))
