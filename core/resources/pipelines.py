"""The spec's pipeline API: trigger-pipeline, get-status, get-config; plus runs and cancel-run."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import falcon

from flashfusion.core import idempotency, runs
from flashfusion.core.auth import Actor, check_pipeline_scope, require
from flashfusion.core.db import fetch_by_id, from_db_time, to_db_time
from flashfusion.core.errors import ApiError, BadRequest, NotFound
from flashfusion.core.gateway import Gateway
from flashfusion.core.http import field, query, query_int, read_json
from flashfusion.core.models import Run
from flashfusion.core.serialize import run_to_dict
from flashfusion.plugins import Pipeline, ProviderError

log = logging.getLogger("flashfusion.api")

REF_PATTERN = r"^(?!/)(?!.*\.\.)(?!.*//)(?!.*/$)(?!.*\.lock$)[A-Za-z0-9._/@+-]{1,255}$"
REF = re.compile(REF_PATTERN)
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
INPUT_NAME = re.compile(INPUT_NAME_PATTERN)
MAX_INPUTS = 25
MAX_INPUT_VALUE = 8192
MAX_WAIT_SECONDS = 60


def parse_inputs(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("'inputs' must be a JSON object of string values", error="Invalid parameter")
    if len(raw) > MAX_INPUTS:
        raise BadRequest(f"'inputs' takes at most {MAX_INPUTS} entries", error="Invalid parameter")
    for name, value in raw.items():
        if not INPUT_NAME.match(name):
            raise BadRequest(f"input name {name[:100]!r} must match {INPUT_NAME.pattern}", error="Invalid parameter")
        if not isinstance(value, str):
            raise BadRequest(f"input {name!r} must be a string", error="Invalid parameter")
        if len(value) > MAX_INPUT_VALUE:
            raise BadRequest(f"input {name!r} is longer than {MAX_INPUT_VALUE} characters", error="Invalid parameter")
    return dict(raw)


def scoped_run(actor: Actor, run_id: str) -> Run:
    run = fetch_by_id(Run, run_id)
    if run is None or not actor.may_see(run.pipeline_id):
        raise NotFound("Run not found", error="Run not found")
    return run


def provider_error(exc: ProviderError, pipeline: Pipeline) -> ApiError:
    err = ApiError(exc.message, error=exc.error)
    err.status = exc.http_status
    if exc.retry_after:
        err.headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    return err


def check_ref(ref: str) -> str:
    if not REF.match(ref):
        raise BadRequest("'branch' is not a valid git ref name", error="Invalid parameter")
    return ref


def start_run(gw: Gateway, pipeline: Pipeline, ref: str, inputs: dict[str, str], api_key_id: str | None) -> Run:
    """Create a run and dispatch it (or leave it to the worker for providers that run there).
    Shared by the API's trigger-pipeline and the dashboard's trigger form."""
    provider = gw.provider_for(pipeline)
    if "runs_in_worker" in provider.capabilities:
        return runs.create_run(pipeline, ref, inputs, api_key_id)
    lease = gw.config.worker.lease_seconds
    run = runs.create_run(pipeline, ref, inputs, api_key_id, lease_owner="api", lease_seconds=lease)
    try:
        dispatch = provider.dispatch(pipeline, runs.to_ref(run), ref, inputs)
    except ProviderError as exc:
        runs.fail_dispatch(run.id, exc)
        log.warning("dispatch of %s for pipeline %s failed: %s", run.id, pipeline.id, exc.message)
        raise provider_error(exc, pipeline) from exc
    except Exception:
        runs.fail_run(run.id, "dispatch_error", "internal error while dispatching")
        raise
    return runs.record_dispatch(run.id, dispatch) or run


class TriggerPipeline:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @falcon.before(require("trigger_pipeline"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        body = read_json(req, self.gw.config.server.max_body_bytes)
        pipeline_id = field(body, "pipeline_id", str, required=True, max_length=64)
        branch = field(body, "branch", str, max_length=255)
        inputs = parse_inputs(body.get("inputs"))
        check_pipeline_scope(actor, pipeline_id)
        pipeline = self.gw.pipeline(pipeline_id)
        ref = check_ref(branch or pipeline.branch)

        key = req.get_header("Idempotency-Key")
        if key is not None:
            key = idempotency.validate_key(key)
            earlier = idempotency.claim(actor.key_id, key, idempotency.request_hash(
                {"pipeline_id": pipeline_id, "branch": ref, "inputs": inputs}))
            if earlier is not None:
                resp.set_header("Idempotent-Replayed", "true")
                resp.media = self._answer(Run.get_by_id(earlier))
                return
        try:
            run = self._start(actor, pipeline, ref, inputs)
        except BaseException:
            if key is not None:
                idempotency.release(actor.key_id, key)
            raise
        if key is not None:
            idempotency.bind(actor.key_id, key, run.id)
        resp.media = self._answer(run)

    def _start(self, actor: Actor, pipeline: Pipeline, ref: str, inputs: dict[str, str]) -> Run:
        return start_run(self.gw, pipeline, ref, inputs, actor.key_id)

    @staticmethod
    def _answer(run: Run) -> dict[str, Any]:
        return {
            "success": True,
            "run_id": run.id,
            "status": run.status,
            "workflow_id": run.workflow_id or run.pipeline_id,
            "phase": run.phase,
            "conclusion": run.conclusion,
            "upstream_run_id": run.upstream_id,
            "html_url": run.html_url,
        }


class GetStatus:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        run_id = query(req, "run_id", required=True, max_length=64)
        wait = query_int(req, "wait", default=0, low=0, high=MAX_WAIT_SECONDS)
        version = query_int(req, "version", default=None, low=0, high=2**31)
        run = scoped_run(actor, run_id)
        if wait and run.phase != "completed":
            seen = run.version if version is None else version
            if seen == run.version and self.gw.watcher.wait(run.id, seen, wait):
                run = fetch_by_id(Run, run.id)
        body = run_to_dict(run)
        body["version"] = run.version
        resp.media = {"success": True, "run": body}


class GetConfig:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @falcon.before(require("read_config"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        pipeline_id = query(req, "pipeline_id", required=True, max_length=64)
        check_pipeline_scope(actor, pipeline_id)
        p = self.gw.pipeline(pipeline_id)
        resp.media = {"success": True, "config": {
            "id": p.id,
            "name": p.name,
            "provider": p.provider,
            "project_type": p.project_type,
            "repository_name": p.repository_name,
            "branch": p.branch,
            "triggers": dict(p.triggers),
            "build_command": p.build_command,
            "quality_gates": dict(p.quality_gates),
            "steps": [{"name": s.name, "run": s.run} for s in p.steps],
            "timeout_seconds": p.timeout_seconds,
            "workflow": p.option("workflow"),
        }}


class ListRuns:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        pipeline_id = query(req, "pipeline_id", max_length=64)
        status = query(req, "status", max_length=16)
        limit = query_int(req, "limit", default=20, low=1, high=100)
        cursor = query(req, "cursor", max_length=200)
        if status is not None and status not in ("running", "success", "failed"):
            raise BadRequest("'status' must be one of running, success, failed", error="Invalid parameter")
        q = Run.select()
        if pipeline_id is not None:
            check_pipeline_scope(actor, pipeline_id)
            q = q.where(Run.pipeline_id == pipeline_id)
        elif actor.pipeline_ids:
            q = q.where(Run.pipeline_id.in_(sorted(actor.pipeline_ids)))
        if status is not None:
            q = q.where(Run.status == status)
        if cursor is not None:
            created, last_id = decode_cursor(cursor)
            q = q.where((Run.created_at < created) | ((Run.created_at == created) & (Run.id < last_id)))
        page = list(q.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1))
        more = len(page) > limit
        page = page[:limit]
        resp.media = {
            "success": True,
            "runs": [run_to_dict(r) for r in page],
            "next_cursor": encode_cursor(page[-1]) if more else None,
        }


def encode_cursor(run: Run) -> str:
    stamp = from_db_time(run.created_at).isoformat()
    return base64.urlsafe_b64encode(f"{stamp}|{run.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, run_id = raw.split("|", 1)
        return to_db_time(from_db_time(stamp)), run_id
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("'cursor' is not a cursor this API returned", error="Invalid parameter") from None


class CancelRun:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    @falcon.before(require("trigger_pipeline"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        body = read_json(req, self.gw.config.server.max_body_bytes)
        run_id = field(body, "run_id", str, required=True, max_length=64)
        run = scoped_run(actor, run_id)
        run = runs.request_cancel(run.id) or run
        resp.media = {"success": True, "run": run_to_dict(run)}
