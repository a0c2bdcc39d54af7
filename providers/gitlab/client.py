"""The python-gitlab client, rate-limit bookkeeping and error translation.

python-gitlab sleeps inside the calling thread on a 429 (up to ten times) and hides the
response headers of a failed request. The gateway must not block a worker thread for
minutes, so retries are turned off and every response passes through a ``requests`` hook
that feeds a ``Throttle``: the provider then skips polls until GitLab's ``Retry-After`` /
``RateLimit-Reset`` moment instead of hammering or sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import gitlab
import requests

from flashfusion.plugins import (
    Budget,
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

DEFAULT_BACKOFF_SECONDS = 60.0


class Throttle:
    """The earliest moment the next request may be made, learned from response headers.

    Shared by every thread of one provider instance: GitLab's limits are per user and IP,
    not per project.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._budget: Budget | None = None

    def budget(self) -> Budget | None:
        """``RateLimit-Remaining`` / ``-Limit`` / ``-Reset`` of the latest answer that had them."""
        with self._lock:
            return self._budget

    def wait_seconds(self) -> float:
        """How long to hold off; 0 when requests may go out."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def last_retry_after(self) -> float | None:
        """``Retry-After`` (seconds) of the last 429 this thread received."""
        return getattr(self._local, "retry_after", None)

    def observe(self, method: str, status: int, headers: Mapping[str, str]) -> None:
        """Record one response. A 429 on a write (e.g. GitLab's pipeline-creation limit) is
        reported to its caller but does not hold polling back."""
        now = self._clock()
        self._note_budget(headers)
        until = None
        if status == 429:
            delay = _retry_after(headers.get("Retry-After"), now)
            if delay is None:
                reset = _number(headers.get("RateLimit-Reset"))
                delay = reset - now if reset is not None and reset > now else DEFAULT_BACKOFF_SECONDS
            self._local.retry_after = delay
            if method == "GET":
                until = now + delay
        elif headers.get("RateLimit-Remaining") == "0":
            until = _number(headers.get("RateLimit-Reset"))
        if until is not None:
            with self._lock:
                self._until = max(self._until, until)
            log.warning("gitlab rate limit reached: holding off for %.0f s", until - now)

    def _note_budget(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers.get("RateLimit-Remaining"))
        if remaining is None:
            return
        limit, reset = _number(headers.get("RateLimit-Limit")), _number(headers.get("RateLimit-Reset"))
        budget = Budget(
            int(remaining),
            None if limit is None else int(limit),
            None if reset is None else datetime.fromtimestamp(reset, UTC),
        )
        with self._lock:
            self._budget = budget


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class _Gitlab(gitlab.Gitlab):
    """python-gitlab with its in-thread sleeping retries turned off (see module doc)."""

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        return super().http_request(verb, path, *args, **kwargs)


def make_client(url: str, token: str, timeout: float, throttle: Throttle, *, ssl_verify: bool = True) -> gitlab.Gitlab:
    session = requests.Session()
    session.hooks["response"].append(
        lambda response, *a, **k: throttle.observe(
            response.request.method or "", response.status_code, response.headers
        )
    )
    return _Gitlab(url, private_token=token, timeout=timeout, ssl_verify=ssl_verify, session=session, per_page=100)


def describe(message: Any) -> str:
    """GitLab error bodies carry a string or ``{"field": ["problem", ...]}``; flatten them."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if isinstance(message, Mapping):
        parts = []
        for key, value in message.items():
            text = "; ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            parts.append(text if key == "base" else f"{key}: {text}")
        return "; ".join(parts)
    return str(message).strip()


def translate(
    exc: Exception, *, action: str, pipeline_id: str, throttle: Throttle, secrets: tuple[str, ...] = ()
) -> ProviderError:
    """Map a python-gitlab / requests failure to the plugin error tree.

    Messages name the provider and the pipeline, quote GitLab's own words, and never carry
    a token (any configured secret is scrubbed even if upstream echoed it).
    """
    where = f"gitlab: {action} for pipeline {pipeline_id!r}"
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(f"{where}: GitLab did not answer in time")
    if isinstance(exc, requests.RequestException):
        return UpstreamUnavailable(f"{where}: GitLab could not be reached ({type(exc).__name__})")
    if not isinstance(exc, gitlab.GitlabError):
        return ProviderError(f"{where}: unexpected {type(exc).__name__}")
    code = exc.response_code
    said = _scrub(describe(exc.error_message), secrets)
    if code in (401, 403):
        return UpstreamAuthError(f"{where}: GitLab refused the credentials (HTTP {code}: {said})")
    if code == 429:
        wait = throttle.last_retry_after()
        wait = DEFAULT_BACKOFF_SECONDS if wait is None else wait
        return UpstreamUnavailable(
            f"{where}: GitLab rate limit reached (HTTP 429: {said}); retry after {wait:.0f} s", retry_after=wait
        )
    if code is not None and code >= 500:
        return UpstreamUnavailable(f"{where}: GitLab answered HTTP {code} ({said})")
    if code == 404:
        return UpstreamRejected(
            f"{where}: not found (HTTP 404: {said}); check repository_name and that the token can see the project"
        )
    return UpstreamRejected(f"{where}: GitLab refused (HTTP {code}: {said})")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
