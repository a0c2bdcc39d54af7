"""GitLab providers with one deliberate defect each, for showing that every kit check can
fail. Each class breaks exactly the rule its docstring names."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flashfusion.plugins import (
    Dispatch,
    Pipeline,
    PipelineConfigError,
    Provider,
    ProviderError,
    RunRef,
    RunSnapshot,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from flashfusion.plugins.testing import InboundRequest
from flashfusion.providers.gitlab.mapping import PIPELINE_STATUSES, pipeline_state
from flashfusion.providers.gitlab.provider import GitLabProvider

log = logging.getLogger("kit.broken")


class UnknownCapability(GitLabProvider):
    """shape: declares a capability the contract does not know."""

    capabilities = frozenset({"cancel", "teleport"})


class WrongUpstreamId(GitLabProvider):
    """dispatch_binds: returns an id that is not the pipeline it created."""

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        result = super().dispatch(pipeline, run, ref, inputs)
        return dataclasses.replace(result, upstream_id=str(int(result.upstream_id or 0) + 100000))


class HandsOutThePreviousId(GitLabProvider):
    """concurrent_dispatches: returns the upstream id of the dispatch before (a shared
    "last created" slot), which only a lone dispatch gets right."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot_lock = threading.Lock()
        self._last: str | None = None

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        result = super().dispatch(pipeline, run, ref, inputs)
        with self._slot_lock:
            previous, self._last = self._last, result.upstream_id
        return dataclasses.replace(result, upstream_id=previous or result.upstream_id)


class CanceledIsSuccess(GitLabProvider):
    """states_map: reports a canceled pipeline as a success."""

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        return [dataclasses.replace(s, status="success", conclusion="success") if s.provider_status == "canceled"
                else s for s in super().poll(pipeline, runs)]


class RaisesOnUnknownState(GitLabProvider):
    """unknown_state_kept: looks states up strictly."""

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        snapshots = super().poll(pipeline, runs)
        for snapshot in snapshots:
            PIPELINE_STATUSES[str(snapshot.provider_status)]
        return snapshots


class ReplaysFirstSteps(GitLabProvider):
    """steps_move_forward: every other poll reports the steps it first saw (a stale cache)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: dict[str, Any] = {}
        self._polls = 0

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        self._polls += 1
        out = []
        for snapshot in super().poll(pipeline, runs):
            if snapshot.steps:
                first = self._first.setdefault(snapshot.run_id, snapshot.steps)
                if self._polls % 2 == 0:
                    snapshot = dataclasses.replace(snapshot, steps=first)
            out.append(snapshot)
        return out


class CancelDoesNothing(GitLabProvider):
    """cancel_ends_run: declares cancel but never asks upstream."""

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        return None


def _retyped(catch: type[ProviderError], make: Any) -> type[GitLabProvider]:
    class Retyped(GitLabProvider):
        def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
            try:
                return super().dispatch(pipeline, run, ref, inputs)
            except catch as exc:
                raise make(exc) from exc

    return Retyped


#: error_bad_credentials: refused credentials become "rejected" (a 422 to clients).
AuthAsRejected = _retyped(UpstreamAuthError, lambda e: UpstreamRejected(e.message))
#: error_not_found: a 404 becomes the bare base class.
NotFoundAsGeneric = _retyped(UpstreamRejected, lambda e: ProviderError(e.message))
#: error_rate_limited: the rate limit's retry_after is dropped.
DropsRetryAfter = _retyped(UpstreamUnavailable, lambda e: UpstreamUnavailable(e.message))
#: error_unavailable: a 5xx escapes as a crash.
UnavailableCrashes = _retyped(UpstreamUnavailable, lambda e: RuntimeError(e.message))


class SettingsKeyLost(GitLabProvider):
    """settings_errors_name_the_key: every settings error names "settings"."""

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> Provider:
        try:
            return super().from_table(table, env=env)
        except PipelineConfigError as exc:
            raise PipelineConfigError("settings", exc.problem) from None


class LogsItsToken(GitLabProvider):
    """no_secret_leaks: logs the API token at DEBUG."""

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        log.debug("dispatching with token %s", self.env.get(self.settings.token_env))
        return super().dispatch(pipeline, run, ref, inputs)


class _ParsesPipelineHooks(GitLabProvider):
    """Parses GitLab pipeline hooks (``object_attributes.status``) through the inbound-event
    interface by name, as the kit's hook point calls it."""

    def verify_delivery(self, headers: Mapping[str, str], body: bytes) -> Any:
        return {"event": headers.get("x-gitlab-event")}

    def parse_event(self, delivery: Any, headers: Mapping[str, str], body: bytes) -> Any:
        return json.loads(body)["object_attributes"]

    def map_state(self, raw: str) -> tuple[str, str, str | None]:
        return pipeline_state(raw)

    def event_snapshots(self, pipeline: Pipeline, event: Any, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        status, phase, conclusion = self.map_state(str(event["status"]))
        return [RunSnapshot(run_id=r.id, status=status, phase=phase, conclusion=conclusion,
                            provider_status=str(event["status"])) for r in runs
                if r.upstream_id == str(event["id"])]


class ParsesHooks(_ParsesPipelineHooks):
    """A provider whose webhooks agree with polling (the inbound check passes)."""


class HooksDisagree(_ParsesPipelineHooks):
    """inbound_matches_polling: reads every webhook as "still running"."""

    def map_state(self, raw: str) -> tuple[str, str, str | None]:
        return "running", "in_progress", None


def pipeline_hook(pipeline_id: int, status: str) -> InboundRequest:
    body = {"object_kind": "pipeline", "object_attributes": {"id": pipeline_id, "status": status}}
    return InboundRequest(headers={"x-gitlab-event": "Pipeline Hook"}, body=json.dumps(body).encode())
