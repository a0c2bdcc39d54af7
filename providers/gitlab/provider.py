"""``GitLabProvider``: GitLab CI pipelines on gitlab.com or self-managed GitLab."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gitlab

from flashfusion.plugins import (
    Budget,
    Dispatch,
    InboundDelivery,
    InboundEvent,
    Pipeline,
    PipelineConfigError,
    Provider,
    ProviderError,
    RepositoryLinks,
    RunRef,
    RunSnapshot,
    UpstreamAuthError,
)
from flashfusion.providers.gitlab import client as gl_client
from flashfusion.providers.gitlab import events, mapping
from flashfusion.providers.gitlab.artifacts import GitLabResults
from flashfusion.providers.gitlab.polling import ProjectPoller, ProjectWatch

INPUTS_AS = ("variables", "inputs")
PIPELINE_OPTIONS = {
    "inputs_as": "how request inputs reach GitLab: 'variables' (CI variables) or 'inputs' (typed spec:inputs)",
    "trigger_token_env": "environment variable holding this project's pipeline trigger token",
    "environment": "name of the environment whose external_url becomes the run's deployment_url",
}
DEVELOPER_ACCESS = 30


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``[providers.gitlab]`` table."""

    url: str = "https://gitlab.com"
    token_env: str = "GITLAB_TOKEN"
    trigger_token_env: str | None = None
    poll_interval_seconds: float = 10
    timeout_seconds: float = 15
    ssl_verify: bool | str = True
    steps_refresh_seconds: float = 0
    webhook_secret_env: str | None = None
    webhook_signing_token_env: str | None = None
    reconcile_interval_seconds: float = 300

    def __post_init__(self) -> None:
        # build_settings() lets any value through an ``X | None`` annotation: check here too.
        for key, types in _SETTING_TYPES.items():
            value = getattr(self, key)
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise PipelineConfigError(key, f"expected {names}, got {type(value).__name__}")
        if not self.url.startswith(("https://", "http://")):
            raise PipelineConfigError("url", f"must start with https:// (got {self.url!r})")
        if "/api/v4" in self.url:
            raise PipelineConfigError("url", "give the GitLab base URL, without /api/v4")
        if not self.token_env:
            raise PipelineConfigError("token_env", "must name an environment variable")
        if self.poll_interval_seconds < 0:
            raise PipelineConfigError("poll_interval_seconds", "must not be negative")
        if self.timeout_seconds <= 0:
            raise PipelineConfigError("timeout_seconds", "must be positive")
        if self.reconcile_interval_seconds <= 0:
            raise PipelineConfigError("reconcile_interval_seconds", "must be positive")
        if self.steps_refresh_seconds < 0:
            raise PipelineConfigError("steps_refresh_seconds", "must not be negative (0 turns it off)")


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "token_env": (str,),
    "trigger_token_env": (str, type(None)),
    "poll_interval_seconds": (int, float),
    "timeout_seconds": (int, float),
    "ssl_verify": (bool, str),
    "steps_refresh_seconds": (int, float),
    "webhook_secret_env": (str, type(None)),
    "webhook_signing_token_env": (str, type(None)),
    "reconcile_interval_seconds": (int, float),
}


GitLabSettings = Settings  # the name inside GitLabProvider, where ``Settings`` is the class attribute


class GitLabProvider(GitLabResults, Provider):
    """Dispatch, poll and cancel GitLab CI pipelines through python-gitlab."""

    name = "gitlab"
    Settings = Settings
    capabilities = frozenset({"cancel", "returns_run_id", "deployments", "results"})
    webhook_events = ("Pipeline events", "Job events", "Deployment events", "Push events")

    def __init__(
        self, settings: GitLabSettings, *, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(settings, env=env)
        self.clock = clock
        self.throttle = gl_client.Throttle(clock)
        self._lock = threading.Lock()
        self._client: gitlab.Gitlab | None = None
        self._watches: dict[str, ProjectWatch] = {}

    # -- configuration ------------------------------------------------------------------------

    def validate(self, pipeline: Pipeline) -> None:
        repo = (pipeline.repository_name or "").strip()
        if not repo:
            raise PipelineConfigError("repository_name", "required: the project path (group/project) or numeric id")
        if not repo.isdigit() and (
            "/" not in repo or "//" in repo or repo != repo.strip("/") or any(c.isspace() for c in repo)
        ):
            raise PipelineConfigError(
                "repository_name", f"expected a project path like 'group/sub/project' or a numeric id, got {repo!r}"
            )
        if not pipeline.branch:
            raise PipelineConfigError("branch", "required: the ref pipelines run on")
        for key, value in pipeline.options.items():
            if key not in PIPELINE_OPTIONS:
                known = ", ".join(sorted(PIPELINE_OPTIONS))
                raise PipelineConfigError(key, f"not a GitLab pipeline option (known: {known})")
            if not isinstance(value, str) or not value:
                raise PipelineConfigError(key, "expected a non-empty string")
        if pipeline.option("inputs_as", "variables") not in INPUTS_AS:
            raise PipelineConfigError("inputs_as", f"expected one of {', '.join(INPUTS_AS)}")

    def check(self, pipeline: Pipeline) -> list[str]:
        try:
            gl = self._gitlab(pipeline)
            trigger_env = self._trigger_env(pipeline)
            if trigger_env and not self.env.get(trigger_env):
                return [
                    f"gitlab: pipeline {pipeline.id!r}: environment variable {trigger_env} (trigger token) is not set"
                ]
            project = gl.projects.get(_project_id(pipeline))
        except ProviderError as exc:
            return [exc.message]
        except (gitlab.GitlabError, OSError) as exc:
            return [self._translate(exc, "checking the project", pipeline).message]
        access = _access_level(project.asdict())
        if access is not None and access < DEVELOPER_ACCESS and not self._trigger_env(pipeline):
            return [
                f"gitlab: pipeline {pipeline.id!r}: the token has access level {access} on "
                f"{pipeline.repository_name!r}; creating pipelines needs Developer (30) or a trigger token"
            ]
        return []

    # -- runs ---------------------------------------------------------------------------------

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        gl = self._gitlab(pipeline)
        project = gl.projects.get(_project_id(pipeline), lazy=True)
        as_inputs = pipeline.option("inputs_as", "variables") == "inputs"
        values = {str(k): str(v) for k, v in inputs.items()}
        trigger_env = self._trigger_env(pipeline)
        try:
            if trigger_env:
                trigger_token = self.env.get(trigger_env)
                if not trigger_token:
                    raise UpstreamAuthError(
                        f"gitlab: pipeline {pipeline.id!r}: environment variable "
                        f"{trigger_env} (trigger token) is not set"
                    )
                created = project.trigger_pipeline(
                    ref, trigger_token, variables={} if as_inputs else values, inputs=values if as_inputs else {}
                )
            else:
                data: dict[str, Any] = {"ref": ref}
                if as_inputs:
                    data["inputs"] = values
                elif values:
                    data["variables"] = [{"key": k, "value": v, "variable_type": "env_var"} for k, v in values.items()]
                created = project.pipelines.create(data)
        except (gitlab.GitlabError, OSError) as exc:
            error = self._translate(exc, "creating a pipeline", pipeline)
            if trigger_env and isinstance(exc, gitlab.GitlabError) and exc.response_code == 404:
                error = UpstreamAuthError(
                    f"gitlab: creating a pipeline for pipeline {pipeline.id!r}: GitLab "
                    f"refused the trigger token from {trigger_env} or cannot find "
                    f"project {pipeline.repository_name!r} (HTTP 404)"
                )
            raise error from exc
        body = created.asdict()
        project_id = body.get("project_id") or _project_id(pipeline)
        watch = self._watch(pipeline)
        with watch.lock:
            watch.watch(str(body["id"]), self.clock())
        return Dispatch(
            workflow_id=str(project_id),
            upstream_id=str(body["id"]),
            api_url=f"{gl.api_url}/projects/{project_id}/pipelines/{body['id']}",
            html_url=body.get("web_url"),
            provider_status=body.get("status"),
            state={
                "project_id": project_id,
                "updated_at": body.get("updated_at") or body.get("created_at"),
                "status": body.get("status"),
                "created_at": body.get("created_at"),
            },
        )

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """One pipelines list request per project per cycle; see ``polling``.

        Returns ``[]`` without any request while GitLab's rate limit says to hold off."""
        if not any(r.upstream_id for r in runs) or self.throttle.wait_seconds() > 0:
            return []
        watch = self._watch(pipeline)
        with watch.lock:
            return self._poller(pipeline, watch).poll(runs)

    # -- webhooks in (see events) -------------------------------------------------------------

    def verify_delivery(self, headers: Mapping[str, str], body: bytes) -> InboundDelivery:
        s = self.settings
        token = self.env.get(s.webhook_secret_env) if s.webhook_secret_env else None
        signing = self.env.get(s.webhook_signing_token_env) if s.webhook_signing_token_env else None
        return events.verify(headers, body, token, signing)

    def register_webhook(self, pipeline: Pipeline, url: str) -> str:
        s = self.settings
        token = self.env.get(s.webhook_secret_env or "")
        if not token:
            raise ProviderError("gitlab: set webhook_secret_env and its environment variable first")
        data = {
            "url": url,
            "token": token,
            "pipeline_events": True,
            "job_events": True,
            "deployment_events": True,
            "push_events": True,
            "enable_ssl_verification": True,
        }
        signing = self.env.get(s.webhook_signing_token_env or "")
        if signing:
            data["signing_token"] = signing
        project = self._gitlab(pipeline).projects.get(_project_id(pipeline), lazy=True)
        try:
            hook = project.hooks.create(data)
        except (gitlab.GitlabError, OSError) as exc:
            raise self._translate(exc, "creating the project webhook", pipeline) from exc
        return f"gitlab webhook {hook.get_id()} on {pipeline.repository_name} -> {url}"

    def parse_event(self, delivery: InboundDelivery, headers: Mapping[str, str], body: bytes) -> InboundEvent | None:
        return events.parse(delivery.event, body)

    def event_matches(self, pipeline: Pipeline, event: InboundEvent) -> bool:
        return events.project_matches(pipeline, event)

    def event_snapshots(self, pipeline: Pipeline, event: InboundEvent, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """A job's step from a ``Job Hook``'s body, an unfinished pipeline from its ``Pipeline
        Hook``'s body; a finished one read again with the polling code (see ``events``)."""
        watch = self._watch(pipeline)
        watch.hooked_at = self.clock()
        job, status = event.data.get("job"), event.data.get("status")
        if job is not None:
            jobs = [job]
            snaps = [s for s in (events.job_snapshot(run, job) for run in runs) if s is not None]
        elif status is not None and status not in mapping.TERMINAL:
            jobs = list(event.data.get("builds") or [])
            snaps = [
                s
                for s in (events.pipeline_snapshot(run, str(status), jobs, event.data.get("html_url")) for run in runs)
                if s is not None
            ]
        else:
            if not runs or self.throttle.wait_seconds() > 0:
                return []
            with watch.lock:
                return self._poller(pipeline, watch).refresh(runs)
        if (
            not any(j.get("environment") and j.get("status") == "success" for j in jobs)
            or self.throttle.wait_seconds() > 0
        ):
            return snaps
        with watch.lock:  # a deploying job succeeded: its URL, as polling would find it now
            return self._poller(pipeline, watch).with_deployments({r.id: r for r in runs}, snaps)

    def repository_links(self, pipeline: Pipeline) -> RepositoryLinks | None:
        project = _project_id(pipeline)
        if isinstance(project, int):
            return None  # a numeric id has no web path without asking the API
        return RepositoryLinks(f"{self.settings.url.rstrip('/')}/{project}", commit_path="-/commit", tree_path="-/tree")

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        if not run.upstream_id:
            raise ProviderError(f"gitlab: run {run.id!r} of pipeline {pipeline.id!r} has no GitLab pipeline yet")
        gl = self._gitlab(pipeline)
        project = gl.projects.get(_project_id(pipeline), lazy=True)
        try:
            project.pipelines.get(run.upstream_id, lazy=True).cancel()
        except (gitlab.GitlabError, OSError) as exc:
            raise self._translate(exc, "cancelling a pipeline", pipeline) from exc

    def budget(self) -> Budget | None:
        return self.throttle.budget()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.session.close()
                self._client = None

    # -- helpers ------------------------------------------------------------------------------

    def _gitlab(self, pipeline: Pipeline) -> gitlab.Gitlab:
        with self._lock:
            if self._client is None:
                token = self.env.get(self.settings.token_env)
                if not token:
                    raise UpstreamAuthError(
                        f"gitlab: pipeline {pipeline.id!r}: environment variable "
                        f"{self.settings.token_env} (API token) is not set"
                    )
                self._client = gl_client.make_client(
                    self.settings.url,
                    token,
                    self.settings.timeout_seconds,
                    self.throttle,
                    ssl_verify=self.settings.ssl_verify,
                )
            return self._client

    def _poller(self, pipeline: Pipeline, watch: ProjectWatch) -> ProjectPoller:
        return ProjectPoller(
            self._gitlab(pipeline).projects.get(_project_id(pipeline), lazy=True),
            watch,
            self.throttle,
            lambda exc: self._translate(exc, "polling", pipeline),
            clock=self.clock,
            freshness=self.settings.poll_interval_seconds / 2,
            refresh=self.settings.steps_refresh_seconds,
            environment=pipeline.option("environment"),
            hooks_within=self.settings.reconcile_interval_seconds,
        )

    def _watch(self, pipeline: Pipeline) -> ProjectWatch:
        key = _project_id(pipeline)
        with self._lock:
            return self._watches.setdefault(str(key), ProjectWatch())

    def _trigger_env(self, pipeline: Pipeline) -> str | None:
        return pipeline.option("trigger_token_env") or self.settings.trigger_token_env

    def _translate(self, exc: Exception, action: str, pipeline: Pipeline) -> ProviderError:
        secrets = tuple(
            v for v in (self.env.get(self.settings.token_env), self.env.get(self._trigger_env(pipeline) or "")) if v
        )
        return gl_client.translate(exc, action=action, pipeline_id=pipeline.id, throttle=self.throttle, secrets=secrets)


def _project_id(pipeline: Pipeline) -> str | int:
    repo = pipeline.repository_name.strip()
    return int(repo) if repo.isdigit() else repo


def _access_level(project: Mapping[str, Any]) -> int | None:
    permissions = project.get("permissions") or {}
    levels = [(permissions.get(k) or {}).get("access_level") for k in ("project_access", "group_access")]
    known = [lv for lv in levels if isinstance(lv, int)]
    return max(known) if known else None
