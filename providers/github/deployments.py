"""The deployment URL of a run: ``environment_url`` of a successful deployment status for the
run's head SHA.

Deployments made by an Actions job carry the run's ``head_sha`` and statuses whose ``log_url`` /
``target_url`` point at ``.../actions/runs/<run id>``. A status that points at another run is
ignored; one that points at no run is accepted when its deployment was created after the run
started (deployments made by other tools for the same commit).

A repository that has no deployment at all needs no lookup: ``RepoDeployments`` asks whether
it has any, conditionally (``GET .../deployments?per_page=1`` with the last ``ETag``; a 304 is
free), until the answer is yes; from then on every lookup by SHA is made, without asking again.
"""

from __future__ import annotations

import threading
from datetime import datetime
from itertools import islice
from typing import Any

from github import Github, GithubException

from flashfusion.providers.github.mapping import utc
from flashfusion.providers.github.throttle import Throttle

MAX_DEPLOYMENTS = 5


def deployment_url(
    g: Github, repo: str, sha: str, upstream_id: str, started_at: datetime | None, environment: str | None = None
) -> str | None:
    kwargs: dict[str, Any] = {"sha": sha}
    if environment:
        kwargs["environment"] = environment
    fallback: str | None = None
    try:
        for deployment in islice(g.get_repo(repo).get_deployments(**kwargs), MAX_DEPLOYMENTS):
            for status in deployment.get_statuses():  # newest first
                if status.state != "success" or not status.environment_url:
                    continue
                links = f"{status.log_url or ''} {status.target_url or ''}"
                if f"/actions/runs/{upstream_id}" in links:
                    return status.environment_url
                created = utc(deployment.created_at)
                if (
                    fallback is None
                    and "/actions/runs/" not in links
                    and (started_at is None or created is None or created >= started_at)
                ):
                    fallback = status.environment_url
                break
    except GithubException as exc:
        if exc.status in (403, 404):  # no deployments:read permission, or none at all
            return None
        raise
    return fallback


class RepoDeployments:
    """Whether a repository has any deployment, remembered per repository with its ``ETag``
    (a repository with deployments is not asked again: deployments are rarely all deleted)."""

    def __init__(self, throttle: Throttle) -> None:
        self._throttle = throttle
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str | None, bool]] = {}

    def any(self, g: Github, repo: str) -> bool:
        with self._lock:
            etag, known = self._known.get(repo, (None, False))
        if known:
            return True
        try:
            headers, data = g.requester.requestJsonAndCheck(
                "GET",
                f"/repos/{repo}/deployments",
                parameters={"per_page": 1},
                headers={"If-None-Match": etag} if etag else {},
            )
        except GithubException as exc:
            if exc.status in (403, 404):  # as in ``deployment_url``: nothing to find
                return False
            raise
        self._throttle.observe(headers)
        if data is None and etag is not None:  # 304: unchanged since the last answer
            return known
        found = bool(data)
        with self._lock:
            self._known[repo] = (headers.get("etag"), found)
        return found
