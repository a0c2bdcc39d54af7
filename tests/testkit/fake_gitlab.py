"""A fake GitLab REST v4 server for tests and benchmarks.

A real HTTP server on 127.0.0.1 (ephemeral port) that answers the calls python-gitlab 8.6
makes (``shared/PROVIDER-APIS.md`` section B), with bodies built from the documented
examples in ``shared/fixtures/gitlab`` (URLs rewritten to the fake's own base).

Usage::

    with FakeGitLab() as fake:
        project = fake.add_project("group/sub/project")
        gl = gitlab.Gitlab(fake.url, private_token=fake.token)
        ...
        fake.advance(pipeline_id)          # next stage of the scripted state machine
        fake.counts["pipelines.list"]      # requests per route

Routing uses the undecoded request path, so ``group%2Fsub%2Fproject`` and the numeric id
both address the same project while ``group/sub/project`` does not (as on real GitLab).

Pipelines follow a stage-by-stage script: on creation the first stage's jobs are
``pending``; each ``advance()`` finishes the running stage (each job ends with its
``JobSpec.outcome``) and starts the next, ending in ``success``/``failed``. A job with
``when="manual"`` stops the pipeline in ``manual`` until ``play(job_id)``. A job with an
``environment`` records a deployment that succeeds with the job. ``set_status`` and
``set_job`` force any state directly.

Traffic control: ``set_rate_limit`` / ``exhaust_rate_limit`` (every answer carries
``RateLimit-*``; when the budget is used up GitLab answers 429 with ``Retry-After``),
``throttle`` (the next N requests get 429), ``fail`` (scripted error answers) and ``delay``
(slow answers for timeout tests).

Counters: ``counts`` (a ``Counter`` by route name, e.g. ``pipelines.list``, ``pipeline``,
``pipeline.jobs``, ``deployments``, ``pipeline.create``), ``total``, ``requests`` (every
``Request`` with its raw path, query, status and list length), ``reset_counters()``.
A bug in the fake answers 500 and is kept in ``errors``.

Auth: ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``) must be a token from ``add_token`` (the
constructor's ``token`` has scope ``api`` and Maintainer access); ``read_api`` tokens cannot
write, tokens below Developer cannot create or cancel pipelines. The trigger API checks the
body's ``token`` against ``add_trigger_token``.
"""

from __future__ import annotations

import copy
import gzip
import io
import itertools
import json
import re
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from flashfusion.plugins.testing import LoopbackFake, LoopbackHandler
from testkit.bodies import same_named
from testkit.fake_gitlab_hooks import GitLabHooks, emits

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "gitlab"  # copied from shared/fixtures (see its README)

TERMINAL_PIPELINE = {"success", "failed", "canceled", "skipped"}
ACTIVE_JOB = {"created", "pending", "running", "waiting_for_resource", "preparing", "scheduled", "manual"}
DEVELOPER = 30
MAINTAINER = 40


@dataclass(frozen=True)
class JobSpec:
    """One job of a project's scripted ``.gitlab-ci.yml``."""

    name: str
    stage: str
    outcome: str = "success"
    when: str = "on_success"
    environment: str | None = None
    allow_failure: bool = False


DEFAULT_JOBS = (
    JobSpec("build", "build"),
    JobSpec("unit", "test"),
    JobSpec("lint", "test"),
    JobSpec("deploy", "deploy", environment="production"),
)


@dataclass
class Token:
    value: str
    scopes: tuple[str, ...] = ("api",)
    access_level: int = MAINTAINER
    projects: frozenset[int] | None = None  # None: every project


@dataclass
class Project:
    id: int
    path: str
    default_branch: str = "main"
    refs: set[str] = field(default_factory=lambda: {"main"})
    jobs: tuple[JobSpec, ...] = DEFAULT_JOBS
    trigger_tokens: set[str] = field(default_factory=set)
    environments: dict[str, Environment] = field(default_factory=dict)
    declared_inputs: set[str] | None = None  # None: accept any typed input


@dataclass
class Environment:
    id: int
    name: str
    external_url: str | None
    state: str = "available"


@dataclass
class Job:
    id: int
    spec: JobSpec
    status: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retried: bool = False
    archive: bytes | None = None  # the artifacts zip (artifacts:paths)
    dotenv: bytes | None = None  # the artifacts:reports:dotenv file


@dataclass
class Pipeline:
    id: int
    iid: int
    project: Project
    ref: str
    sha: str
    source: str
    status: str
    created_at: datetime
    updated_at: datetime
    jobs: list[Job] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    variables: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Deployment:
    id: int
    iid: int
    pipeline: Pipeline
    job: Job
    environment: Environment
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Request:
    """One request the fake answered, as tests inspect it."""

    method: str
    route: str
    path: str
    query: dict[str, list[str]]
    status: int
    body: Any = None
    items: int | None = None  # length of a JSON list answer


class _Reply(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _fmt(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


_URL = re.compile(r"https?://[^/\s\"']+")


def _rewrite(value: Any, base: str) -> Any:
    """Point every absolute URL of a fixture at the fake (PROVIDER-APIS.md rule 0.1)."""
    if isinstance(value, str):
        return _URL.sub(base, value)
    if isinstance(value, list):
        return [_rewrite(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, base) for k, v in value.items()}
    return value


Reply = tuple[int, Any, dict[str, str]]

# (method, path pattern under /api/v4, route name); "{x}" segments are captured raw.
_ROUTES = (
    ("GET", "projects/{project}", "project"),
    ("POST", "projects/{project}/pipeline", "pipeline.create"),
    ("POST", "projects/{project}/trigger/pipeline", "pipeline.trigger"),
    ("GET", "projects/{project}/pipelines", "pipelines.list"),
    ("GET", "projects/{project}/pipelines/{pipeline}", "pipeline"),
    ("POST", "projects/{project}/pipelines/{pipeline}/cancel", "pipeline.cancel"),
    ("POST", "projects/{project}/pipelines/{pipeline}/retry", "pipeline.retry"),
    ("GET", "projects/{project}/pipelines/{pipeline}/jobs", "pipeline.jobs"),
    ("GET", "projects/{project}/jobs/{job}", "job"),
    ("GET", "projects/{project}/jobs/{job}/artifacts", "job.artifacts"),
    ("GET", "projects/{project}/environments", "environments"),
    ("GET", "projects/{project}/environments/{environment}", "environment"),
    ("GET", "projects/{project}/deployments", "deployments"),
    ("POST", "projects/{project}/hooks", "hooks.create"),
)


class FakeGitLab(LoopbackFake):
    """The fake server. All public methods are thread-safe."""

    def __init__(self, *, token: str = "glpat-fake-api-token", per_page: int = 20, rate_limit: int = 2000) -> None:
        self.token = token
        self.default_per_page = per_page
        self.counts: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.errors: list[Exception] = []
        self._lock = threading.RLock()
        self._tokens: dict[str, Token] = {token: Token(token)}
        self._projects: dict[int, Project] = {}
        self._pipelines: dict[int, Pipeline] = {}
        self._jobs: dict[int, tuple[Pipeline, Job]] = {}
        self._deployments: list[Deployment] = []
        self._ids = {
            k: itertools.count(start)
            for k, start in (("project", 1), ("pipeline", 1000), ("job", 5000), ("env", 1), ("deployment", 1))
        }
        self._iids: Counter[int] = Counter()
        self._now = datetime.now(UTC).replace(microsecond=0)
        self._rate_limit = rate_limit
        self._rate_observed = 0
        self._rate_reset = int(time.time()) + 60
        self._throttles: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._delays: list[dict[str, Any]] = []
        self._templates: dict[str, Any] = {}
        self.hooks = GitLabHooks(self)  # webhooks out: see fake_gitlab_hooks
        self.hook_configs: list[dict[str, Any]] = []

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeGitLab:
        self.serve(_Handler, name="fake-gitlab")
        self._templates = {
            name: _rewrite(_load(name), self.url)
            for name in (
                "pipeline.json",
                "pipeline-list.json",
                "pipeline-create.json",
                "pipeline-cancel.json",
                "pipeline-jobs.json",
                "environment.json",
                "deployment-list.json",
            )
        }
        return self

    @property
    def url(self) -> str:
        """Base URL to give python-gitlab (``Gitlab(url)``); the API is under ``/api/v4``."""
        return self.origin

    # ---- setup ---------------------------------------------------------------------------

    def add_project(
        self,
        path: str,
        *,
        id: int | None = None,
        refs: Iterable[str] = ("main",),
        jobs: Iterable[JobSpec] = DEFAULT_JOBS,
        default_branch: str = "main",
    ) -> Project:
        with self._lock:
            pid = id if id is not None else next(self._ids["project"])
            project = Project(pid, path, default_branch, set(refs), tuple(jobs))
            self._projects[pid] = project
            return project

    def add_token(
        self,
        value: str,
        *,
        scopes: Iterable[str] = ("api",),
        access_level: int = MAINTAINER,
        projects: Iterable[Project] | None = None,
    ) -> Token:
        with self._lock:
            token = Token(
                value, tuple(scopes), access_level, None if projects is None else frozenset(p.id for p in projects)
            )
            self._tokens[value] = token
            return token

    def remove_token(self, value: str) -> None:
        """Revoke an access token: from now on it gets 401."""
        with self._lock:
            self._tokens.pop(value, None)

    def add_trigger_token(self, project: Project, value: str) -> None:
        with self._lock:
            project.trigger_tokens.add(value)

    def add_environment(self, project: Project, name: str, external_url: str | None) -> Environment:
        with self._lock:
            env = Environment(next(self._ids["env"]), name, external_url)
            project.environments[name] = env
            return env

    # ---- scripted state --------------------------------------------------------------------

    def tick(self, seconds: float = 1.0) -> datetime:
        """Advance the server clock (every mutation also moves it on by one second)."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    @emits
    def create_pipeline(
        self, project: Project, ref: str | None = None, *, source: str = "push", variables: dict[str, str] | None = None
    ) -> int:
        """Create a pipeline without HTTP (e.g. a push by someone else). Returns its id."""
        with self._lock:
            return self._new_pipeline(project, ref or project.default_branch, source, variables or {}, {}).id

    def pipeline(self, pipeline_id: int) -> Pipeline:
        with self._lock:
            return self._pipelines[pipeline_id]

    def jobs(self, pipeline_id: int) -> list[Job]:
        with self._lock:
            return list(self._pipelines[pipeline_id].jobs)

    def job_id(self, pipeline_id: int, name: str) -> int:
        """Id of the latest attempt of job ``name``."""
        with self._lock:
            return max(j.id for j in self._pipelines[pipeline_id].jobs if j.spec.name == name)

    @emits
    def advance(self, pipeline_id: int) -> str:
        """Move the pipeline one stage on; returns its new status."""
        with self._lock:
            p = self._pipelines[pipeline_id]
            if p.status in TERMINAL_PIPELINE:
                raise ValueError(f"pipeline {pipeline_id} is already {p.status}")
            now = self._touch(p)
            for job in self._latest(p):
                if job.status == "running":
                    self._finish_job(p, job, job.spec.outcome, now)
            self._start_next_stage(p, now)
            return p.status

    @emits
    def play(self, job_id: int) -> None:
        """Start a manual job (it runs at the next ``advance``)."""
        with self._lock:
            p, job = self._jobs[job_id]
            if job.status != "manual":
                raise ValueError(f"job {job_id} is {job.status}, not manual")
            job.status = "pending"
            p.status = "pending" if p.started_at is None else "running"
            self._touch(p)

    @emits
    def set_status(self, pipeline_id: int, status: str) -> None:
        """Force a pipeline status (times follow: terminal statuses set ``finished_at``)."""
        with self._lock:
            p = self._pipelines[pipeline_id]
            now = self._touch(p)
            p.status = status
            if status in ("running", "canceling") and p.started_at is None:
                p.started_at = now
            if status in TERMINAL_PIPELINE:
                p.finished_at = now

    @emits
    def set_job(self, job_id: int, status: str) -> None:
        """Force a job status without touching the pipeline's ``updated_at``."""
        with self._lock:
            p, job = self._jobs[job_id]
            now = self._now
            if status == "running" and job.started_at is None:
                job.started_at = now
            if status in ("success", "failed", "canceled"):
                job.started_at = job.started_at or now
                job.finished_at = now
            job.status = status

    @emits
    def retry_job(self, job_id: int) -> int:
        """Retry a finished job: the old attempt is kept as retried, a new one is pending."""
        with self._lock:
            p, old = self._jobs[job_id]
            old.retried = True
            now = self._touch(p)
            new = Job(next(self._ids["job"]), old.spec, "pending", now)
            p.jobs.append(new)
            self._jobs[new.id] = (p, new)
            p.status, p.finished_at = "running", None
            return new.id

    # ---- traffic control -------------------------------------------------------------------

    def add_job_artifacts(self, job_id: int, files: dict[str, bytes], *, dotenv: bytes | None = None) -> None:
        """Give a job an artifacts archive of ``files`` and, optionally, a dotenv report."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, data in files.items():
                archive.writestr(path, data)
        with self._lock:
            _, job = self._jobs[job_id]
            job.archive, job.dotenv = buffer.getvalue(), dotenv

    def set_rate_limit(self, limit: int, *, observed: int = 0, reset_in: int = 60) -> None:
        """Every answer carries ``RateLimit-*``; once ``observed`` reaches ``limit`` GitLab
        answers 429 with ``Retry-After`` until this is called again."""
        with self._lock:
            self._rate_limit, self._rate_observed = limit, observed
            self._rate_reset = int(time.time()) + reset_in

    @property
    def rate_remaining(self) -> int:
        """``RateLimit-Remaining`` of the latest answer (every answer carries it)."""
        with self._lock:
            return max(0, self._rate_limit - self._rate_observed)

    def exhaust_rate_limit(self, reset_in: int = 60) -> None:
        with self._lock:
            self.set_rate_limit(self._rate_observed, observed=self._rate_observed, reset_in=reset_in)

    def throttle(
        self,
        count: int = 1,
        *,
        retry_after: int | None = 30,
        route: str | None = None,
        after: int = 0,
        body: Any = "Retry later\n",
    ) -> None:
        """The next ``count`` requests (of ``route``, if given) get 429, once ``after`` more
        such requests have been answered normally."""
        with self._lock:
            self._throttles.append(
                {"count": count, "route": route, "retry_after": retry_after, "after": after, "body": body}
            )

    def fail(self, route: str, status: int, body: Any, *, count: int = 1) -> None:
        """The next ``count`` requests of ``route`` get ``status`` with JSON ``body``."""
        with self._lock:
            self._failures.append({"count": count, "route": route, "status": status, "body": body})

    def delay(self, route: str, seconds: float, *, count: int = 1) -> None:
        with self._lock:
            self._delays.append({"count": count, "route": route, "seconds": seconds})

    def reset_counters(self) -> None:
        with self._lock:
            self.counts.clear()
            self.requests.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    # ---- internals: state machine ------------------------------------------------------------

    def _touch(self, p: Pipeline) -> datetime:
        self._now += timedelta(seconds=1)
        p.updated_at = self._now
        return self._now

    def _new_pipeline(
        self, project: Project, ref: str, source: str, variables: dict[str, str], inputs: dict[str, Any]
    ) -> Pipeline:
        self._now += timedelta(seconds=1)
        self._iids[project.id] += 1
        sha = f"{abs(hash((project.id, ref))) % 16**12:012x}".ljust(40, "0")
        p = Pipeline(
            next(self._ids["pipeline"]),
            self._iids[project.id],
            project,
            ref,
            sha,
            source,
            "pending",
            self._now,
            self._now,
            variables=variables,
            inputs=inputs,
        )
        for spec in project.jobs:
            job = Job(next(self._ids["job"]), spec, "created", self._now)
            p.jobs.append(job)
            self._jobs[job.id] = (p, job)
        self._pipelines[p.id] = p
        first = self._stages(p)[0] if p.jobs else None
        for job in self._latest(p):
            if job.spec.stage == first:
                job.status = "manual" if job.spec.when == "manual" else "pending"
        if not p.jobs:
            p.status = "skipped"
        return p

    @staticmethod
    def _latest(p: Pipeline) -> list[Job]:
        return [j for j in p.jobs if not j.retried]

    @staticmethod
    def _stages(p: Pipeline) -> list[str]:
        return list(dict.fromkeys(j.spec.stage for j in p.jobs))

    def _finish_job(self, p: Pipeline, job: Job, status: str, now: datetime) -> None:
        job.status, job.finished_at = status, now
        job.started_at = job.started_at or now
        for dep in self._deployments:
            if dep.job is job:
                dep.status, dep.updated_at = ("success" if status == "success" else status), now

    def _start_next_stage(self, p: Pipeline, now: datetime) -> None:
        jobs = self._latest(p)
        blocked = any(j.status == "failed" and not j.spec.allow_failure for j in jobs)
        pending = [j for j in jobs if j.status == "pending"]
        if not pending and not blocked:
            waiting_stage = next(
                (s for s in self._stages(p) if any(j.spec.stage == s and j.status == "created" for j in jobs)), None
            )
            for job in jobs:
                if job.spec.stage == waiting_stage and job.status == "created":
                    job.status = "manual" if job.spec.when == "manual" else "pending"
            pending = [j for j in jobs if j.status == "pending"]
        if blocked:
            for job in jobs:
                if job.status in ("created", "pending", "manual"):
                    job.status = "skipped"
            pending = []
        for job in pending:
            job.status, job.started_at = "running", now
            if job.spec.environment:
                self._deploy(p, job, now)
        if pending:
            p.status = "running"
            p.started_at = p.started_at or now
        elif any(j.status == "manual" for j in jobs):
            p.status = "manual"
        else:
            p.status = "failed" if blocked else "success"
            p.finished_at = now

    def _deploy(self, p: Pipeline, job: Job, now: datetime) -> None:
        env = p.project.environments.get(job.spec.environment or "")
        if env is None:
            env = Environment(next(self._ids["env"]), job.spec.environment or "", None)
            p.project.environments[env.name] = env
        self._deployments.append(
            Deployment(next(self._ids["deployment"]), len(self._deployments) + 1, p, job, env, "running", now, now)
        )

    # ---- internals: bodies ---------------------------------------------------------------------

    def _web(self, project: Project, suffix: str) -> str:
        return f"{self.url}/{project.path}/-/{suffix}"

    def _duration(self, start: datetime | None, end: datetime | None) -> float | None:
        return None if start is None or end is None else (end - start).total_seconds()

    def _pipeline_body(self, p: Pipeline, keys_from: str = "pipeline.json") -> dict[str, Any]:
        body = copy.deepcopy(self._templates["pipeline.json"])
        duration = self._duration(p.started_at, p.finished_at)
        body.update(
            same_named(p, "id", "iid", "sha", "ref", "status", "source"),
            project_id=p.project.id,
            created_at=_fmt(p.created_at),
            updated_at=_fmt(p.updated_at),
            web_url=self._web(p.project, f"pipelines/{p.id}"),
            started_at=_fmt(p.started_at),
            finished_at=_fmt(p.finished_at),
            duration=None if duration is None else int(duration),
            queued_duration=self._duration(p.created_at, p.started_at),
        )
        body["detailed_status"] = dict(
            body["detailed_status"],
            icon=f"status_{p.status}",
            text=p.status,
            label=p.status,
            group=p.status,
            tooltip=p.status,
            details_path=f"/{p.project.path}/-/pipelines/{p.id}",
        )
        template = self._templates[keys_from]
        keys = template[0].keys() if isinstance(template, list) else template.keys()
        return {k: body.get(k) for k in keys}

    def job_fields(self, job: Job, time: Callable[[datetime | None], str | None]) -> dict[str, Any]:
        """What the jobs API and both webhooks tell of a job, times written by ``time`` (the
        ``Job Hook`` puts ``build_`` before each name)."""
        return {
            "id": job.id,
            "name": job.spec.name,
            "stage": job.spec.stage,
            "status": job.status,
            "allow_failure": job.spec.allow_failure,
            "created_at": time(job.created_at),
            "started_at": time(job.started_at),
            "finished_at": time(job.finished_at),
            "duration": self._duration(job.started_at, job.finished_at),
            "queued_duration": self._duration(job.created_at, job.started_at),
        }

    def _job_body(self, p: Pipeline, job: Job) -> dict[str, Any]:
        body = copy.deepcopy(self._templates["pipeline-jobs.json"][0])
        body.update(
            self.job_fields(job, _fmt),
            ref=p.ref,
            web_url=self._web(p.project, f"jobs/{job.id}"),
            artifacts_expire_at=None,
            artifacts=self._artifact_entries(job),
            pipeline={"id": p.id, "project_id": p.project.id, "ref": p.ref, "sha": p.sha, "status": p.status},
        )
        body["commit"] = dict(body["commit"], id=p.sha, short_id=p.sha[:8])
        if job.status == "failed":
            body["failure_reason"] = "script_failure"
        else:
            body.pop("failure_reason", None)
        return body

    @staticmethod
    def _artifact_entries(job: Job) -> list[dict[str, Any]]:
        """The job's ``artifacts`` list, as GitLab's jobs API shows it."""
        entries = []
        if job.archive is not None:
            entries.append(
                {"file_type": "archive", "size": len(job.archive), "filename": "artifacts.zip", "file_format": "zip"}
            )
        if job.dotenv is not None:
            entries.append(
                {
                    "file_type": "dotenv",
                    "size": len(gzip.compress(job.dotenv)),
                    "filename": ".env.gz",
                    "file_format": "gzip",
                }
            )
        return entries

    def _deployment_body(self, d: Deployment) -> dict[str, Any]:
        body = copy.deepcopy(self._templates["deployment-list.json"][0])
        deployable = {k: v for k, v in self._job_body(d.pipeline, d.job).items() if k in body["deployable"]}
        deployable["pipeline"] = {
            "created_at": _fmt(d.pipeline.created_at),
            "id": d.pipeline.id,
            "ref": d.pipeline.ref,
            "sha": d.pipeline.sha,
            "status": d.pipeline.status,
            "updated_at": _fmt(d.pipeline.updated_at),
            "web_url": self._web(d.pipeline.project, f"pipelines/{d.pipeline.id}"),
        }
        body.update(
            same_named(d, "id", "iid", "status"),
            ref=d.pipeline.ref,
            sha=d.pipeline.sha,
            created_at=_fmt(d.created_at),
            updated_at=_fmt(d.updated_at),
            deployable=deployable,
            environment={
                "external_url": d.environment.external_url,
                "id": d.environment.id,
                "name": d.environment.name,
            },
        )
        return body

    def _environment_body(self, project: Project, env: Environment, full: bool) -> dict[str, Any]:
        body = copy.deepcopy(self._templates["environment.json"])
        slug = re.sub(r"[^a-z0-9]+", "-", env.name.lower()).strip("-")
        body.update(
            id=env.id,
            name=env.name,
            slug=slug,
            external_url=env.external_url,
            state=env.state,
            logs_api_path=f"/{project.path}/-/logs/k8s.json?environment_name={quote(env.name, safe='')}",
        )
        last = [d for d in self._deployments if d.environment is env]
        if full:
            body["last_deployment"] = self._deployment_body(last[-1]) if last else None
        else:
            body.pop("last_deployment", None)
            body.pop("cluster_agent", None)
        return body

    def _project_body(self, project: Project, token: Token) -> dict[str, Any]:
        name = project.path.rsplit("/", 1)[-1]
        return {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path,
            "name_with_namespace": " / ".join(project.path.split("/")),
            "default_branch": project.default_branch,
            "web_url": f"{self.url}/{project.path}",
            "permissions": {
                "project_access": {"access_level": token.access_level, "notification_level": 3},
                "group_access": None,
            },
        }

    # ---- internals: HTTP ------------------------------------------------------------------------

    def _handle(self, handler: LoopbackHandler, method: str) -> None:
        raw_path, _, raw_query = handler.path.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        payload = handler.request_body()
        body: Any = json.loads(payload) if payload else None
        route, params = self._match(method, raw_path)
        delay = 0.0
        with self._lock:
            self.counts[route] += 1
            for d in self._delays:
                if d["count"] > 0 and d["route"] == route:
                    d["count"] -= 1
                    delay = d["seconds"]
                    break
        if delay:
            time.sleep(delay)
        with self._lock:
            try:
                status, answer, headers = self._dispatch(method, route, params, query, body, handler.headers)
            except _Reply as reply:
                status, answer, headers = reply.status, reply.body, reply.headers
            except Exception as exc:  # a bug in the fake: answer like GitLab would, keep it visible
                self.errors.append(exc)
                status, answer, headers = 500, {"message": "500 Internal Server Error"}, {}
            headers = {**self._rate_headers(), **headers}
            items = len(answer) if isinstance(answer, list) else None
            self.requests.append(Request(method, route, raw_path, query, status, body, items))
        if isinstance(answer, bytes):
            data = answer
        elif isinstance(answer, (dict, list)):
            data = json.dumps(answer).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            data = str(answer).encode()
            headers["Content-Type"] = "text/plain; charset=utf-8"
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _match(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
        if not raw_path.startswith("/api/v4/"):
            return "unknown", {}
        segments = raw_path[len("/api/v4/") :].rstrip("/").split("/")
        for verb, pattern, name in _ROUTES:
            parts = pattern.split("/")
            if verb != method or len(parts) != len(segments):
                continue
            params: dict[str, str] = {}
            for part, seg in zip(parts, segments, strict=False):
                if part.startswith("{"):
                    params[part[1:-1]] = seg
                elif part != seg:
                    break
            else:
                return name, params
        return "unknown", {}

    def _rate_headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self._rate_limit),
            "RateLimit-Observed": str(self._rate_observed),
            "RateLimit-Remaining": str(max(0, self._rate_limit - self._rate_observed)),
            "RateLimit-Reset": str(self._rate_reset),
            "RateLimit-ResetTime": formatdate(self._rate_reset, usegmt=True),
        }

    @emits
    def _dispatch(
        self, method: str, route: str, params: dict[str, str], query: dict[str, list[str]], body: Any, headers: Any
    ) -> Reply:
        if route == "unknown":
            raise _Reply(404, {"error": "404 Not Found"})
        for t in self._throttles:
            if t["count"] > 0 and t["route"] in (None, route):
                if t["after"] > 0:
                    t["after"] -= 1
                    continue
                t["count"] -= 1
                extra = {"RateLimit-Remaining": "0"}
                if t["retry_after"] is not None:
                    extra["Retry-After"] = str(t["retry_after"])
                raise _Reply(429, t["body"], extra)
        if self._rate_observed >= self._rate_limit:
            raise _Reply(429, "Retry later\n", {"Retry-After": str(max(1, self._rate_reset - int(time.time())))})
        self._rate_observed += 1
        for f in self._failures:
            if f["count"] > 0 and f["route"] == route:
                f["count"] -= 1
                raise _Reply(f["status"], f["body"])
        token = self._authenticate(headers, route, body)
        project = self._project(params["project"], token)
        handler: Callable[..., Reply] = getattr(self, "_r_" + route.replace(".", "_"))
        return handler(project, token, params, query, body)

    def _authenticate(self, headers: Any, route: str, body: Any) -> Token | None:
        value = headers.get("PRIVATE-TOKEN")
        auth = headers.get("Authorization") or ""
        if value is None and auth.startswith("Bearer "):
            value = auth[len("Bearer ") :]
        token = self._tokens.get(value) if value else None
        if route == "pipeline.trigger" and token is None:
            return None  # the trigger token in the body authenticates
        if token is None:
            raise _Reply(401, {"message": "401 Unauthorized"})
        return token

    def _project(self, raw_id: str, token: Token | None) -> Project:
        key = unquote(raw_id)
        project = (
            self._projects.get(int(key))
            if key.isdigit()
            else next((p for p in self._projects.values() if p.path == key), None)
        )
        visible = token is None or token.projects is None or (project is not None and project.id in token.projects)
        if project is None or not visible:
            raise _Reply(404, {"message": "404 Project Not Found"})
        return project

    def _pipeline_of(self, project: Project, raw_id: str) -> Pipeline:
        p = self._pipelines.get(int(raw_id)) if raw_id.isdigit() else None
        if p is None or p.project is not project:
            raise _Reply(404, {"message": "404 Not found"})
        return p

    def _job_of(self, project: Project, raw_id: str) -> tuple[Pipeline, Job]:
        found = self._jobs.get(int(raw_id)) if raw_id.isdigit() else None
        if found is None or found[0].project is not project:
            raise _Reply(404, {"message": "404 Not found"})
        return found

    @staticmethod
    def _require_write(token: Token | None) -> None:
        if token is None:
            return
        if "api" not in token.scopes:
            raise _Reply(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api",
                },
            )
        if token.access_level < DEVELOPER:
            raise _Reply(403, {"message": "403 Forbidden"})

    def _paginate(self, items: list[Any], query: dict[str, list[str]], path: str) -> Reply:
        per_page = min(100, max(1, int(query.get("per_page", [self.default_per_page])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }

        def link(n: int) -> str:
            q = {k: v for k, v in query.items() if k != "page"}
            q["page"] = [str(n)]
            return f"{self.url}{path}?{urlencode(q, doseq=True)}"

        rels = [(page + 1, "next")] if page < pages else []
        rels += [(page - 1, "prev")] if page > 1 else []
        rels += [(1, "first"), (pages, "last")]
        headers["Link"] = ", ".join(f'<{link(n)}>; rel="{rel}"' for n, rel in rels)
        return 200, chunk, headers

    # ---- route handlers ------------------------------------------------------------------------

    def _r_project(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        return 200, self._project_body(project, token), {}

    def _check_ref_and_inputs(self, project: Project, ref: Any, inputs: Any) -> None:
        if not ref:
            raise _Reply(400, {"error": "ref is missing"})
        if ref not in project.refs:
            raise _Reply(400, {"message": {"base": ["Reference not found"]}})
        if inputs and project.declared_inputs is not None:
            unknown = sorted(set(inputs) - project.declared_inputs)
            if unknown:
                raise _Reply(400, {"message": {"base": [f"Unknown input: {', '.join(unknown)}"]}})

    def _r_pipeline_create(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        self._require_write(token)
        body = body or {}
        self._check_ref_and_inputs(project, body.get("ref"), body.get("inputs"))
        variables = {v["key"]: v["value"] for v in body.get("variables") or []}
        p = self._new_pipeline(project, body["ref"], "api", variables, dict(body.get("inputs") or {}))
        return 201, self._pipeline_body(p, "pipeline-create.json"), {}

    def _r_pipeline_trigger(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        body = body or {}
        if body.get("token") not in project.trigger_tokens:
            raise _Reply(404, {"message": "404 Not Found"})
        self._check_ref_and_inputs(project, body.get("ref"), body.get("inputs"))
        p = self._new_pipeline(
            project, body["ref"], "trigger", dict(body.get("variables") or {}), dict(body.get("inputs") or {})
        )
        answer = self._pipeline_body(p, "pipeline-create.json")
        answer["source"] = "trigger"
        return 201, answer, {}

    def _r_pipelines_list(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        def one(key: str) -> str | None:
            return query.get(key, [None])[0]

        items = [p for p in self._pipelines.values() if p.project is project]
        for key in ("status", "ref", "sha", "source"):
            if one(key):
                items = [p for p in items if getattr(p, key) == one(key)]
        if one("updated_after"):
            after = _parse_time(one("updated_after") or "")
            items = [p for p in items if p.updated_at > after]
        if one("updated_before"):
            before = _parse_time(one("updated_before") or "")
            items = [p for p in items if p.updated_at < before]
        order = one("order_by") or "id"
        if order not in ("id", "status", "ref", "updated_at", "user_id"):
            raise _Reply(400, {"error": "order_by does not have a valid value"})
        attr = {"user_id": "id"}.get(order, order)
        items.sort(key=lambda p: (getattr(p, attr), p.id), reverse=(one("sort") or "desc") == "desc")
        status, page, headers = self._paginate(items, query, f"/api/v4/projects/{quote(str(project.id))}/pipelines")
        return status, [self._pipeline_body(p, "pipeline-list.json") for p in page], headers

    def _r_pipeline(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        return 200, self._pipeline_body(self._pipeline_of(project, params["pipeline"])), {}

    def _r_pipeline_cancel(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        self._require_write(token)
        p = self._pipeline_of(project, params["pipeline"])
        if p.status not in TERMINAL_PIPELINE:
            now = self._touch(p)
            for job in self._latest(p):
                if job.status in ACTIVE_JOB:
                    job.status = "canceled"
                    job.finished_at = now if job.started_at else None
            p.status, p.finished_at = "canceled", now
        return 201, self._pipeline_body(p, "pipeline-cancel.json"), {}

    def _r_pipeline_retry(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        self._require_write(token)
        p = self._pipeline_of(project, params["pipeline"])
        for job in list(self._latest(p)):
            if job.status in ("failed", "canceled"):
                self.retry_job(job.id)
        return 201, self._pipeline_body(p), {}

    def _r_pipeline_jobs(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        p = self._pipeline_of(project, params["pipeline"])
        jobs = p.jobs if query.get("include_retried", ["false"])[0].lower() in ("true", "1") else self._latest(p)
        scope = query.get("scope[]") or query.get("scope")
        if scope:
            jobs = [j for j in jobs if j.status in scope]
        jobs = sorted(jobs, key=lambda j: j.id, reverse=True)
        path = f"/api/v4/projects/{project.id}/pipelines/{p.id}/jobs"
        status, page, headers = self._paginate(jobs, query, path)
        return status, [self._job_body(p, j) for j in page], headers

    def _r_job(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        return 200, self._job_body(*self._job_of(project, params["job"])), {}

    def _r_job_artifacts(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        """The archive (``file_type`` absent or ``archive``) or a report (``dotenv``, gzipped)."""
        job = self._job_of(project, params["job"])[1]
        file_type = query.get("file_type", ["archive"])[0]
        if file_type == "archive" and job.archive is not None:
            return 200, job.archive, {"Content-Type": "application/zip"}
        if file_type == "dotenv" and job.dotenv is not None:
            return 200, gzip.compress(job.dotenv), {"Content-Type": "application/gzip"}
        if file_type not in ("archive", "dotenv"):
            raise _Reply(400, {"error": "file_type does not have a valid value"})
        raise _Reply(404, {"message": "404 Not found"})

    def _r_environments(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        envs = sorted(project.environments.values(), key=lambda e: e.id)
        if query.get("name"):
            envs = [e for e in envs if e.name == query["name"][0]]
        status, page, headers = self._paginate(envs, query, f"/api/v4/projects/{project.id}/environments")
        return status, [self._environment_body(project, e, full=False) for e in page], headers

    def _r_environment(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        env = next((e for e in project.environments.values() if str(e.id) == params["environment"]), None)
        if env is None:
            raise _Reply(404, {"message": "404 Not found"})
        return 200, self._environment_body(project, env, full=True), {}

    def _r_hooks_create(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        """``project.hooks.create({"url", "token", "pipeline_events", ...})`` (Maintainer only)."""
        if token is None or token.access_level < MAINTAINER:
            raise _Reply(403, {"message": "403 Forbidden"})
        if not isinstance(body, dict) or not body.get("url"):
            raise _Reply(400, {"message": "400 Bad request - url is missing"})
        self.hooks.add_target(body["url"], body.get("token", ""), body.get("signing_token"))
        self.hook_configs.append(dict(body))
        answer = {k: v for k, v in body.items() if k not in ("token", "signing_token")}
        return 201, {"id": len(self.hook_configs), "project_id": project.id, **answer}, {}

    def _r_deployments(
        self, project: Project, token: Token | None, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Reply:
        def one(key: str) -> str | None:
            return query.get(key, [None])[0]

        deps = [d for d in self._deployments if d.pipeline.project is project]
        if one("status"):
            deps = [d for d in deps if d.status == one("status")]
        if one("environment"):
            deps = [d for d in deps if d.environment.name == one("environment")]
        if one("updated_after") or one("updated_before"):
            if one("order_by") != "updated_at":
                raise _Reply(400, {"message": "`updated_at` filter requires `updated_at` sort"})
            if one("updated_after"):
                deps = [d for d in deps if d.updated_at > _parse_time(one("updated_after") or "")]
            if one("updated_before"):
                deps = [d for d in deps if d.updated_at < _parse_time(one("updated_before") or "")]
        order = one("order_by") or "id"
        deps.sort(
            key=lambda d: (getattr(d, order if order in ("id", "iid", "created_at", "updated_at") else "id"), d.id),
            reverse=(one("sort") or "asc") == "desc",
        )
        status, page, headers = self._paginate(deps, query, f"/api/v4/projects/{project.id}/deployments")
        return status, [self._deployment_body(d) for d in page], headers


class _Handler(LoopbackHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed-ACK stalls
    fake: FakeGitLab

    def respond(self, method: str) -> None:
        self.fake._handle(self, method)
