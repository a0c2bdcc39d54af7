"""A fake GitHub REST API: a real HTTP server on 127.0.0.1 that PyGithub talks to unmodified.

It serves the calls listed in ``shared/PROVIDER-APIS.md`` (section A) with bodies built from
``shared/fixtures/github`` and every API URL rewritten to the fake's own base URL (PyGithub
rejects foreign hosts). What it emulates:

* repositories, workflows (with or without a ``workflow_dispatch`` trigger, declared inputs and a
  ``run-name``), dispatches (204, or 200 with ``return_run_details``), runs lists with the
  ``event``/``branch``/``status``/``created``/``head_sha`` filters and ``Link`` pagination, jobs
  with steps, cancel, deployments and deployment statuses, workflow file contents, GitHub App
  installation tokens;
* scripted runs: ``advance(run_id)`` moves a run one step along
  queued -> in_progress (jobs appear) -> steps complete one by one -> completed;
* a delay (on the fake clock) before a new run appears in lists;
* weak ETags, ``If-None-Match`` -> 304 with an empty body, not counted against the limit;
* ``x-ratelimit-*`` accounting, primary exhaustion (403 or 429), secondary-limit 403s with
  ``retry-after``, scripted 5xx answers and stalls;
* a mode rejecting ``return_run_details`` with a 422 naming it, like an older GHES;
* request counters: ``stats()`` gives total, counted against the limit, 304s and per route.

Time comes from a ``FakeClock`` (or any ``() -> epoch seconds`` callable) so tests never sleep;
only JWTs, which PyGithub signs with the real clock, are checked against real time.

    with FakeGitHub() as fake:
        repo = fake.add_repo("acme/web")
        fake.add_workflow("acme/web", "deploy.yml")
        ...  # point PyGithub at fake.url, with fake.token
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import threading
import time
import urllib.parse
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from flashfusion.plugins.testing import LoopbackFake, LoopbackHandler
from testkit.bodies import same_named
from testkit.fake_github_hooks import GitHubHooks

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "github"  # copied from shared/fixtures (see its README)

_FIXTURE_REPOS = ("octo-org/octo-repo", "octocat/Hello-World", "octocat/example")
_API = "https://api.github.com"
_WEB = "https://github.com"
DEFAULT_TOKEN = "ghp_fakeToken0000000000000000000000000000"

PRIMARY_MESSAGE = "API rate limit exceeded for user ID 1."
SECONDARY_MESSAGE = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
RETURN_RUN_DETAILS_MESSAGE = 'Invalid request.\n\n"return_run_details" is not a permitted key.'


class FakeClock:
    """A settable clock: ``clock()`` returns epoch seconds, ``advance(s)`` moves it on."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(time.time() if start is None else start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str) -> Any:
    """A fresh copy of ``shared/fixtures/github/<name>``."""
    return json.loads(_fixture_text(name))


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> float:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value += "T00:00:00Z"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _created_matches(created: float, spec: str) -> bool:
    """GitHub's search-date syntax: ``>=T``, ``>T``, ``<=T``, ``<T``, ``a..b``, a plain date."""
    for op in (">=", "<=", ">", "<"):
        if spec.startswith(op):
            bound = _parse_iso(spec[len(op) :])
            return {">=": created >= bound, "<=": created <= bound, ">": created > bound, "<": created < bound}[op]
    if ".." in spec:
        lo, hi = spec.split("..", 1)
        hi_bound = _parse_iso(hi) + (86400 - 1 if re.fullmatch(r"\d{4}-\d{2}-\d{2}", hi) else 0)
        return (lo == "*" or created >= _parse_iso(lo)) and (hi == "*" or created <= hi_bound)
    day = _parse_iso(spec)
    return day <= created < day + 86400


def _rewrite(obj: Any, replacements: list[tuple[str, str]]) -> Any:
    if isinstance(obj, str):
        for old, new in replacements:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, list):
        return [_rewrite(v, replacements) for v in obj]
    if isinstance(obj, dict):
        return {k: _rewrite(v, replacements) for k, v in obj.items()}
    return obj


@dataclass
class FakeRepo:
    full_name: str
    id: int
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head sha
    tags: dict[str, str] = field(default_factory=dict)
    contents_readable: bool = True


@dataclass
class FakeWorkflow:
    repo: str
    id: int
    file: str
    name: str
    dispatch: bool = True
    inputs: tuple[str, ...] = ()
    run_name: str | None = None
    state: str = "active"
    jobs: tuple[tuple[str, tuple[str, ...]], ...] = (("build", ("Set up job", "Run tests", "Complete job")),)
    deploy: tuple[str, str] | None = None  # (environment, environment_url) on success

    @property
    def path(self) -> str:
        return f".github/workflows/{self.file}"

    def yaml(self) -> str:
        lines = [f"name: {self.name}"]
        if self.run_name:
            lines.append(f"run-name: {self.run_name}")
        lines.append("on:")
        lines.append("  push:")
        if self.dispatch:
            lines.append("  workflow_dispatch:")
            if self.inputs:
                lines.append("    inputs:")
                for name in self.inputs:
                    lines += [f"      {name}:", "        required: false"]
        lines.append("jobs:")
        for job, steps in self.jobs:
            lines += [f"  {job}:", "    runs-on: ubuntu-latest", "    steps:"]
            lines += [f"      - name: {step}\n        run: echo {step!r}" for step in steps]
        return "\n".join(lines) + "\n"


@dataclass
class FakeRun:
    id: int
    repo: str
    workflow: FakeWorkflow
    ref: str
    head_sha: str
    inputs: dict[str, Any]
    run_number: int
    created_at: float
    visible_at: float
    display_title: str
    dispatch_index: int
    fail_step: str | None = None
    event: str = "workflow_dispatch"
    status: str = "queued"
    conclusion: str | None = None
    updated_at: float = 0.0
    run_started_at: float | None = None
    run_attempt: int = 1
    jobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeArtifact:
    id: int
    run_id: int
    name: str
    archive: bytes  # a zip, as GitHub serves it
    created_at: float
    expired: bool = False


@dataclass
class FakeDeployment:
    id: int
    repo: str
    sha: str
    ref: str
    environment: str
    created_at: float
    statuses: list[dict[str, Any]] = field(default_factory=list)  # oldest first


class FakeGitHub(LoopbackFake):
    """The fake server. All scripted behaviour is set through its methods; see the module doc."""

    def __init__(
        self,
        *,
        prefix: str = "",
        clock: Callable[[], float] | None = None,
        token: str = DEFAULT_TOKEN,
        rate_limit: int = 5000,
        list_delay: float = 0.0,
        reject_return_run_details: bool = False,
        exhausted_status: int = 403,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.clock = clock or time.time
        self.token = token
        self.tokens: dict[str, float | None] = {token: None}  # token -> expiry (fake clock)
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.reset_at = self.clock() + 3600
        self.list_delay = list_delay
        self.reject_return_run_details = reject_return_run_details
        self.exhausted_status = exhausted_status
        self.repos: dict[str, FakeRepo] = {}
        self.workflows: dict[int, FakeWorkflow] = {}
        self.runs: dict[int, FakeRun] = {}
        self.deployments: dict[int, FakeDeployment] = {}
        self.artifacts: dict[int, FakeArtifact] = {}
        self.dispatches: list[dict[str, Any]] = []
        self.app: dict[str, Any] | None = None
        self.hook_configs: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self._lock = threading.RLock()
        self._ids = {
            "repo": 1296268,
            "workflow": 161335,
            "run": 30433642,
            "job": 399444496,
            "deployment": 42,
            "status": 1,
            "artifact": 11,
        }
        self._run_numbers: Counter[int] = Counter()
        self._secondary: list[tuple[float | None, str | None]] = []
        self._failures: list[tuple[int, str, str | None]] = []
        self._stalls: list[float] = []
        self.hooks = GitHubHooks(self)  # webhooks out: see fake_github_hooks
        self.reset_counters()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeGitHub:
        return self.serve(_Handler, name="fake-github", poll_interval=0.02)

    @property
    def url(self) -> str:
        """The ``base_url`` to give PyGithub."""
        return self.origin + self.prefix

    # ----------------------------------------------------------------- setup

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def add_repo(
        self,
        full_name: str,
        *,
        branches: Iterable[str] = ("main",),
        tags: Iterable[str] = (),
        contents_readable: bool = True,
    ) -> FakeRepo:
        with self._lock:
            repo = FakeRepo(full_name, self._next("repo"), contents_readable=contents_readable)
            for name in branches:
                repo.branches[name] = hashlib.sha1(f"{full_name}:{name}".encode()).hexdigest()
            for name in tags:
                repo.tags[name] = hashlib.sha1(f"{full_name}:tag:{name}".encode()).hexdigest()
            self.repos[full_name] = repo
            return repo

    def add_workflow(
        self,
        repo: str,
        file: str = "deploy.yml",
        *,
        name: str = "Deploy",
        dispatch: bool = True,
        inputs: Iterable[str] = (),
        run_name: str | None = None,
        state: str = "active",
        jobs: Iterable[tuple[str, Iterable[str]]] | None = None,
        deploy: tuple[str, str] | None = None,
    ) -> FakeWorkflow:
        with self._lock:
            wf = FakeWorkflow(
                repo, self._next("workflow"), file, name, dispatch, tuple(inputs), run_name, state, deploy=deploy
            )
            if jobs is not None:
                wf.jobs = tuple((j, tuple(s)) for j, s in jobs)
            self.workflows[wf.id] = wf
            return wf

    def enable_app(
        self, app_id: int, public_key_pem: str | bytes, installation_id: int, *, token_ttl: float = 3600
    ) -> None:
        """Accept JWTs signed for ``app_id`` and issue installation tokens living ``token_ttl``."""
        self.app = {"id": app_id, "key": public_key_pem, "installation_id": installation_id, "ttl": token_ttl}

    def create_run(
        self,
        workflow: FakeWorkflow,
        ref: str = "main",
        inputs: dict[str, Any] | None = None,
        *,
        event: str = "workflow_dispatch",
        fail_step: str | None = None,
    ) -> FakeRun:
        """A run as a dispatch (or, with another ``event``, a push) would create it."""
        with self._lock:
            repo = self.repos[workflow.repo]
            now = self.clock()
            inputs = dict(inputs or {})
            title = workflow.name
            if workflow.run_name:
                title = re.sub(
                    r"\$\{\{\s*inputs\.(\w+)\s*\}\}", lambda m: str(inputs.get(m.group(1), "")), workflow.run_name
                )
            self._run_numbers[workflow.id] += 1
            run = FakeRun(
                id=self._next("run"),
                repo=workflow.repo,
                workflow=workflow,
                ref=ref,
                head_sha=repo.branches.get(ref) or repo.tags.get(ref) or ref,
                inputs=inputs,
                run_number=self._run_numbers[workflow.id],
                created_at=now,
                visible_at=now + self.list_delay,
                display_title=title,
                dispatch_index=len(self.runs),
                fail_step=fail_step,
                event=event,
                updated_at=now,
            )
            self.runs[run.id] = run
            self.hooks.emit_changes()
            return run

    def add_artifact(self, run_id: int, name: str, files: dict[str, bytes], *, expired: bool = False) -> FakeArtifact:
        """An artifact of the run, uploaded as ``actions/upload-artifact`` does: a zip of ``files``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, data in files.items():
                archive.writestr(path, data)
        with self._lock:
            artifact = FakeArtifact(self._next("artifact"), run_id, name, buffer.getvalue(), self.clock(), expired)
            self.artifacts[artifact.id] = artifact
        return artifact

    def artifact_body(self, artifact: FakeArtifact) -> dict[str, Any]:
        run = self.runs[artifact.run_id]
        api = f"{self.url}/repos/{run.repo}/actions/artifacts/{artifact.id}"
        return {
            "id": artifact.id,
            "node_id": f"MDg6QXJ0aWZhY3Qx{artifact.id}",
            "name": artifact.name,
            "size_in_bytes": len(artifact.archive),
            "url": api,
            "archive_download_url": f"{api}/zip",
            "expired": artifact.expired,
            "created_at": iso(artifact.created_at),
            "updated_at": iso(artifact.created_at),
            "expires_at": iso(artifact.created_at + 90 * 86400),
            "digest": "sha256:" + hashlib.sha256(artifact.archive).hexdigest(),
            "workflow_run": {
                "id": run.id,
                "repository_id": self.repos[run.repo].id,
                "head_repository_id": self.repos[run.repo].id,
                "head_branch": run.ref,
                "head_sha": run.head_sha,
            },
        }

    def add_deployment(
        self,
        repo: str,
        sha: str,
        environment: str,
        environment_url: str | None,
        *,
        state: str = "success",
        ref: str = "main",
        run_id: int | None = None,
    ) -> FakeDeployment:
        with self._lock:
            dep = FakeDeployment(self._next("deployment"), repo, sha, ref, environment, self.clock())
            self.deployments[dep.id] = dep
            self.add_deployment_status(dep.id, state, environment_url, run_id=run_id)
            return dep

    def add_deployment_status(
        self, deployment_id: int, state: str, environment_url: str | None, *, run_id: int | None = None
    ) -> None:
        with self._lock:
            dep = self.deployments[deployment_id]
            log = f"{_WEB}/{dep.repo}/actions/runs/{run_id}" if run_id else ""
            status = {
                "id": self._next("status"),
                "state": state,
                "environment_url": environment_url or "",
                "log_url": log,
                "target_url": log,
                "created_at": self.clock(),
                "run_id": run_id,
            }
            dep.statuses.append(status)
            self.hooks.deployment_status(dep, status)

    # ----------------------------------------------------------------- scripting

    def advance(self, run_id: int, steps: int = 1) -> FakeRun:
        """Move a run ``steps`` events along its script (see the module doc)."""
        with self._lock:
            run = self.runs[run_id]
            for _ in range(steps):
                self._advance_once(run)
                self.hooks.emit_changes()
            return run

    def finish(self, run_id: int) -> FakeRun:
        with self._lock:
            run = self.runs[run_id]
            while run.status != "completed":
                self._advance_once(run)
            self.hooks.emit_changes()
            return run

    def advance_all(self, steps: int = 1) -> None:
        with self._lock:
            for run_id in list(self.runs):
                self.advance(run_id, steps)

    def _touch(self, run: FakeRun) -> float:
        # Timestamps have one-second resolution, as on GitHub; keep updated_at strictly increasing
        # so that a scripted change is always visible to a client comparing updated_at.
        now = self.clock()
        run.updated_at = max(now, run.updated_at + 1)
        return now

    def _advance_once(self, run: FakeRun) -> None:
        if run.status == "completed":
            return
        now = self._touch(run)
        if run.status != "in_progress":
            run.status = "in_progress"
            run.run_started_at = now
            run.jobs = [self._new_job(run, name) for name, _ in run.workflow.jobs]
            return
        job = next(j for j in run.jobs if j["status"] != "completed")
        steps = dict(run.workflow.jobs)[job["name"]]
        if job["status"] == "queued":
            job.update(status="in_progress", started_at=now)
            job["steps"] = [
                {
                    "name": s,
                    "status": "queued",
                    "conclusion": None,
                    "number": i + 1,
                    "started_at": None,
                    "completed_at": None,
                }
                for i, s in enumerate(steps)
            ]
            job["steps"][0].update(status="in_progress", started_at=now)
            return
        step = next(s for s in job["steps"] if s["status"] != "completed")
        failed = step["name"] == run.fail_step
        step.update(status="completed", conclusion="failure" if failed else "success", completed_at=now)
        rest = [s for s in job["steps"] if s["status"] != "completed"]
        if rest and not failed:
            rest[0].update(status="in_progress", started_at=now)
            return
        for s in rest:
            s.update(status="completed", conclusion="skipped")
        job.update(status="completed", conclusion="failure" if failed else "success", completed_at=now)
        pending = [j for j in run.jobs if j["status"] != "completed"]
        if failed:
            for j in pending:
                j.update(status="completed", conclusion="skipped", completed_at=now)
        if failed or not pending:
            self._complete(run, "failure" if failed else "success")

    def _complete(self, run: FakeRun, conclusion: str) -> None:
        run.status, run.conclusion = "completed", conclusion
        self._touch(run)
        if conclusion == "success" and run.workflow.deploy:
            env, env_url = run.workflow.deploy
            dep = self.add_deployment(
                run.repo, run.head_sha, env, None, state="in_progress", ref=run.ref, run_id=run.id
            )
            self.add_deployment_status(dep.id, "success", env_url, run_id=run.id)

    def _new_job(self, run: FakeRun, name: str) -> dict[str, Any]:
        return {
            "id": self._next("job"),
            "name": name,
            "status": "queued",
            "conclusion": None,
            "started_at": None,
            "completed_at": None,
            "steps": [],
        }

    def cancel_run(self, run: FakeRun) -> None:
        now = self._touch(run)
        for job in run.jobs:
            if job["status"] == "completed":
                continue
            for step in job["steps"]:
                if step["status"] == "in_progress":
                    step.update(status="completed", conclusion="cancelled", completed_at=now)
                elif step["status"] == "queued":
                    step.update(status="completed", conclusion="skipped")
            job.update(status="completed", conclusion="cancelled", completed_at=now)
        run.status, run.conclusion = "completed", "cancelled"
        self.hooks.emit_changes()

    # ----------------------------------------------------------------- faults and limits

    def exhaust_rate_limit(self, reset_in: float = 60.0) -> None:
        """From now on every request gets the primary-limit answer until the clock passes reset."""
        with self._lock:
            self.remaining = 0
            self.reset_at = self.clock() + reset_in

    def secondary_limit(
        self, count: int = 1, retry_after: float | None = 60, *, path_contains: str | None = None
    ) -> None:
        """The next ``count`` requests (whose path contains ``path_contains``, if given) get a
        secondary-limit 403, with ``retry-after`` unless it is ``None``."""
        with self._lock:
            self._secondary += [(retry_after, path_contains)] * count

    def fail_next(
        self, status: int = 502, count: int = 1, *, message: str = "Server Error", path_contains: str | None = None
    ) -> None:
        with self._lock:
            self._failures += [(status, message, path_contains)] * count

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Delay the next answers by real ``seconds`` (to exercise client timeouts)."""
        with self._lock:
            self._stalls += [seconds] * count

    # ----------------------------------------------------------------- counters

    def reset_counters(self) -> None:
        with self._lock:
            self.total = 0
            self.counted = 0
            self.not_modified = 0
            self.by_route: Counter[str] = Counter()
            self.counted_by_route: Counter[str] = Counter()
            self.by_status: Counter[int] = Counter()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "counted": self.counted,
                "not_modified": self.not_modified,
                "remaining": self.remaining,
                "by_route": dict(self.by_route),
                "counted_by_route": dict(self.counted_by_route),
                "by_status": dict(self.by_status),
            }

    # ----------------------------------------------------------------- bodies

    def _replacements(self, repo: str) -> list[tuple[str, str]]:
        base = self.url
        out = [(f"{_API}/repos/{old}", f"{base}/repos/{repo}") for old in _FIXTURE_REPOS]
        out += [(f"{_WEB}/{old}", f"{_WEB}/{repo}") for old in _FIXTURE_REPOS]
        out += [(_API, base), ("http://api.github.com", base)]
        return out

    def repo_body(self, repo: FakeRepo) -> dict[str, Any]:
        body = _rewrite(fixture("workflow-run.json")["repository"], self._replacements(repo.full_name))
        owner, name = repo.full_name.split("/")
        body.update(id=repo.id, name=name, full_name=repo.full_name, default_branch="main")
        body["owner"]["login"] = owner
        return body

    def workflow_body(self, wf: FakeWorkflow) -> dict[str, Any]:
        body = _rewrite(fixture("workflow.json"), self._replacements(wf.repo))
        base = f"{self.url}/repos/{wf.repo}/actions/workflows/{wf.id}"
        body.update(
            same_named(wf, "id", "name", "path", "state"),
            url=base,
            html_url=f"{_WEB}/{wf.repo}/blob/main/{wf.path}",
            badge_url=f"{_WEB}/{wf.repo}/workflows/{urllib.parse.quote(wf.name)}/badge.svg",
        )
        return body

    def run_body(self, run: FakeRun) -> dict[str, Any]:
        body = _rewrite(fixture("workflow-run.json"), self._replacements(run.repo))
        api = f"{self.url}/repos/{run.repo}/actions/runs/{run.id}"
        repo_body = self.repo_body(self.repos[run.repo])
        body.update(
            same_named(run, "id", "head_sha", "run_number", "event", "display_title", "status", "conclusion"),
            name=run.workflow.name,
            head_branch=run.ref,
            path=run.workflow.path,
            workflow_id=run.workflow.id,
            url=api,
            html_url=f"{_WEB}/{run.repo}/actions/runs/{run.id}",
            created_at=iso(run.created_at),
            updated_at=iso(run.updated_at),
            run_attempt=run.run_attempt,
            run_started_at=iso(run.run_started_at or run.created_at),
            jobs_url=f"{api}/jobs",
            logs_url=f"{api}/logs",
            artifacts_url=f"{api}/artifacts",
            cancel_url=f"{api}/cancel",
            rerun_url=f"{api}/rerun",
            previous_attempt_url=None,
            workflow_url=f"{self.url}/repos/{run.repo}/actions/workflows/{run.workflow.id}",
            repository=repo_body,
            head_repository=repo_body,
        )
        body["head_commit"]["id"] = run.head_sha
        return body

    def job_body(self, run: FakeRun, job: dict[str, Any]) -> dict[str, Any]:
        body = _rewrite(fixture("workflow-run-jobs.json")["jobs"][0], self._replacements(run.repo))
        body.update(
            id=job["id"],
            run_id=run.id,
            run_url=f"{self.url}/repos/{run.repo}/actions/runs/{run.id}",
            head_sha=run.head_sha,
            head_branch=run.ref,
            workflow_name=run.workflow.name,
            name=job["name"],
            url=f"{self.url}/repos/{run.repo}/actions/jobs/{job['id']}",
            html_url=f"{_WEB}/{run.repo}/actions/runs/{run.id}/job/{job['id']}",
            status=job["status"],
            conclusion=job["conclusion"],
            started_at=iso(job["started_at"] or run.created_at),
            completed_at=iso(job["completed_at"]),
            created_at=iso(run.created_at),
            run_attempt=run.run_attempt,
            check_run_url=f"{self.url}/repos/{run.repo}/check-runs/{job['id']}",
            steps=[
                {**s, "started_at": iso(s["started_at"]), "completed_at": iso(s["completed_at"])} for s in job["steps"]
            ],
        )
        return body

    def deployment_body(self, dep: FakeDeployment) -> dict[str, Any]:
        body = _rewrite(fixture("deployment-list.json")[0], self._replacements(dep.repo))
        url = f"{self.url}/repos/{dep.repo}/deployments/{dep.id}"
        body.update(
            same_named(dep, "id", "sha", "ref", "environment"),
            original_environment=dep.environment,
            url=url,
            statuses_url=f"{url}/statuses",
            created_at=iso(dep.created_at),
            updated_at=iso(dep.created_at),
            task="deploy",
            repository_url=f"{self.url}/repos/{dep.repo}",
        )
        return body

    def deployment_status_body(self, dep: FakeDeployment, status: dict[str, Any]) -> dict[str, Any]:
        body = _rewrite(fixture("deployment-status-list.json")[0], self._replacements(dep.repo))
        url = f"{self.url}/repos/{dep.repo}/deployments/{dep.id}"
        body.update(
            id=status["id"],
            state=status["state"],
            environment=dep.environment,
            environment_url=status["environment_url"],
            log_url=status["log_url"],
            target_url=status["target_url"],
            url=f"{url}/statuses/{status['id']}",
            deployment_url=url,
            created_at=iso(status["created_at"]),
            updated_at=iso(status["created_at"]),
            repository_url=f"{self.url}/repos/{dep.repo}",
        )
        return body

    # ----------------------------------------------------------------- lookups

    def find_workflow(self, repo: str, id_or_file: str) -> FakeWorkflow | None:
        for wf in self.workflows.values():
            if wf.repo == repo and (str(wf.id) == id_or_file or wf.file == id_or_file):
                return wf
        return None

    def runs_for(self, repo: str, workflow: FakeWorkflow | None = None) -> list[FakeRun]:
        return [r for r in self.runs.values() if r.repo == repo and (workflow is None or r.workflow is workflow)]


T = TypeVar("T")


class _NotFound(Exception):
    """A route's lookup found nothing: the request gets GitHub's 404."""


def _found(value: T | None) -> T:
    if value is None:
        raise _NotFound
    return value


def _error(status: int, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}, {}


class _Handler(LoopbackHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request)
    disable_nagle_algorithm = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the fake clock (clients take server time from it)."""
        return formatdate(self.fake.clock() if timestamp is None else timestamp, usegmt=True)

    def respond(self, verb: str) -> None:
        fake = self.fake
        raw = self.request_body()
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        if path.startswith("/_blob/") and verb == "GET":
            return self._blob(path, dict(urllib.parse.parse_qsl(split.query)))
        if fake.prefix:
            if not path.startswith(fake.prefix + "/"):
                return self._send(*_error(404, "Not Found"), route="unknown", count=False)
            path = path[len(fake.prefix) :]
        query = dict(urllib.parse.parse_qsl(split.query))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._send(*_error(400, "Problems parsing JSON"), route="unknown", count=False)
        with fake._lock:
            stall = fake._stalls.pop(0) if fake._stalls else 0.0
        if stall:
            time.sleep(stall)
        route, handler, params = _route(verb, path)
        with fake._lock:
            fake.total += 1
            fake.by_route[route] += 1
            status, payload, headers, count = self._dispatch(verb, route, handler, params, query, body)
        self._send(status, payload, headers, route=route, count=count)

    def _dispatch(
        self, verb: str, route: str, handler: Callable | None, params: dict[str, str], query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str], bool]:
        fake = self.fake
        if handler is None:
            return (*_error(404, "Not Found"), True)
        if route.startswith("POST /app/"):
            auth_error = self._check_jwt()
        else:
            auth_error = self._check_token()
        if auth_error:
            return (*auth_error, False)
        if fake.clock() >= fake.reset_at:
            fake.remaining, fake.reset_at = fake.rate_limit, fake.clock() + 3600
        if fake.remaining <= 0:
            return (*_error(fake.exhausted_status, PRIMARY_MESSAGE), False)
        for i, (retry_after, where) in enumerate(fake._secondary):
            if where is None or where in self.path:
                del fake._secondary[i]
                extra = {"retry-after": str(int(retry_after))} if retry_after is not None else {}
                return 403, _error(403, SECONDARY_MESSAGE)[1], extra, False
        for i, (status, message, where) in enumerate(fake._failures):
            if where is None or where in self.path:
                del fake._failures[i]
                return (*_error(status, message), True)
        try:
            status, payload, headers = handler(self, params, query, body)
        except _NotFound:
            return (*_error(404, "Not Found"), True)
        return status, payload, headers, route != "GET /rate_limit"  # free on GitHub too

    def _blob(self, path: str, query: dict[str, str]) -> None:
        """The signed storage URL an archive download redirects to: no GitHub token (a request
        that carries one is refused, as blob storage does), the signature in the query."""
        fake = self.fake
        with fake._lock:
            fake.total += 1
            fake.by_route["GET blob"] += 1
            artifact = fake.artifacts.get(int(path.rsplit("/", 1)[-1] or 0))
        bad = (
            artifact is None
            or "Authorization" in self.headers
            or query.get("sig") != hashlib.sha256(b"sig%d" % artifact.id).hexdigest()
        )
        data = b"<Error><Code>AuthenticationFailed</Code></Error>" if bad else artifact.archive
        self.send_response(403 if bad else 200)
        self.send_header("Content-Type", "application/xml" if bad else "application/zip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _check_token(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        fake = self.fake
        value = self.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() in ("token", "bearer") and token in fake.tokens:
            expiry = fake.tokens[token]
            if expiry is None or fake.clock() < expiry:
                return None
        return _error(401, "Bad credentials")

    def _check_jwt(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        import jwt  # PyGithub's own dependency

        fake = self.fake
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if fake.app is None or scheme.lower() != "bearer":
            return _error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, fake.app["key"], algorithms=["RS256"], options={"verify_iat": False})
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        if str(claims.get("iss")) != str(fake.app["id"]) or claims.get("exp", 0) <= time.time():
            return _error(401, "'Expiration time' claim ('exp') must be a numeric value in the future")
        return None

    def _send(self, status: int, payload: Any, headers: dict[str, str], *, route: str, count: bool) -> None:
        fake = self.fake
        data = b"" if payload is None else json.dumps(payload).encode()
        out = {"Content-Type": "application/json; charset=utf-8", **headers}
        if self.command == "GET" and status == 200:
            etag = f'W/"{hashlib.sha1(data).hexdigest()}"'
            out["ETag"] = etag
            if etag in (self.headers.get("If-None-Match") or ""):
                status, data, count = 304, b"", False
        with fake._lock:
            if status == 304:
                fake.not_modified += 1
            if count:
                fake.counted += 1
                fake.counted_by_route[route] += 1
                fake.remaining = max(0, fake.remaining - 1)
            fake.by_status[status] += 1
            out.update(
                {
                    "x-ratelimit-limit": str(fake.rate_limit),
                    "x-ratelimit-remaining": str(fake.remaining),
                    "x-ratelimit-used": str(fake.rate_limit - fake.remaining),
                    "x-ratelimit-reset": str(int(fake.reset_at)),
                    "x-ratelimit-resource": "core",
                }
            )
        self.send_response(status)
        for key, value in out.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    # ------------------------------------------------------------------ routes

    def _repo(self, params: dict[str, str]) -> FakeRepo:
        return _found(self.fake.repos.get(f"{params['owner']}/{params['repo']}"))

    def _workflow(self, params: dict[str, str]) -> FakeWorkflow:
        full = f"{params['owner']}/{params['repo']}"
        return _found(self.fake.find_workflow(full, urllib.parse.unquote(params["workflow_id"])))

    def get_repo(self, params, query, body):
        return 200, self.fake.repo_body(self._repo(params)), {}

    def get_installation(self, params, query, body):
        fake = self.fake
        body = _rewrite(fixture("installation.json"), fake._replacements(f"{params['owner']}/{params['repo']}"))
        body["id"] = fake.app["installation_id"] if fake.app else 1
        return 200, body, {}

    def get_workflow(self, params, query, body):
        return 200, self.fake.workflow_body(self._workflow(params)), {}

    def post_dispatch(self, params, query, body):
        fake = self.fake
        full = f"{params['owner']}/{params['repo']}"
        wf = self._workflow(params)
        repo = self._repo(params)
        body = body or {}
        if "return_run_details" in body and fake.reject_return_run_details:
            return _error(422, RETURN_RUN_DETAILS_MESSAGE)
        if not wf.dispatch:
            return _error(422, "Workflow does not have 'workflow_dispatch' trigger")
        ref = str(body.get("ref", ""))
        short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        if short not in repo.branches and short not in repo.tags:
            return _error(422, f"No ref found for: {ref}")
        inputs = body.get("inputs") or {}
        if len(inputs) > 25:
            return _error(422, "you may only define up to 25 `inputs` for a `workflow_dispatch` event")
        unexpected = sorted(set(inputs) - set(wf.inputs))
        if unexpected:
            return _error(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
        run = fake.create_run(wf, short, inputs)
        fake.dispatches.append({"run_id": run.id, "body": body})
        if body.get("return_run_details"):
            out = _rewrite(fixture("workflow-dispatch-response.json"), fake._replacements(full))
            out.update(
                workflow_run_id=run.id,
                run_url=f"{fake.url}/repos/{full}/actions/runs/{run.id}",
                html_url=f"{_WEB}/{full}/actions/runs/{run.id}",
            )
            return 200, out, {}
        return 204, None, {}

    def _list_runs(self, runs: list[FakeRun], query: dict[str, str]):
        fake = self.fake
        now = fake.clock()
        runs = [r for r in runs if r.visible_at <= now]
        if "event" in query:
            runs = [r for r in runs if r.event == query["event"]]
        if "branch" in query:
            runs = [r for r in runs if r.ref == query["branch"]]
        if "head_sha" in query:
            runs = [r for r in runs if r.head_sha == query["head_sha"]]
        if "status" in query:
            runs = [r for r in runs if query["status"] in (r.status, r.conclusion)]
        if "created" in query:
            runs = [r for r in runs if _created_matches(int(r.created_at), query["created"])]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        chunk = runs[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(runs) // per_page))
        headers = {}
        if page < last:
            links = []
            for rel, n in (("next", page + 1), ("last", last)):
                q = urllib.parse.urlencode({**query, "page": n})
                links.append(f'<{fake.origin}{urllib.parse.urlsplit(self.path).path}?{q}>; rel="{rel}"')
            headers["Link"] = ", ".join(links)
        return 200, {"total_count": len(runs), "workflow_runs": [fake.run_body(r) for r in chunk]}, headers

    def get_repo_runs(self, params, query, body):
        return self._list_runs(self.fake.runs_for(self._repo(params).full_name), query)

    def get_workflow_runs(self, params, query, body):
        wf = self._workflow(params)
        return self._list_runs(self.fake.runs_for(wf.repo, wf), query)

    def _run(self, params: dict[str, str]) -> FakeRun:
        run = self.fake.runs.get(int(params["run_id"]))
        return _found(run if run is not None and run.repo == f"{params['owner']}/{params['repo']}" else None)

    def get_run(self, params, query, body):
        return 200, self.fake.run_body(self._run(params)), {}

    def get_jobs(self, params, query, body):
        run = self._run(params)
        jobs = [self.fake.job_body(run, j) for j in run.jobs]
        return 200, {"total_count": len(jobs), "jobs": jobs}, {}

    def post_cancel(self, params, query, body):
        run = self._run(params)
        if run.status == "completed":
            return _error(409, "Cannot cancel a workflow run that is completed.")
        self.fake.cancel_run(run)
        return 202, {}, {}

    def get_deployments(self, params, query, body):
        fake = self.fake
        full = f"{params['owner']}/{params['repo']}"
        deps = [d for d in fake.deployments.values() if d.repo == full]
        for key in ("sha", "ref", "environment"):
            if key in query:
                deps = [d for d in deps if getattr(d, key) == query[key]]
        deps.sort(key=lambda d: d.id, reverse=True)
        return 200, [fake.deployment_body(d) for d in deps], {}

    def get_deployment_statuses(self, params, query, body):
        fake = self.fake
        dep = _found(fake.deployments.get(int(params["deployment_id"])))
        return 200, [fake.deployment_status_body(dep, s) for s in reversed(dep.statuses)], {}

    def get_contents(self, params, query, body):
        fake = self.fake
        repo = self._repo(params)
        if not repo.contents_readable:
            return _error(403, "Resource not accessible by personal access token")
        path = urllib.parse.unquote(params["path"])
        wf = _found(next((w for w in fake.workflows.values() if w.repo == repo.full_name and w.path == path), None))
        text = wf.yaml().encode()
        url = f"{fake.url}/repos/{repo.full_name}/contents/{path}"
        return (
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(text),
                "name": wf.file,
                "path": path,
                "content": base64.b64encode(text).decode(),
                "sha": hashlib.sha1(text).hexdigest(),
                "url": url,
                "html_url": f"{_WEB}/{repo.full_name}/blob/main/{path}",
                "git_url": None,
                "download_url": None,
            },
            {},
        )

    def post_access_token(self, params, query, body):
        fake = self.fake
        if fake.app is None or int(params["installation_id"]) != fake.app["installation_id"]:
            return _error(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        expiry = fake.clock() + fake.app["ttl"]
        fake.tokens[token] = expiry
        fake.tokens_issued += 1
        out = _rewrite(fixture("installation-access-token.json"), fake._replacements("octocat/Hello-World"))
        out.update(token=token, expires_at=iso(expiry))
        return 201, out, {}

    def post_hook(self, params, query, body):
        """``repo.create_hook("web", {"url", "content_type", "secret"}, events, active)``."""
        fake = self.fake
        self._repo(params)  # 404 for a repository the fake does not have
        config = (body or {}).get("config") or {}
        if not config.get("url"):
            return _error(422, "Validation Failed")
        fake.hooks.add_target(config["url"], config.get("secret", ""))
        fake.hook_configs.append(dict(body))
        return (
            201,
            {
                "type": "Repository",
                "id": len(fake.hook_configs),
                "name": "web",
                "active": True,
                "events": body.get("events", ["push"]),
                "config": {**config, "secret": "********"},
            },
            {},
        )

    def get_run_artifacts(self, params, query, body):
        fake = self.fake
        run = self._run(params)
        found = [fake.artifact_body(a) for a in fake.artifacts.values() if a.run_id == run.id]
        return 200, {"total_count": len(found), "artifacts": found}, {}

    def get_artifact_archive(self, params, query, body):
        """302 to a short-lived signed URL (on the fake's origin, standing in for blob storage);
        410 once the artifact has expired."""
        fake = self.fake
        artifact = fake.artifacts.get(int(params["artifact_id"]))
        if artifact is None or params["archive_format"] != "zip":
            return _error(404, "Not Found")
        if artifact.expired:
            return _error(410, "Artifact has expired")
        sig = hashlib.sha256(b"sig%d" % artifact.id).hexdigest()
        return 302, None, {"Location": f"{fake.origin}/_blob/{artifact.id}?sig={sig}"}

    def get_rate_limit(self, params, query, body):
        fake = self.fake
        out = fixture("rate-limit.json")
        core = {
            "limit": fake.rate_limit,
            "used": fake.rate_limit - fake.remaining,
            "remaining": fake.remaining,
            "reset": int(fake.reset_at),
        }
        out["resources"]["core"] = dict(core)
        out["rate"] = dict(core)
        return 200, out, {}


_ROUTES: list[tuple[str, str]] = [  # (route as GitHub's REST docs name it, handler method)
    ("GET /repos/{owner}/{repo}", "get_repo"),
    ("GET /repos/{owner}/{repo}/installation", "get_installation"),
    ("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}", "get_workflow"),
    ("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", "post_dispatch"),
    ("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "get_workflow_runs"),
    ("GET /repos/{owner}/{repo}/actions/runs", "get_repo_runs"),
    ("GET /repos/{owner}/{repo}/actions/runs/{run_id}", "get_run"),
    ("GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs", "get_jobs"),
    ("GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts", "get_run_artifacts"),
    ("GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}", "get_artifact_archive"),
    ("POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", "post_cancel"),
    ("GET /repos/{owner}/{repo}/deployments", "get_deployments"),
    ("GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "get_deployment_statuses"),
    ("GET /repos/{owner}/{repo}/contents/{path}", "get_contents"),
    ("POST /app/installations/{installation_id}/access_tokens", "post_access_token"),
    ("GET /rate_limit", "get_rate_limit"),
    ("POST /repos/{owner}/{repo}/hooks", "post_hook"),
]
# what a route's ``{param}`` matches; any other param is one path segment
_PARAM_PATTERNS = {
    "path": ".+",
    **{name: r"\d+" for name in ("run_id", "artifact_id", "deployment_id", "installation_id")},
}


def _compile(route: str) -> tuple[str, re.Pattern[str]]:
    """A route's verb and the regex of its path, each ``{param}`` a named group."""
    verb, path = route.split(" ", 1)
    parts = re.split(r"\{(\w+)\}", path)  # literal, param, literal, ...
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_PARAM_PATTERNS.get(part, '[^/]+')})"
        for i, part in enumerate(parts)
    )
    return verb, re.compile(regex + "$")


_COMPILED = [(*_compile(route), route, method) for route, method in _ROUTES]


def _route(verb: str, path: str) -> tuple[str, Callable | None, dict[str, str]]:
    for route_verb, pattern, name, method in _COMPILED:
        match = pattern.match(path)
        if match and route_verb == verb:
            return name, getattr(_Handler, method), match.groupdict()
    return f"{verb} (unknown)", None, {}
