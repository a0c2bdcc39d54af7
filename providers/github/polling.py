"""The one list request per repository and poll cycle, with ETags.

PyGithub sends ``If-None-Match`` only from ``obj.update()``, never for lists, so the list is
fetched through the client's ``Requester.requestJsonAndCheck`` with the header set by hand;
a 304 (an empty body) means "unchanged" and costs nothing against the rate limit. Pages are
cached per (repository, page) with their ETag and items, in memory, per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from github import Github, GithubException

from flashfusion.providers.github.throttle import Throttle


@dataclass
class _Page:
    etag: str | None
    items: list[dict[str, Any]]
    has_next: bool


@dataclass
class _Listing:
    fetched_at: float
    oldest_needed: float | None
    items: list[dict[str, Any]] = field(default_factory=list)


def created_epoch(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00")).timestamp()


class RunLister:
    """Lists a repository's ``workflow_dispatch`` runs, newest first, back to a given time."""

    def __init__(
        self, *, per_page: int, max_pages: int, fresh_for: float, clock: Callable[[], float], throttle: Throttle
    ) -> None:
        self._per_page = per_page
        self._max_pages = max_pages
        self._fresh_for = fresh_for
        self._clock = clock
        self._throttle = throttle
        self._lock = threading.Lock()
        self._pages: dict[tuple[str, int], _Page] = {}
        self._listings: dict[str, _Listing] = {}
        self._runs: dict[tuple[str, str], tuple[str | None, dict[str, Any]]] = {}

    def runs(self, g: Github, repo: str, oldest_needed: float | None) -> list[dict[str, Any]]:
        """The listed runs; a listing younger than ``fresh_for`` that reaches back far enough is
        reused without a request (several pipelines of one repository share a cycle)."""
        now = self._clock()
        with self._lock:
            listing = self._listings.get(repo)
        if (
            listing is not None
            and now - listing.fetched_at < self._fresh_for
            and (
                oldest_needed is None or (listing.oldest_needed is not None and listing.oldest_needed <= oldest_needed)
            )
        ):
            return listing.items
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            current = self._page(g, repo, page)
            items.extend(current.items)
            if not current.has_next or page >= self._max_pages or oldest_needed is None:
                break
            if current.items and created_epoch(current.items[-1]) < oldest_needed:
                break
            page += 1
        with self._lock:
            self._listings[repo] = _Listing(now, oldest_needed, items)
        return items

    def _page(self, g: Github, repo: str, page: int) -> _Page:
        with self._lock:
            cached = self._pages.get((repo, page))
        params: dict[str, Any] = {"event": "workflow_dispatch", "per_page": self._per_page}
        if page > 1:
            params["page"] = page
        headers = {"If-None-Match": cached.etag} if cached and cached.etag else {}
        response_headers, data = g.requester.requestJsonAndCheck(
            "GET", f"/repos/{repo}/actions/runs", parameters=params, headers=headers
        )
        self._throttle.observe(response_headers)
        if data is None and cached is not None:
            return cached
        fresh = _Page(
            response_headers.get("etag"),
            list((data or {}).get("workflow_runs", [])),
            'rel="next"' in response_headers.get("link", ""),
        )
        with self._lock:
            self._pages[(repo, page)] = fresh
        return fresh

    def run(self, g: Github, repo: str, upstream_id: str) -> dict[str, Any] | None:
        """One run by id, conditionally (for runs the listing does not reach); ``None`` if gone."""
        with self._lock:
            etag, cached = self._runs.get((repo, upstream_id), (None, None))
        try:
            response_headers, data = g.requester.requestJsonAndCheck(
                "GET", f"/repos/{repo}/actions/runs/{upstream_id}", headers={"If-None-Match": etag} if etag else {}
            )
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise
        self._throttle.observe(response_headers)
        if data is None and cached is not None:
            return cached
        with self._lock:
            self._runs[(repo, upstream_id)] = (response_headers.get("etag"), data)
        return data

    def forget_run(self, repo: str, upstream_id: str) -> None:
        with self._lock:
            self._runs.pop((repo, upstream_id), None)
