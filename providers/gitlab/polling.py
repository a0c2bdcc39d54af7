"""Polling many runs of one project with one list request per cycle.

Each cycle asks ``GET /projects/:id/pipelines?updated_after=<cursor - overlap>&order_by=updated_at``
(following ``Link`` pages). A run is *changed* when its pipeline shows up with a newer
``updated_at`` (or another status) than the one last reported for it; only those cost more
requests (the pipeline, its jobs, and at most one deployments list per cycle).

What was last reported lives in ``RunSnapshot.state`` (kept by the core across restarts),
with an in-memory copy for cores that do not hand it back. After a restart the first cycle
lists from the oldest baseline among the runs, so changes made while the worker was down
are found with the same single request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import gitlab

from flashfusion.plugins import ProviderError, RunRef, RunSnapshot, StepResult
from flashfusion.providers.gitlab import mapping
from flashfusion.providers.gitlab.client import Throttle
from flashfusion.providers.gitlab.events import HOOKED

log = logging.getLogger(__name__)

# Rows committed late by GitLab carry an older updated_at than rows already listed.
OVERLAP = timedelta(seconds=30)
# A run with no server timestamp is searched from its local creation time minus this margin.
CLOCK_MARGIN = timedelta(minutes=5)
# Pipelines no poll has asked about for this long are forgotten.
RETAIN_SECONDS = 3600.0


class RateLimited(Exception):
    """GitLab answered 429; the throttle already knows for how long."""


class Gone(Exception):
    """The pipeline no longer exists upstream (404)."""


@dataclass(frozen=True)
class Memo:
    """What was last reported for one pipeline."""

    updated_at: datetime
    status: str

    @classmethod
    def from_state(cls, state: Mapping[str, Any], provider_status: str | None) -> Memo | None:
        updated = mapping.parse_time(state.get("updated_at"))
        status = state.get("status") or provider_status
        return cls(updated, str(status)) if updated and status else None

    def older_than(self, other: Memo) -> bool:
        return other.updated_at > self.updated_at or (
            other.updated_at == self.updated_at and other.status != self.status
        )


@dataclass
class ProjectWatch:
    """This process's knowledge of one project's pipelines."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cursor: datetime | None = None  # newest updated_at seen in any list
    covered_from: datetime | None = None  # every change after this has been listed
    listed_at: float | None = None
    seen: dict[str, Memo] = field(default_factory=dict)  # watched pipeline id -> newest list entry
    reported: dict[str, Memo] = field(default_factory=dict)
    deployment_urls: dict[str, str] = field(default_factory=dict)
    fetched_at: dict[str, float] = field(default_factory=dict)
    watched: dict[str, float] = field(default_factory=dict)  # pipeline id -> last asked about
    hooked_at: float | None = None  # when a hook about this project was last applied

    def watch(self, pipeline_id: str, now: float) -> None:
        self.watched[pipeline_id] = now

    def prune(self, now: float) -> None:
        for pid in [p for p, at in self.watched.items() if now - at > RETAIN_SECONDS]:
            for table in (self.watched, self.seen, self.reported, self.deployment_urls, self.fetched_at):
                table.pop(pid, None)


@dataclass
class Fetched:
    run: RunRef
    pipeline: dict[str, Any]
    steps: tuple[StepResult, ...]

    @property
    def memo(self) -> Memo:
        return Memo(mapping.parse_time(self.pipeline["updated_at"]) or datetime.now(UTC), str(self.pipeline["status"]))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _call(fn: Callable[[], Any], translate: Callable[[Exception], ProviderError], *, may_be_gone: bool = False) -> Any:
    try:
        return fn()
    except (gitlab.GitlabError, OSError) as exc:
        code = exc.response_code if isinstance(exc, gitlab.GitlabError) else None
        if code == 429:
            raise RateLimited() from exc
        if code == 404 and may_be_gone:
            raise Gone() from exc
        raise translate(exc) from exc


class ProjectPoller:
    """Polls the runs of one project; callers hold ``watch.lock``."""

    def __init__(
        self,
        project: Any,
        watch: ProjectWatch,
        throttle: Throttle,
        translate: Callable[[Exception], ProviderError],
        *,
        clock: Callable[[], float],
        freshness: float,
        refresh: float = 0,
        environment: str | None = None,
        hooks_within: float = 0,
    ) -> None:
        self.project, self.watch, self.throttle = project, watch, throttle
        self.translate, self.clock, self.freshness = translate, clock, freshness
        self.steps_refresh, self.environment = refresh, environment
        #: a hook about the project within this many seconds: its job hooks bring the steps
        self.hooks_within = hooks_within

    def poll(self, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        baselines: dict[str | None, Memo | None] = {r.upstream_id: self._baseline(r) for r in runs if r.upstream_id}
        tracked = [r for r in runs if r.upstream_id]
        now = self.clock()
        self.watch.prune(now)
        for pid in baselines:
            self.watch.watch(str(pid), now)
        try:
            self._list(self._since(tracked, baselines))
        except RateLimited:
            return []
        changed = (run for run in tracked if self._changed(run, baselines[run.upstream_id]))
        return self._read(changed, retry_later=True)

    def refresh(self, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """Read these runs' pipelines and jobs now, whatever the list says (a webhook said
        they changed); the same snapshots ``poll`` gives for them."""
        now = self.clock()
        bound = [run for run in runs if run.upstream_id]
        for run in bound:
            self.watch.watch(str(run.upstream_id), now)
        return self._read(bound, retry_later=False)

    def _read(self, runs: Iterable[RunRef], *, retry_later: bool) -> list[RunSnapshot]:
        """Fetch each run's pipeline and jobs until the rate limit says stop; a pipeline gone
        upstream is a lost run. Another upstream error is raised, or with ``retry_later``
        logged and left for the next poll."""
        fetched: list[Fetched] = []
        lost: list[RunSnapshot] = []
        for run in runs:
            if self.throttle.wait_seconds() > 0:
                break
            try:
                fetched.append(self._fetch(run))
            except RateLimited:
                break
            except Gone:
                lost.append(self._lost(run))
            except ProviderError as exc:
                if not retry_later:
                    raise
                log.warning("%s (will retry)", exc.message)
        return [self._commit(f) for f in self._with_deployments(fetched)] + lost

    # -- which runs changed ---------------------------------------------------------------

    def _baseline(self, run: RunRef) -> Memo | None:
        from_core = Memo.from_state(run.state or {}, run.provider_status)
        return from_core or self.watch.reported.get(str(run.upstream_id))

    def _since(self, runs: Iterable[RunRef], baselines: Mapping[Any, Memo | None]) -> datetime:
        """The oldest moment a change of these runs may have happened."""
        times = []
        for run in runs:
            memo = baselines[run.upstream_id]
            created = mapping.parse_time((run.state or {}).get("created_at"))
            if memo is not None:
                times.append(memo.updated_at)
            elif created is not None:
                times.append(created)
            else:
                times.append(run.created_at - CLOCK_MARGIN)
        return min(times, default=datetime.now(UTC)) - OVERLAP

    def _list(self, since: datetime) -> None:
        watch = self.watch
        if watch.covered_from is not None and since >= watch.covered_from:
            if watch.listed_at is not None and self.clock() - watch.listed_at < self.freshness:
                return
            since = max(watch.covered_from, (watch.cursor or watch.covered_from) - OVERLAP)
        if self.throttle.wait_seconds() > 0:
            raise RateLimited()
        pages = _call(
            lambda: self.project.pipelines.list(
                iterator=True, updated_after=_iso(since), order_by="updated_at", sort="asc", per_page=100
            ),
            self.translate,
        )
        for item in _drain(pages, self.translate):
            memo = Memo(mapping.parse_time(item["updated_at"]), str(item["status"]))  # type: ignore[arg-type]
            watch.cursor = max(watch.cursor or memo.updated_at, memo.updated_at)
            pid = str(item["id"])
            if pid in watch.watched:
                watch.seen[pid] = memo
        watch.listed_at = self.clock()
        if watch.covered_from is None or since < watch.covered_from:
            watch.covered_from = since

    def _changed(self, run: RunRef, baseline: Memo | None) -> bool:
        pid = str(run.upstream_id)
        seen = self.watch.seen.get(pid)
        if baseline is None:
            return True  # never reported: fetch once
        if (run.state or {}).get(HOOKED) and self._steps_come_by_hook(baseline, seen):
            return False
        if seen is not None and baseline.older_than(seen):
            return True
        return self._refresh_due(pid, seen or baseline)

    def _steps_come_by_hook(self, baseline: Memo, seen: Memo | None) -> bool:
        """Only jobs can have moved (the status is the one last reported) and the project's
        hooks arrive: its job hooks bring the steps, and the pipeline's hooks its status.
        Asked only for a run that hooks moved on since it was last read."""
        hooked = self.watch.hooked_at
        return (
            seen is not None
            and seen.status == baseline.status
            and seen.status not in mapping.TERMINAL
            and hooked is not None
            and self.clock() - hooked <= self.hooks_within
        )

    def _refresh_due(self, pid: str, latest: Memo) -> bool:
        """Jobs can move on while the pipeline keeps its status (and ``updated_at``): with
        ``steps_refresh_seconds`` set, unfinished pipelines are re-read that often."""
        if not self.steps_refresh or latest.status in mapping.TERMINAL:
            return False
        return self.clock() - self.watch.fetched_at.get(pid, float("-inf")) >= self.steps_refresh

    # -- fetching ---------------------------------------------------------------------------

    def _fetch(self, run: RunRef) -> Fetched:
        pipeline = _call(lambda: self.project.pipelines.get(run.upstream_id), self.translate, may_be_gone=True)
        jobs = _call(lambda: pipeline.jobs.list(get_all=True, per_page=100, include_retried="true"), self.translate)
        return Fetched(run, pipeline.asdict(), mapping.job_steps(j.asdict() for j in jobs))

    def _lost(self, run: RunRef) -> RunSnapshot:
        return RunSnapshot.failed(run.id, "not_found", "not_found", upstream_id=run.upstream_id)

    def with_deployments(self, runs: Mapping[str, RunRef], snapshots: list[RunSnapshot]) -> list[RunSnapshot]:
        """Snapshots built from hooks, with the deployment URL of the runs whose jobs newly
        succeeded (one lookup, as when polling finds those jobs)."""
        fetched = [
            Fetched(
                runs[s.run_id],
                {
                    "id": runs[s.run_id].upstream_id,
                    "status": s.provider_status,
                    "created_at": (runs[s.run_id].state or {}).get("created_at"),
                },
                s.steps or (),
            )
            for s in snapshots
        ]
        self._with_deployments(fetched)
        out = []
        for snap in snapshots:
            url = self.watch.deployment_urls.get(str(runs[snap.run_id].upstream_id))
            state = {**(snap.state if snap.state is not None else runs[snap.run_id].state), "deployment_url": url}
            out.append(replace(snap, deployment_url=url, state=state) if url else snap)
        return out

    def _with_deployments(self, fetched: list[Fetched]) -> list[Fetched]:
        """Look deployment URLs up with one request for every run that may have deployed.

        On failure those runs are held back (not reported) so the next cycle retries them.
        """
        wanted = [f for f in fetched if self._may_have_deployed(f)]
        if not wanted:
            return fetched
        since = min(mapping.parse_time(f.pipeline.get("created_at")) or f.run.created_at for f in wanted)
        ids = {str(f.pipeline["id"]) for f in wanted}
        filters: dict[str, Any] = {
            "status": "success",
            "order_by": "updated_at",
            "sort": "asc",
            "updated_after": _iso(since - OVERLAP),
            "per_page": 100,
        }
        if self.environment:
            filters["environment"] = self.environment
        try:
            pages = _call(lambda: self.project.deployments.list(iterator=True, **filters), self.translate)
            for item in _drain(pages, self.translate):
                pid = str(((item.get("deployable") or {}).get("pipeline") or {}).get("id"))
                url = (item.get("environment") or {}).get("external_url")
                if pid in ids and url:
                    self.watch.deployment_urls[pid] = url
        except (RateLimited, ProviderError) as exc:
            log.warning("gitlab: deployments lookup failed, retrying next cycle: %s", exc)
            return [f for f in fetched if f not in wanted]
        return fetched

    def _may_have_deployed(self, f: Fetched) -> bool:
        if str(f.pipeline["id"]) in self.watch.deployment_urls or (f.run.state or {}).get("deployment_url"):
            return False
        before = {(s.stage, s.name) for s in f.run.steps if s.status == "success"}
        now = {(s.stage, s.name) for s in f.steps if s.status == "success"}
        terminal = f.pipeline.get("status") in mapping.TERMINAL
        return bool(now - before) or (terminal and bool(now))

    def _commit(self, f: Fetched) -> RunSnapshot:
        pid = str(f.pipeline["id"])
        memo = f.memo
        url = self.watch.deployment_urls.get(pid) or (f.run.state or {}).get("deployment_url")
        state = {
            "project_id": f.pipeline.get("project_id"),
            "updated_at": f.pipeline.get("updated_at"),
            "status": memo.status,
            "created_at": f.pipeline.get("created_at"),
        }
        if url:
            state["deployment_url"] = url
        self.watch.reported[pid] = memo
        self.watch.fetched_at[pid] = self.clock()
        return mapping.snapshot(f.run.id, f.pipeline, f.steps, url, state)


def _drain(pages: Iterable[Any], translate: Callable[[Exception], ProviderError]) -> Iterable[dict[str, Any]]:
    """Iterate a python-gitlab list (following ``Link`` pages) as plain dicts."""
    iterator = iter(pages)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except (gitlab.GitlabError, OSError) as exc:
            if isinstance(exc, gitlab.GitlabError) and exc.response_code == 429:
                raise RateLimited() from exc
            raise translate(exc) from exc
        yield item.asdict()
