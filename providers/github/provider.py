"""``GitHubProvider``: GitHub Actions through PyGithub, using only ``flashfusion.plugins``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from github import Github, GithubException
from github.WorkflowRun import WorkflowRun

from flashfusion.plugins import (
    Budget,
    Dispatch,
    Pipeline,
    Provider,
    ProviderError,
    RepositoryLinks,
    RunRef,
    RunSnapshot,
    UpstreamAuthError,
    UpstreamRejected,
)
from flashfusion.providers.github import correlation
from flashfusion.providers.github.artifacts import GitHubResults
from flashfusion.providers.github.client import ClientPool, token_source
from flashfusion.providers.github.configuration import GitHubConfigChecks
from flashfusion.providers.github.deployments import RepoDeployments, deployment_url
from flashfusion.providers.github.errors import CredentialsMissing, github_message, rate_limited, translate
from flashfusion.providers.github.events import GitHubEvents
from flashfusion.providers.github.mapping import run_state, steps_from_jobs, utc
from flashfusion.providers.github.polling import RunLister
from flashfusion.providers.github.settings import Settings as GitHubSettings
from flashfusion.providers.github.throttle import Throttle

log = logging.getLogger("flashfusion.providers.github")

MAX_INPUTS = 25
#: FlashFusion's clock and GitHub's may disagree; runs are looked for this far back.
LIST_SLACK_SECONDS = 300.0
#: Runs in these states have no job worth fetching yet.
NOT_STARTED = frozenset({"requested", "queued", "pending"})
_FAILURES = (GithubException, requests.exceptions.RequestException, CredentialsMissing)


@dataclass(frozen=True)
class _Workflow:
    id: int
    path: str


class GitHubProvider(GitHubConfigChecks, GitHubEvents, GitHubResults, Provider):
    """GitHub Actions: ``workflow_dispatch`` to start, one conditional runs list per repository
    and poll cycle to follow, ``cancel_url`` to stop.

    Pipeline block: ``repository_name = "owner/repo"``, ``branch``, ``workflow`` (file name or id),
    optionally ``environment`` (look for the deployment URL while the run is still going).
    """

    name = "github"
    Settings = GitHubSettings
    capabilities = frozenset({"cancel", "returns_run_id", "deployments", "results"})

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        github_options: Mapping[str, Any] | None = None,
    ) -> None:
        """``clock`` (epoch seconds) and ``github_options`` (extra ``Github(...)`` arguments)
        are for tests and embedding; the core passes neither."""
        super().__init__(settings, env=env)
        settings.check()
        self._clock = clock or time.time
        self._tokens = token_source(settings, self.env, self._clock, github_options)
        self._throttle = Throttle(self._clock, settings.rate_limit_reserve)
        self._pool = ClientPool(settings, self._tokens, github_options, observe=self._throttle.observe_client)
        self._lister = RunLister(
            per_page=settings.per_page,
            max_pages=settings.max_list_pages,
            fresh_for=settings.poll_interval_seconds / 2,
            clock=self._clock,
            throttle=self._throttle,
        )
        self._deployments = RepoDeployments(self._throttle)
        self._hooks_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._workflows: dict[tuple[str, str], _Workflow] = {}
        self._run_details: bool = settings.return_run_details
        self._input_mode: dict[tuple[str, int], bool] = {}
        self._named_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._last_seq = 0

    def _named_lock(self, *key: Any) -> threading.Lock:
        with self._lock:
            return self._named_locks.setdefault(key, threading.Lock())

    def _error(self, exc: BaseException, pipeline: Pipeline, action: str) -> ProviderError:
        if isinstance(exc, GithubException):
            info = rate_limited(exc)
            if info is not None:
                self._throttle.limited(info)
        return translate(exc, pipeline_id=pipeline.id, action=action, secrets=self._tokens.secrets(), now=self._clock())

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        """Start the workflow. Asks for ``return_run_details``; when the server refuses that
        parameter (older GHES) the answer is remembered and dispatches are correlated instead
        (see ``correlation``), returning ``upstream_id=None``."""
        _check_inputs(inputs)
        ref = ref or pipeline.branch
        key = str(pipeline.option("workflow"))
        action = f"dispatch workflow {key!r} on {ref!r} in {pipeline.repository_name}"
        try:
            with self._pool.client() as g:
                workflow = self._workflow(g, pipeline.repository_name, key)
                if self._run_details:
                    try:
                        return self._dispatch_with_details(g, pipeline, run, workflow, ref, inputs)
                    except GithubException as exc:
                        if not _rejects_run_details(exc):
                            raise
                        log.info(
                            "github: %s does not accept return_run_details; correlating runs instead",
                            self.settings.base_url,
                        )
                        self._run_details = False
                return self._dispatch_correlated(g, pipeline, run, workflow, ref, inputs)
        except _FAILURES as exc:
            raise self._error(exc, pipeline, action) from exc

    def _workflow(self, g: Github, repo: str, key: str) -> _Workflow:
        with self._lock:
            known = self._workflows.get((repo, key))
        if known is None:
            workflow = g.get_repo(repo).get_workflow(key)
            known = _Workflow(workflow.id, workflow.path)
            with self._lock:
                self._workflows[(repo, key)] = known
        return known

    def _dispatch_with_details(
        self, g: Github, pipeline: Pipeline, run: RunRef, workflow: _Workflow, ref: str, inputs: Mapping[str, str]
    ) -> Dispatch:
        handle = g.get_repo(pipeline.repository_name).get_workflow(workflow.id)
        started = self._clock()
        upstream = handle.create_dispatch(ref, inputs=dict(inputs), throw=True, return_run_details=True)
        if isinstance(upstream, WorkflowRun):
            return Dispatch(
                workflow_id=str(workflow.id),
                upstream_id=str(upstream.id),
                api_url=upstream.url,
                html_url=upstream.html_url,
                state={"correlation": "run_details", "dispatched_local": started},
            )
        # Accepted without details (a server that ignores the parameter): the run was started,
        # so correlate it by order from now on, with the local clock as the only time we have.
        self._run_details = False
        return self._ordered_dispatch_result(workflow, ref, self._clock(), started)

    def _dispatch_correlated(
        self, g: Github, pipeline: Pipeline, run: RunRef, workflow: _Workflow, ref: str, inputs: Mapping[str, str]
    ) -> Dispatch:
        repo = pipeline.repository_name
        name = self.settings.correlation_input
        handle = g.get_repo(repo).get_workflow(workflow.id)
        url = f"{handle.url}/dispatches"
        started = self._clock()
        mode_key = (repo, workflow.id)
        if self._input_mode.get(mode_key, True):
            value = str(inputs.get(name, run.id))
            try:
                headers, _ = handle.requester.requestJsonAndCheck(
                    "POST", url, input={"ref": ref, "inputs": {**inputs, name: value}}
                )
            except GithubException as exc:
                if not (exc.status == 422 and name in github_message(exc) and name not in inputs):
                    raise
                self._input_mode[mode_key] = False
            else:
                self._input_mode[mode_key] = True
                dispatched_at = _server_time(headers, started)
                return _correlated(workflow, ref, dispatched_at, started, correlation="input", correlation_value=value)
        with self._named_lock("order", repo, workflow.id, correlation.short_ref(ref)):
            headers, _ = handle.requester.requestJsonAndCheck("POST", url, input={"ref": ref, "inputs": dict(inputs)})
            return self._ordered_dispatch_result(workflow, ref, _server_time(headers, started), started)

    def _ordered_dispatch_result(self, workflow: _Workflow, ref: str, server_time: float, started: float) -> Dispatch:
        with self._lock:
            self._last_seq = max(time.time_ns(), self._last_seq + 1)
            seq = self._last_seq
        return _correlated(workflow, ref, server_time, started, correlation="order", seq=seq)

    # ------------------------------------------------------------------ poll

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """One conditional runs list for the repository (shared by its pipelines within half a
        poll interval), jobs only for runs whose ``updated_at`` changed, deployments once a run
        completes. While rate-limited it returns ``[]`` without calling GitHub: runs keep their
        state and are picked up again later. Bad credentials raise ``UpstreamAuthError``; other
        upstream failures are logged and return what was gathered so far."""
        if not runs or self._throttle.wait_seconds() > 0:
            return []
        out: list[RunSnapshot] = []
        with self._named_lock("repo", pipeline.repository_name):
            try:
                with self._pool.client() as g:
                    self._poll(g, pipeline, runs, out)
                self._throttle.succeeded()
            except _FAILURES as exc:
                error = self._error(exc, pipeline, "poll workflow runs")
                if isinstance(error, UpstreamAuthError) and error.retry_after is None:
                    raise error from exc
                if error.retry_after is None:
                    self._throttle.delay(self.settings.poll_interval_seconds)
                log.warning("github: %s", error.message)
        return out

    def _poll(self, g: Github, pipeline: Pipeline, runs: Sequence[RunRef], out: list[RunSnapshot]) -> None:
        repo = pipeline.repository_name
        now = self._clock()
        oldest = min(r.created_at.timestamp() for r in runs) - LIST_SLACK_SECONDS
        items = self._lister.runs(g, repo, oldest)
        by_id = {str(item["id"]): item for item in items}

        scope = (self.settings.base_url, repo)
        correlation.CLAIMS.prune(now - self.settings.dispatch_lost_after_seconds - 600)
        taken = correlation.CLAIMS.taken(scope) | {r.upstream_id for r in runs if r.upstream_id}
        pending = [r for r in runs if not r.upstream_id]
        newly = correlation.bind(pending, items, taken)
        for run_id, item in list(newly.items()):
            if not correlation.CLAIMS.claim(scope, str(item["id"]), run_id, now):
                del newly[run_id]

        for run in runs:
            if run.upstream_id:
                item = by_id.get(run.upstream_id) or self._lister.run(g, repo, run.upstream_id)
                if item is None:
                    out.append(RunSnapshot.failed(run.id, "upstream_missing", "not_found"))
                    continue
                if run.state.get("updated_at") == item.get("updated_at") and run.state.get("run_attempt") == item.get(
                    "run_attempt"
                ):
                    continue
                if self._steps_come_by_hook(repo, run, item):
                    continue
            elif run.id in newly:
                item = newly[run.id]
            else:
                out.append(self._unbound(run, now))
                continue
            snapshot = self._snapshot(g, pipeline, run, item)
            if snapshot.terminal:
                self._lister.forget_run(repo, str(item["id"]))
            out.append(snapshot)

    def _steps_come_by_hook(self, repo: str, run: RunRef, item: Mapping[str, Any]) -> bool:
        """Only the steps inside a job can have moved (the status and attempt are those a hook
        reported) and the repository's hooks arrive: their ``workflow_job`` hooks bring the
        steps, and the completion reads the jobs anyway (see ``events``)."""
        return (
            item.get("status") != "completed"
            and item.get("status") == run.provider_status
            and run.state.get("run_attempt") == item.get("run_attempt")
            and self.hooks_arrive(repo)
        )

    def _unbound(self, run: RunRef, now: float) -> RunSnapshot:
        dispatched = float(run.state.get("dispatched_local", run.created_at.timestamp()))
        if now - dispatched > self.settings.dispatch_lost_after_seconds:
            return RunSnapshot.failed(run.id, "dispatch_lost", "dispatch_lost")
        return RunSnapshot(run_id=run.id, status="running", phase="dispatching")

    def _snapshot(
        self, g: Github, pipeline: Pipeline, run: RunRef, item: Mapping[str, Any], *, with_steps: bool = True
    ) -> RunSnapshot:
        """The run ``item`` (as the runs list shows it) as a snapshot; its jobs are read for
        the steps unless ``with_steps`` is False (a hook reports jobs by itself)."""
        status, phase, conclusion = run_state(item.get("status"), item.get("conclusion"))
        started_at = utc(item.get("run_started_at"))
        steps = None
        if with_steps and item.get("status") not in NOT_STARTED:
            upstream = g.create_from_raw_data(WorkflowRun, dict(item))
            steps = steps_from_jobs(upstream.jobs())
        state = {
            **run.state,
            "updated_at": item.get("updated_at"),
            "run_attempt": item.get("run_attempt"),
            "upstream_created_at": item.get("created_at"),
        }
        found = run.state.get("deployment_url")
        environment = pipeline.option("environment")
        if (
            found is None
            and (phase == "completed" or environment)
            and self._deployments.any(g, pipeline.repository_name)
        ):
            found = deployment_url(
                g,
                pipeline.repository_name,
                str(item.get("head_sha")),
                str(item["id"]),
                started_at,
                str(environment) if environment else None,
            )
            if found:
                state["deployment_url"] = found
        return RunSnapshot(
            run_id=run.id,
            status=status,
            phase=phase,
            conclusion=conclusion,
            provider_status=item.get("status"),
            started_at=started_at,
            finished_at=utc(item.get("updated_at")) if phase == "completed" else None,
            steps=steps,
            deployment_url=found,
            html_url=item.get("html_url"),
            upstream_id=str(item["id"]),
            state=state,
        )

    # ------------------------------------------------------------------ cancel

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        if not run.upstream_id:
            raise UpstreamRejected("the GitHub run is not known yet (still dispatching); try again shortly")
        try:
            with self._pool.client() as g:
                upstream = g.get_repo(pipeline.repository_name).get_workflow_run(int(run.upstream_id))
                upstream.requester.requestJsonAndCheck("POST", f"{upstream.url}/cancel")
        except _FAILURES as exc:
            raise self._error(exc, pipeline, f"cancel run {run.upstream_id}") from exc

    def budget(self) -> Budget | None:
        return self._throttle.budget()

    def close(self) -> None:
        self._pool.close()

    def repository_links(self, pipeline: Pipeline) -> RepositoryLinks | None:
        web = self.settings.web_url
        return RepositoryLinks(f"{web}/{pipeline.repository_name}") if web else None


def _check_inputs(inputs: Mapping[str, Any]) -> None:
    if len(inputs) > MAX_INPUTS:
        raise UpstreamRejected(f"GitHub accepts at most {MAX_INPUTS} workflow inputs, got {len(inputs)}")
    for key, value in inputs.items():
        if not isinstance(key, str) or not key:
            raise UpstreamRejected("workflow input names must be non-empty strings")
        if not isinstance(value, str):
            raise UpstreamRejected(f"workflow input {key!r} must be a string, got {type(value).__name__}")


def _correlated(workflow: _Workflow, ref: str, server_time: float, started: float, **how: Any) -> Dispatch:
    """A dispatch GitHub named no run for: polls bind it to its run by ``how`` (the
    ``correlation`` mode and its key, see ``correlation``), the workflow, ``ref``, and when it
    was sent by GitHub's clock (``server_time``) and ours (``started``)."""
    memo = {"workflow_id": workflow.id, "ref": ref, "dispatched_at": server_time, "dispatched_local": started}
    return Dispatch(workflow_id=str(workflow.id), state={**how, **memo})


def _rejects_run_details(exc: GithubException) -> bool:
    return exc.status in (400, 422) and "return_run_details" in github_message(exc)


def _server_time(headers: Mapping[str, Any], fallback: float) -> float:
    value = {str(k).lower(): v for k, v in headers.items()}.get("date")
    try:
        return parsedate_to_datetime(value).timestamp() if value else fallback
    except (TypeError, ValueError):
        return fallback
