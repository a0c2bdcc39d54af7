"""trigger-pipelines (several runs started together as a group) and get-group."""

from __future__ import annotations

from typing import Any

import falcon

from flashfusion.core.access.permissions import Actor, check_pipeline_scope
from flashfusion.core.errors import NotFound
from flashfusion.core.runs import groups, idempotency, service, triggers
from flashfusion.core.storage.db import fetch_by_id, write_tx
from flashfusion.core.storage.models import Run, RunGroup
from flashfusion.core.web.authentication import require
from flashfusion.core.web.parsing import query
from flashfusion.core.web.resources.base import GatewayResource
from flashfusion.core.web.schemas.requests import TriggerPipelinesRequest
from flashfusion.plugins import ProviderError


def _new_group(actor: Actor) -> RunGroup:
    with write_tx():
        return groups.create_group(actor.key_id)


class TriggerPipelines(GatewayResource):
    @falcon.before(require("trigger_pipeline"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every member is checked (scope, pipeline, ref) before any run starts; the
        Idempotency-Key covers the whole group."""
        actor: Actor = req.context.actor
        body = self.body(req, TriggerPipelinesRequest)
        members = []
        for item in body.runs:
            check_pipeline_scope(actor, item.pipeline_id)
            pipeline = self.gw.pipeline(item.pipeline_id)
            ref = service.check_ref(item.branch or pipeline.branch)
            members.append((pipeline, ref, dict(item.inputs or {})))
        hashed = {"group": [{"pipeline_id": p.id, "branch": ref, "inputs": inputs} for p, ref, inputs in members]}
        group, replayed = idempotency.once(
            actor.key_id, req.get_header("Idempotency-Key"), hashed, lambda: _new_group(actor), RunGroup.get_by_id
        )
        if replayed:
            resp.set_header("Idempotent-Replayed", "true")
            resp.media = self._answer(group.id, groups.group_runs(group.id), {})
            return
        trigger = triggers.api_trigger(actor.key_id, actor.key_preview)
        started: list[Run] = []
        refused: dict[str, str] = {}
        for pipeline, ref, inputs in members:
            try:
                started.append(
                    service.start_run(self.gw, pipeline, ref, inputs, actor.key_id, trigger, group_id=group.id)
                )
            except ProviderError as exc:  # that run has ended failed; the others go on
                known = {r.id for r in started}
                run = next(r for r in groups.group_runs(group.id) if r.id not in known)
                started.append(run)
                refused[run.id] = exc.message
        resp.media = self._answer(group.id, [fetch_by_id(Run, r.id) or r for r in started], refused)

    @staticmethod
    def _answer(group_id: str, runs: list[Run], refused: dict[str, str]) -> dict[str, Any]:
        shown = []
        for run in runs:
            item = {
                "run_id": run.id,
                "pipeline_id": run.pipeline_id,
                "status": run.status,
                "phase": run.phase,
                "conclusion": run.conclusion,
                "upstream_run_id": run.upstream_id,
                "html_url": run.html_url,
            }
            if run.id in refused:
                item["error"] = refused[run.id]
            shown.append(item)
        return {"success": True, "group_id": group_id, "runs": shown}


class GetGroup(GatewayResource):
    @falcon.before(require("read_runs"))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        actor: Actor = req.context.actor
        group_id = query(req, "group_id", required=True, max_length=64)
        group = fetch_by_id(RunGroup, group_id)
        runs = groups.group_runs(group_id, actor.pipeline_ids or None) if group is not None else []
        if group is None or not runs:
            raise NotFound("Group not found", error="Group not found")
        resp.media = {"success": True, "group": groups.aggregate(group, runs)}
