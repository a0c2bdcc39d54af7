"""A GitLab pipeline's job artifacts and outputs (``GitLabResults``, mixed into the provider).

Artifacts: each job of the pipeline with an artifacts archive, named after the job; a
download is ``GET /projects/:id/jobs/:job_id/artifacts`` (the zip). Outputs: the jobs'
``artifacts:reports:dotenv`` reports, fetched with ``file_type=dotenv`` (GitLab serves the
report gzipped); a GitLab that ignores ``file_type`` answers with the archive, whose ``.env``
files are read instead, so listing the dotenv file under ``artifacts:paths`` too works on
every version. Later jobs win when two set the same name.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import gitlab
import requests

from flashfusion.plugins import Artifact, ArtifactGone, Pipeline, ProviderError, RunRef, RunResults
from flashfusion.plugins.outputs import parse_output_lines

MAX_DOTENV = 1024 * 1024
CHUNK = 64 * 1024


class GitLabResults:
    """Needs the provider's ``_gitlab``, ``_translate`` and the module's ``_project_id``."""

    def _gitlab(self, pipeline: Pipeline) -> gitlab.Gitlab:
        raise NotImplementedError

    def _translate(self, exc: Exception, action: str, pipeline: Pipeline) -> ProviderError:
        raise NotImplementedError

    def results(self, pipeline: Pipeline, run: RunRef) -> RunResults:
        if not run.upstream_id:
            return RunResults()
        gl = self._gitlab(pipeline)
        project = _project_path(pipeline)
        try:
            jobs = gl.http_list(f"/projects/{project}/pipelines/{int(run.upstream_id)}/jobs", get_all=True)
            jobs = sorted((dict(j) for j in jobs), key=lambda j: j["id"])
            artifacts = tuple(_artifact(job) for job in jobs if _has(job, "archive"))
            outputs: dict[str, str] = {}
            for job in jobs:
                if _has(job, "dotenv"):
                    outputs.update(self._dotenv(gl, project, job["id"]))
        except (gitlab.GitlabError, requests.exceptions.RequestException, OSError) as exc:
            raise self._translate(exc, f"reading the artifacts of pipeline {run.upstream_id}", pipeline) from exc
        return RunResults(outputs=outputs, artifacts=artifacts)

    def open_artifact(self, pipeline: Pipeline, run: RunRef, artifact: Artifact) -> Iterator[bytes]:
        gl = self._gitlab(pipeline)
        try:
            response = _raw(
                gl.http_get(
                    f"/projects/{_project_path(pipeline)}/jobs/{int(artifact.locator)}/artifacts",
                    streamed=True,
                    raw=True,
                )
            )
        except gitlab.GitlabHttpError as exc:
            if exc.response_code in (404, 410):
                raise ArtifactGone(f"the artifacts of job {artifact.name!r} have expired or were deleted") from exc
            raise self._translate(exc, f"downloading the artifacts of job {artifact.name!r}", pipeline) from exc
        except (gitlab.GitlabError, requests.exceptions.RequestException, OSError) as exc:
            raise self._translate(exc, f"downloading the artifacts of job {artifact.name!r}", pipeline) from exc
        return _stream(response)

    @staticmethod
    def _dotenv(gl: gitlab.Gitlab, project: str, job_id: int) -> dict[str, str]:
        response = _raw(
            gl.http_get(
                f"/projects/{project}/jobs/{job_id}/artifacts",
                query_data={"file_type": "dotenv"},
                streamed=True,
                raw=True,
            )
        )
        data = bytearray()
        with response:
            for chunk in response.iter_content(CHUNK):
                data += chunk
                if len(data) > MAX_DOTENV:
                    return {}
        return dotenv_outputs(bytes(data))


def dotenv_outputs(data: bytes) -> dict[str, str]:
    """A dotenv report as GitLab serves it: gzipped, or (a GitLab without ``file_type``) the
    job's zip archive, whose ``.env`` files are read; plain text as is."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(MAX_DOTENV)
        except OSError:
            return {}
    elif data[:2] == b"PK":
        outputs: dict[str, str] = {}
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            for name in sorted(n for n in archive.namelist() if n.endswith(".env")):
                if archive.getinfo(name).file_size <= MAX_DOTENV:
                    outputs.update(parse_output_lines(archive.read(name).decode("utf-8", "replace")))
        except zipfile.BadZipFile:
            return {}
        return outputs
    return parse_output_lines(data.decode("utf-8", "replace"))


def _has(job: dict[str, Any], file_type: str) -> bool:
    return any(a.get("file_type") == file_type for a in job.get("artifacts") or [])


def _artifact(job: dict[str, Any]) -> Artifact:
    archive = next(a for a in job["artifacts"] if a.get("file_type") == "archive")
    expires = job.get("artifacts_expire_at")
    return Artifact(
        name=str(job["name"]),
        size=archive.get("size"),
        expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None,
        locator=str(job["id"]),
    )


def _project_path(pipeline: Pipeline) -> str:
    repo = pipeline.repository_name.strip()
    return repo if repo.isdigit() else quote(repo, safe="")


def _stream(response: requests.Response) -> Iterator[bytes]:
    with response:
        yield from response.iter_content(CHUNK)


def _raw(answer: Any) -> requests.Response:
    """``http_get(..., raw=True)`` answers the HTTP response itself (python-gitlab types it as
    JSON or a response)."""
    if not isinstance(answer, requests.Response):
        raise TypeError(f"expected a raw HTTP response, got {type(answer).__name__}")
    return answer
