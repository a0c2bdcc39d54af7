"""Turn PyGithub and transport failures into the plugin interface's ``ProviderError`` tree.

GithubException 401                      -> UpstreamAuthError   (502)
403/429 rate limit (primary, secondary)  -> UpstreamUnavailable (502, retry_after set)
403 other (missing permission)           -> UpstreamAuthError   (502)
400/404/409/422                          -> UpstreamRejected    (422, GitHub's message)
5xx, connection errors                   -> UpstreamUnavailable (502)
read/connect timeouts                    -> UpstreamTimeout     (504)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from github import GithubException

from flashfusion.plugins import (
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

SECONDARY_DEFAULT_WAIT = 60.0


class CredentialsMissing(Exception):
    """The configured secret (token or App key) is not available; the message names where
    it was looked for, never a value."""


@dataclass(frozen=True)
class RateLimited:
    """What a rate-limit answer says about when to call again."""

    secondary: bool
    retry_after: float | None  # seconds, from ``retry-after``
    reset: float | None  # epoch seconds, from ``x-ratelimit-reset``


def github_message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = data.get("message") or exc.message or ""
    return " ".join(str(message).split())


def rate_limited(exc: GithubException) -> RateLimited | None:
    """``None`` unless ``exc`` is a primary or secondary rate-limit answer."""
    if exc.status not in (403, 429):
        return None
    headers: Mapping[str, Any] = {k.lower(): v for k, v in (exc.headers or {}).items()}
    message = github_message(exc).lower()
    retry_after = _number(headers.get("retry-after"))
    reset = _number(headers.get("x-ratelimit-reset"))
    primary = headers.get("x-ratelimit-remaining") == "0" or message.startswith("api rate limit exceeded")
    secondary = "secondary rate limit" in message or message.endswith(
        ("please retry your request again later.", "please wait a few minutes before you try again.")
    )
    if secondary or (retry_after is not None and not primary):
        return RateLimited(secondary=True, retry_after=retry_after, reset=None)
    if primary or exc.status == 429:
        return RateLimited(secondary=False, retry_after=retry_after, reset=reset)
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def translate(
    exc: BaseException, *, pipeline_id: str, action: str, secrets: tuple[str, ...] = (), now: float | None = None
) -> ProviderError:
    """The ``ProviderError`` to raise (``from exc``) for a failure of ``action``."""
    prefix = f"provider github, pipeline {pipeline_id}"
    error: ProviderError
    if isinstance(exc, CredentialsMissing):
        error = UpstreamAuthError(f"{prefix}: {exc}")
    elif isinstance(exc, requests.exceptions.Timeout):
        error = UpstreamTimeout(f"{prefix}: GitHub did not answer in time while trying to {action}")
    elif isinstance(exc, requests.exceptions.RequestException):
        error = UpstreamUnavailable(f"{prefix}: cannot reach GitHub to {action} ({type(exc).__name__})")
    elif isinstance(exc, GithubException):
        error = _from_github(exc, prefix, action, now)
    else:
        error = ProviderError(f"{prefix}: unexpected failure while trying to {action} ({type(exc).__name__})")
    for secret in secrets:
        if len(secret) >= 8 and secret in error.message:
            error = type(error)(error.message.replace(secret, "***"), retry_after=error.retry_after)
    return error


def _from_github(exc: GithubException, prefix: str, action: str, now: float | None) -> ProviderError:
    status = exc.status
    message = github_message(exc) or f"HTTP {status}"
    limited = rate_limited(exc)
    if limited is not None:
        wait = limited.retry_after
        if wait is None and limited.reset is not None and now is not None:
            wait = max(0.0, limited.reset - now) + 1
        if wait is None:
            wait = SECONDARY_DEFAULT_WAIT
        kind = "secondary rate limit" if limited.secondary else "rate limit"
        return UpstreamUnavailable(
            f"{prefix}: GitHub {kind} reached while trying to {action}: {message}", retry_after=wait
        )
    if status == 401:
        return UpstreamAuthError(f"{prefix}: GitHub rejected the credentials ({status} {message})")
    if status == 403:
        return UpstreamAuthError(f"{prefix}: the GitHub credentials may not {action} ({status} {message})")
    if status in (400, 404, 409, 422):
        return UpstreamRejected(f"GitHub refused to {action}: {message}")
    if status >= 500:
        return UpstreamUnavailable(f"{prefix}: GitHub failed while trying to {action} ({status} {message})")
    return ProviderError(f"{prefix}: GitHub answered {status} while trying to {action}: {message}")
