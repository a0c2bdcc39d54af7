"""A GitHub run's artifacts and outputs (``GitHubResults``, mixed into the provider).

Artifacts: ``GET /repos/{repo}/actions/runs/{id}/artifacts``. A download asks
``archive_download_url`` with the token, which answers 302 to a short-lived signed URL on
another host; that one is fetched without the token (it must never leave for another host).
Outputs: the artifact named by the pipeline's ``outputs_artifact`` (default
``flashfusion-outputs``), a zip holding a dotenv or JSON file.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests
from github import GithubException

from flashfusion.plugins import Artifact, ArtifactGone, Pipeline, ProviderError, RunRef, RunResults, UpstreamRejected
from flashfusion.plugins.outputs import parse_outputs_file

DEFAULT_OUTPUTS_ARTIFACT = "flashfusion-outputs"
MAX_OUTPUTS_ARCHIVE = 1024 * 1024
CHUNK = 64 * 1024
_FAILURES = (GithubException, requests.exceptions.RequestException)


class GitHubResults:
    """Needs the provider's ``settings``, ``_pool``, ``_tokens`` and ``_error``."""

    settings: Any
    _pool: Any
    _tokens: Any

    def _error(self, exc: BaseException, pipeline: Pipeline, action: str) -> ProviderError:
        raise NotImplementedError

    def results(self, pipeline: Pipeline, run: RunRef) -> RunResults:
        if not run.upstream_id:
            return RunResults()
        try:
            with self._pool.client() as g:
                _, body = g.requester.requestJsonAndCheck(
                    "GET",
                    f"/repos/{pipeline.repository_name}/actions/runs/{int(run.upstream_id)}/artifacts",
                    parameters={"per_page": 100},
                )
        except _FAILURES as exc:
            raise self._error(exc, pipeline, f"list the artifacts of run {run.upstream_id}") from exc
        listed = [a for a in (body or {}).get("artifacts", []) if not a.get("expired")]
        artifacts = tuple(
            Artifact(
                name=str(a["name"]),
                size=a.get("size_in_bytes"),
                expires_at=_time(a.get("expires_at")),
                locator=str(a["archive_download_url"]),
            )
            for a in listed
        )
        wanted = str(pipeline.option("outputs_artifact", DEFAULT_OUTPUTS_ARTIFACT))
        source = next((a for a in artifacts if a.name == wanted), None)
        outputs = self._outputs(pipeline, source) if source is not None else {}
        return RunResults(outputs=outputs, artifacts=artifacts)

    def open_artifact(self, pipeline: Pipeline, run: RunRef, artifact: Artifact) -> Iterator[bytes]:
        response = self._archive(pipeline, artifact)
        return _stream(response)

    def _outputs(self, pipeline: Pipeline, artifact: Artifact) -> dict[str, str]:
        response = self._archive(pipeline, artifact)
        data = bytearray()
        with response:
            for chunk in response.iter_content(CHUNK):
                data += chunk
                if len(data) > MAX_OUTPUTS_ARCHIVE:
                    raise UpstreamRejected(f"the outputs artifact {artifact.name!r} is larger than 1 MiB")
        return outputs_from_zip(bytes(data))

    def _archive(self, pipeline: Pipeline, artifact: Artifact) -> requests.Response:
        """The archive's bytes, streamed: the API's redirect, then the signed URL, tokenless."""
        base = self.settings.base_url.rstrip("/")
        if not artifact.locator.startswith(base + "/"):
            raise UpstreamRejected("the artifact's download URL is not on the configured GitHub")
        timeout = self.settings.timeout_seconds
        try:
            first = requests.get(
                artifact.locator,
                allow_redirects=False,
                timeout=timeout,
                headers={"Authorization": f"token {self._tokens.token()}", "Accept": "application/vnd.github+json"},
            )
            if first.status_code in (404, 410):
                raise ArtifactGone(f"artifact {artifact.name!r} has expired or was deleted on GitHub")
            location = first.headers.get("Location")
            if first.status_code not in (301, 302, 303, 307, 308) or not location:
                first.raise_for_status()
                raise UpstreamRejected(f"GitHub did not redirect the download of {artifact.name!r}")
            response = requests.get(location, stream=True, timeout=timeout)
            if response.status_code in (403, 404, 410):
                raise ArtifactGone(f"artifact {artifact.name!r} has expired or was deleted on GitHub")
            response.raise_for_status()
            return response
        except ProviderError:
            raise
        except _FAILURES as exc:
            raise self._error(exc, pipeline, f"download artifact {artifact.name!r}") from exc


def outputs_from_zip(data: bytes) -> dict[str, str]:
    """The outputs in the first file of the archive that reads as outputs (``.env``/``.json``
    names first)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return {}
    names = sorted(
        (n for n in archive.namelist() if not n.endswith("/")), key=lambda n: (not n.endswith((".env", ".json")), n)
    )
    for name in names:
        if archive.getinfo(name).file_size > MAX_OUTPUTS_ARCHIVE:
            continue
        outputs = parse_outputs_file(name, archive.read(name))
        if outputs:
            return outputs
    return {}


def _stream(response: requests.Response) -> Iterator[bytes]:
    with response:
        yield from response.iter_content(CHUNK)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
