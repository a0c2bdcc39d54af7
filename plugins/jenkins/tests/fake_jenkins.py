"""A fake Jenkins: a real HTTP server on 127.0.0.1 answering the remote access API calls
the plugin makes, with bodies shaped like Jenkins's documented JSON:

    POST /job/A/job/B/buildWithParameters, /build   201, Location: <root>/queue/item/N/
    GET  /queue/item/N/api/json        Queue$WaitingItem {why}, then Queue$LeftItem {executable:{number,url}}
    POST /queue/cancelItem?id=N        the item leaves the queue with cancelled: true
    GET  /job/A/api/json               {name, fullName, url, buildable, builds:[{number,url}]}
    GET  /job/A/N/api/json             {number, url, building, result, timestamp, duration, actions:[ParametersAction]}
    GET  /job/A/N/wfapi/describe       Pipeline jobs only: {id, status, startTimeMillis, stages:[{name,status,...}]}
    POST /job/A/N/stop                 the build ends ABORTED
    GET  /crumbIssuer/api/json         {crumb, crumbRequestField: "Jenkins-Crumb"} (bound to the session cookie)

Basic auth with ``user``/``token``. With ``require_crumb`` a POST without the session's crumb
gets 403 "No valid crumb was included in the request". Folders and multibranch projects are
nested jobs (``/job/team/job/app/job/feature%252Fx`` is the branch job ``feature%2Fx``).

Builds follow a script: a queue item becomes a build the ``start_after``-th time it is read;
``advance(number)`` ends the running stage and starts the next; ``set_state`` forces
``building`` or any result. ``fail_next`` answers the next requests with an error status.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flashfusion.plugins.testing import LoopbackFake, LoopbackHandler

STAGE_FINAL = {"SUCCESS", "FAILED", "ABORTED", "UNSTABLE", "NOT_EXECUTED"}
RESULT_STAGE = {"SUCCESS": "SUCCESS", "FAILURE": "FAILED", "ABORTED": "ABORTED", "UNSTABLE": "UNSTABLE"}


@dataclass
class Job:
    path: tuple[str, ...]
    stages: tuple[str, ...] | None = ("Checkout", "Build", "Test")  # None: a freestyle job
    buildable: bool = True
    fail_stage: str | None = None
    auto_advance: bool = False  # each read of a build moves it one stage on
    builds: dict[int, Build] = field(default_factory=dict)
    next_number: int = 1


@dataclass
class Build:
    number: int
    job: Job
    params: dict[str, str]
    queue_id: int
    timestamp: int
    result: str | None = None  # None while the build runs
    duration: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def building(self) -> bool:
        return self.result is None


@dataclass
class QueueItem:
    id: int
    job: Job
    params: dict[str, str]
    since: int
    reads: int = 0
    cancelled: bool = False
    build: Build | None = None


class FakeJenkins(LoopbackFake):
    def __init__(
        self,
        *,
        user: str = "ci-bot",
        token: str = "11aa22bb33cc44dd55ee66ff77889900",
        require_crumb: bool = False,
        start_after: int = 1,
    ) -> None:
        self.user, self.token = user, token
        self.require_crumb = require_crumb
        self.start_after = start_after
        self.jobs: dict[tuple[str, ...], Job] = {}
        self.queue: dict[int, QueueItem] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self._queue_ids = itertools.count(100)
        self._now = 1_700_000_000_000
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._crumbs: dict[str, str] = {}  # session cookie -> crumb

    # ------------------------------------------------------------------ lifecycle

    def start(self, tls: ssl.SSLContext | None = None) -> FakeJenkins:
        """Serve plain HTTP, or HTTPS with the server context ``tls``."""
        return self.serve(_Handler, tls=tls, name="fake-jenkins")

    @property
    def url(self) -> str:
        return self.origin

    # ------------------------------------------------------------------ setup and scripting

    def add_job(self, full_name: str, **options: Any) -> Job:
        """``full_name`` is folders and job separated by ``/`` (a multibranch branch job's
        last part is the branch URL-encoded, e.g. ``feature%2Fx``); ``options`` are ``Job``'s
        (``stages``, ``buildable``, ``fail_stage``, ``auto_advance``)."""
        with self.lock:
            job = Job(tuple(full_name.split("/")), **options)
            self.jobs[job.path] = job
            return job

    def _tick(self) -> int:
        self._now += 1000
        return self._now

    def builds(self) -> list[Build]:
        with self.lock:
            return [b for job in self.jobs.values() for b in job.builds.values()]

    def build(self, number: int, job: str | None = None) -> Build:
        with self.lock:
            found = [b for b in self.builds() if b.number == number and (job is None or "/".join(b.job.path) == job)]
            assert len(found) == 1, f"{len(found)} builds numbered {number}"
            return found[0]

    def start_build(self, item: QueueItem) -> Build:
        with self.lock:
            job = item.job
            build = Build(job.next_number, job, item.params, item.id, self._tick())
            job.next_number += 1
            if job.stages is not None:
                build.stages = [
                    {
                        "id": str(6 + i),
                        "name": name,
                        "status": "NOT_EXECUTED" if i else "IN_PROGRESS",
                        "startTimeMillis": 0 if i else build.timestamp,
                        "durationMillis": 0,
                        "pauseDurationMillis": 0,
                    }
                    for i, name in enumerate(job.stages)
                ]
                for stage in build.stages[1:]:
                    stage["status"] = "QUEUED"
            job.builds[build.number] = build
            item.build = build
            return build

    def advance(self, number: int, job: str | None = None) -> bool:
        """End the running stage (``fail_stage`` fails) and start the next; False once the
        build has finished."""
        with self.lock:
            build = self.build(number, job)
            if not build.building:
                return False
            now = self._tick()
            running = next((s for s in build.stages if s["status"] == "IN_PROGRESS"), None)
            if running is None:
                self._finish(build, "SUCCESS", now)
                return False
            failed = running["name"] == build.job.fail_stage
            running.update(status="FAILED" if failed else "SUCCESS", durationMillis=now - running["startTimeMillis"])
            queued = [s for s in build.stages if s["status"] == "QUEUED"]
            if failed or not queued:
                self._finish(build, "FAILURE" if failed else "SUCCESS", now)
                return False
            queued[0].update(status="IN_PROGRESS", startTimeMillis=now)
            return True

    def set_state(self, number: int, state: str, job: str | None = None) -> None:
        """``building``, or a result (SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_BUILT, or any
        string) that ends the build."""
        with self.lock:
            build = self.build(number, job)
            now = self._tick()
            if state == "building":
                build.result = None
            else:
                self._finish(build, state, now)

    def _finish(self, build: Build, result: str, now: int) -> None:
        build.result, build.duration = result, now - build.timestamp
        for stage in build.stages:
            if stage["status"] == "IN_PROGRESS":
                stage.update(status=RESULT_STAGE.get(result, "FAILED"), durationMillis=now - stage["startTimeMillis"])
            elif stage["status"] == "QUEUED":
                stage["status"] = "NOT_EXECUTED"

    def fail_next(self, status: int, count: int = 1, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self._failures += [(status, headers or {})] * count

    # ------------------------------------------------------------------ bodies

    def job_url(self, job: Job) -> str:
        return self.url + "".join(f"/job/{part}" for part in job.path) + "/"

    def build_body(self, build: Build) -> dict[str, Any]:
        cls = (
            "org.jenkinsci.plugins.workflow.job.WorkflowRun"
            if build.job.stages is not None
            else "hudson.model.FreeStyleBuild"
        )
        return {
            "_class": cls,
            "number": build.number,
            "id": str(build.number),
            "displayName": f"#{build.number}",
            "url": f"{self.job_url(build.job)}{build.number}/",
            "building": build.building,
            "inProgress": build.building,
            "result": build.result,
            "timestamp": build.timestamp,
            "duration": build.duration,
            "estimatedDuration": 60000,
            "queueId": build.queue_id,
            "actions": [
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [
                        {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
                        for k, v in build.params.items()
                    ],
                }
            ],
        }

    def describe_body(self, build: Build) -> dict[str, Any]:
        status = "IN_PROGRESS" if build.building else RESULT_STAGE.get(str(build.result), "FAILED")
        return {
            "_links": {"self": {"href": f"{self.job_url(build.job)}{build.number}/wfapi/describe"}},
            "id": str(build.number),
            "name": f"#{build.number}",
            "status": status,
            "startTimeMillis": build.timestamp,
            "endTimeMillis": build.timestamp + build.duration,
            "durationMillis": build.duration,
            "queueDurationMillis": 5,
            "pauseDurationMillis": 0,
            "stages": [dict(s, execNode="", _links={}) for s in build.stages],
        }

    def queue_body(self, item: QueueItem) -> dict[str, Any]:
        task = {
            "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
            "name": item.job.path[-1],
            "url": self.job_url(item.job),
        }
        body: dict[str, Any] = {
            "id": item.id,
            "inQueueSince": item.since,
            "task": task,
            "url": f"queue/item/{item.id}/",
            "params": "",
            "stuck": False,
            "blocked": False,
        }
        if item.build is None and not item.cancelled:
            return {
                **body,
                "_class": "hudson.model.Queue$WaitingItem",
                "buildable": False,
                "why": "Waiting for next available executor",
            }
        executable = None
        if item.build is not None:
            executable = {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                "number": item.build.number,
                "url": f"{self.job_url(item.job)}{item.build.number}/",
            }
        return {
            **body,
            "_class": "hudson.model.Queue$LeftItem",
            "buildable": False,
            "cancelled": item.cancelled,
            "executable": executable,
            "why": None,
        }


class _Handler(LoopbackHandler):
    fake: FakeJenkins
    protocol_version = "HTTP/1.1"

    def respond(self, method: str) -> None:
        fake = self.fake
        raw = self.request_body()
        split = urlsplit(self.path)
        form = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if raw and "form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        with fake.lock:
            status, body, headers = self._answer(method, split.path, form)
            fake.requests.append((method, split.path, status))
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header(
            "Content-Type",
            "application/json;charset=utf-8" if not isinstance(body, bytes) else "text/html;charset=utf-8",
        )
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, token = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return (user, token) == (self.fake.user, self.fake.token)

    def _session(self) -> str:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "JSESSIONID":
                return value
        return ""

    def _answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        fake = self.fake
        if fake._failures:
            status, headers = fake._failures.pop(0)
            return status, f"<html><body>Error {status}</body></html>".encode(), headers
        if not self._authorized():
            return 401, b"<html><body>Unauthorized</body></html>", {"WWW-Authenticate": 'Basic realm="Jenkins"'}
        if method == "GET" and path == "/crumbIssuer/api/json":
            session = self._session() or secrets.token_hex(8)
            crumb = fake._crumbs.setdefault(session, secrets.token_hex(16))
            return (
                200,
                {
                    "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                    "crumb": crumb,
                    "crumbRequestField": "Jenkins-Crumb",
                },
                {"Set-Cookie": f"JSESSIONID={session}; Path=/"},
            )
        if method == "POST" and fake.require_crumb:
            expected = fake._crumbs.get(self._session())
            if expected is None or self.headers.get("Jenkins-Crumb") != expected:
                return 403, b"<html><body>No valid crumb was included in the request</body></html>", {}
        if path.startswith("/queue/"):
            return self._queue(method, path, form)
        return self._job(method, path, form)

    def _queue(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        fake = self.fake
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["queue", "cancelItem"]:
            item = fake.queue.get(int(form.get("id", "0")))
            if item is not None and item.build is None:
                item.cancelled = True
            return 302, None, {"Location": fake.url + "/queue/"}
        if method == "GET" and len(parts) == 5 and parts[:2] == ["queue", "item"] and parts[3:] == ["api", "json"]:
            item = fake.queue.get(int(parts[2]))
            if item is None:
                return 404, b"<html>Not Found</html>", {}
            item.reads += 1
            if item.build is None and not item.cancelled and item.reads > fake.start_after:
                fake.start_build(item)
            return 200, fake.queue_body(item), {}
        return 404, b"<html>Not Found</html>", {}

    def _job(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        fake = self.fake
        segments = path.strip("/").split("/")
        names: list[str] = []
        while len(segments) >= 2 and segments[0] == "job":
            names.append(unquote(segments[1]))
            segments = segments[2:]
        job = fake.jobs.get(tuple(names))
        if job is None:
            return 404, b"<html>Not Found</html>", {}
        rest = segments
        if method == "POST" and rest in (["build"], ["buildWithParameters"]):
            if not job.buildable:
                return 409, b"<html>Job disabled</html>", {}
            item = QueueItem(next(fake._queue_ids), job, {k: v for k, v in form.items() if k != "delay"}, fake._tick())
            fake.queue[item.id] = item
            return 201, None, {"Location": f"{fake.url}/queue/item/{item.id}/"}
        if method == "GET" and rest == ["api", "json"]:
            return (
                200,
                {
                    "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                    "name": job.path[-1],
                    "fullName": "/".join(job.path),
                    "url": fake.job_url(job),
                    "buildable": job.buildable,
                    "builds": [
                        {"number": n, "url": f"{fake.job_url(job)}{n}/"} for n in sorted(job.builds, reverse=True)
                    ],
                },
                {},
            )
        if rest and rest[0].isdigit():
            build = job.builds.get(int(rest[0]))
            if build is None:
                return 404, b"<html>Not Found</html>", {}
            if method == "GET" and rest[1:] == ["api", "json"]:
                if job.auto_advance:
                    fake.advance(build.number, "/".join(job.path))
                return 200, fake.build_body(build), {}
            if method == "GET" and rest[1:] == ["wfapi", "describe"] and job.stages is not None:
                return 200, fake.describe_body(build), {}
            if method == "POST" and rest[1:] == ["stop"]:
                if build.building:
                    fake._finish(build, "ABORTED", fake._tick())
                return 302, None, {"Location": fake.job_url(job) + f"{build.number}/"}
        return 404, b"<html>Not Found</html>", {}
