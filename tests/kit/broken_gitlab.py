"""GitLab providers with one deliberate defect each, for showing that every kit check can
fail. Each class breaks exactly the rule its docstring names."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flashfusion import plugins
from flashfusion.providers.gitlab.mapping import PIPELINE_STATUSES
from flashfusion.providers.gitlab.provider import GitLabProvider

log = logging.getLogger("kit.broken")


class UnknownCapability(GitLabProvider):
    """shape: declares a capability the contract does not know."""

    capabilities = frozenset({"cancel", "teleport"})


class WrongUpstreamId(GitLabProvider):
    """dispatch_binds: returns an id that is not the pipeline it created."""

    def dispatch(
        self, pipeline: plugins.Pipeline, run: plugins.RunRef, ref: str, inputs: Mapping[str, str]
    ) -> plugins.Dispatch:
        result = super().dispatch(pipeline, run, ref, inputs)
        return dataclasses.replace(result, upstream_id=str(int(result.upstream_id or 0) + 100000))


class HandsOutThePreviousId(GitLabProvider):
    """concurrent_dispatches: returns the upstream id of the dispatch before (a shared
    "last created" slot), which only a lone dispatch gets right."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot_lock = threading.Lock()
        self._last: str | None = None

    def dispatch(
        self, pipeline: plugins.Pipeline, run: plugins.RunRef, ref: str, inputs: Mapping[str, str]
    ) -> plugins.Dispatch:
        result = super().dispatch(pipeline, run, ref, inputs)
        with self._slot_lock:
            previous, self._last = self._last, result.upstream_id
        return dataclasses.replace(result, upstream_id=previous or result.upstream_id)


class CanceledIsSuccess(GitLabProvider):
    """states_map: reports a canceled pipeline as a success."""

    def poll(self, pipeline: plugins.Pipeline, runs: Sequence[plugins.RunRef]) -> list[plugins.RunSnapshot]:
        return [
            dataclasses.replace(s, status="success", conclusion="success") if s.provider_status == "canceled" else s
            for s in super().poll(pipeline, runs)
        ]


class RaisesOnUnknownState(GitLabProvider):
    """unknown_state_kept: looks states up strictly."""

    def poll(self, pipeline: plugins.Pipeline, runs: Sequence[plugins.RunRef]) -> list[plugins.RunSnapshot]:
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

    def poll(self, pipeline: plugins.Pipeline, runs: Sequence[plugins.RunRef]) -> list[plugins.RunSnapshot]:
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

    def cancel(self, pipeline: plugins.Pipeline, run: plugins.RunRef) -> None:
        return None


def _retyped(catch: type[plugins.ProviderError], make: Any) -> type[GitLabProvider]:
    class Retyped(GitLabProvider):
        def dispatch(
            self, pipeline: plugins.Pipeline, run: plugins.RunRef, ref: str, inputs: Mapping[str, str]
        ) -> plugins.Dispatch:
            try:
                return super().dispatch(pipeline, run, ref, inputs)
            except catch as exc:
                raise make(exc) from exc

    return Retyped


#: error_bad_credentials: refused credentials become "rejected" (a 422 to clients).
AuthAsRejected = _retyped(plugins.UpstreamAuthError, lambda e: plugins.UpstreamRejected(e.message))
#: error_not_found: a 404 becomes the bare base class.
NotFoundAsGeneric = _retyped(plugins.UpstreamRejected, lambda e: plugins.ProviderError(e.message))
#: error_rate_limited: the rate limit's retry_after is dropped.
DropsRetryAfter = _retyped(plugins.UpstreamUnavailable, lambda e: plugins.UpstreamUnavailable(e.message))
#: error_unavailable: a 5xx escapes as a crash.
UnavailableCrashes = _retyped(plugins.UpstreamUnavailable, lambda e: RuntimeError(e.message))


class SettingsKeyLost(GitLabProvider):
    """settings_errors_name_the_key: every settings error names "settings"."""

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> plugins.Provider:
        try:
            return super().from_table(table, env=env)
        except plugins.PipelineConfigError as exc:
            raise plugins.PipelineConfigError("settings", exc.problem) from None


class LogsItsToken(GitLabProvider):
    """no_secret_leaks: logs the API token at DEBUG."""

    def dispatch(
        self, pipeline: plugins.Pipeline, run: plugins.RunRef, ref: str, inputs: Mapping[str, str]
    ) -> plugins.Dispatch:
        log.debug("dispatching with token %s", self.env.get(self.settings.token_env))
        return super().dispatch(pipeline, run, ref, inputs)


class HooksDisagree(GitLabProvider):
    """inbound_matches_polling: the snapshots of a webhook say "still running" whatever the
    pipeline's status."""

    def event_snapshots(
        self, pipeline: plugins.Pipeline, event: plugins.InboundEvent, runs: Sequence[plugins.RunRef]
    ) -> list[plugins.RunSnapshot]:
        return [
            dataclasses.replace(s, status="running", phase="in_progress", conclusion=None, finished_at=None)
            for s in super().event_snapshots(pipeline, event, runs)
        ]
