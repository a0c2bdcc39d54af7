"""Jenkins's remote access API over httpx: API-token auth, the CSRF crumb, and the mapping
of failures to the plugin errors.

    401, 403 (other than a crumb refusal)  -> UpstreamAuthError
    404, 400, 409                          -> UpstreamRejected
    429 (Retry-After)                      -> UpstreamUnavailable(retry_after=...)
    5xx, connection errors                 -> UpstreamUnavailable
    timeouts                               -> UpstreamTimeout

No retries and no sleeps here: a rate limit reaches the core as ``retry_after``.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from flashfusion.plugins import (
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

DEFAULT_RETRY_AFTER = 60.0
NO_CRUMB = "No valid crumb"


class JenkinsClient:
    """One HTTP client per provider (httpx is thread-safe). The crumb is fetched the first
    time Jenkins refuses a POST for the lack of one, then sent with every POST; the session
    cookie it is bound to lives in the client's cookie jar."""

    def __init__(self, url: str, user: str, token: str, *, verify: bool | str, timeout: float) -> None:
        self.base = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=self.base,
            auth=(user, token),
            verify=tls_verify(verify),
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
        self._lock = threading.Lock()
        self._crumb_lock = threading.Lock()
        self._crumb: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"JenkinsClient({self.base!r})"

    def get_json(self, path: str, action: str, params: Mapping[str, str] | None = None) -> Any:
        response = self._send("GET", path, action, params=params)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamUnavailable(
                f"jenkins: {action}: the answer is not JSON (HTTP {response.status_code})"
            ) from exc

    def post(self, path: str, action: str, data: Mapping[str, str] | None = None) -> httpx.Response:
        with self._lock:
            crumb = dict(self._crumb)
        response = self._request("POST", path, action, data=data, headers=crumb)
        if response.status_code == 403 and NO_CRUMB in response.text:
            crumb = self._renew_crumb(crumb, action)
            response = self._request("POST", path, action, data=data, headers=crumb)
        return self._checked(response, action)

    def close(self) -> None:
        self._http.close()

    def _renew_crumb(self, refused: dict[str, str], action: str) -> dict[str, str]:
        """A crumb in place of ``refused``. One thread fetches it; threads refused at the same
        moment take that one (a crumb is bound to the session cookie of its fetch, so a
        second fetch would start a new session and void the first crumb)."""
        with self._crumb_lock:
            with self._lock:
                if self._crumb != refused:
                    return dict(self._crumb)
            body = self.get_json("crumbIssuer/api/json", f"{action} (fetching the CSRF crumb)")
            crumb = {str(body["crumbRequestField"]): str(body["crumb"])}
            with self._lock:
                self._crumb = crumb
            return crumb

    def _send(self, method: str, path: str, action: str, **kwargs: Any) -> httpx.Response:
        return self._checked(self._request(method, path, action, **kwargs), action)

    def _request(self, method: str, path: str, action: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, "/" + path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"jenkins: {action}: Jenkins did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"jenkins: {action}: cannot reach Jenkins ({type(exc).__name__})") from exc

    def _checked(self, response: httpx.Response, action: str) -> httpx.Response:
        if response.status_code < 400:
            return response
        raise translate(response.status_code, response.headers, action, self._token)


def tls_verify(setting: bool | str) -> bool | ssl.SSLContext:
    """``ssl_verify``: true/false, or the path of a CA bundle file or directory."""
    if isinstance(setting, bool):
        return setting
    if os.path.isdir(setting):
        return ssl.create_default_context(capath=setting)
    return ssl.create_default_context(cafile=setting)


def translate(status: int, headers: Mapping[str, str], action: str, secret: str = "") -> ProviderError:
    """The plugin error for a Jenkins answer ``status`` to ``action``."""
    where = f"jenkins: {action}"
    if secret and secret in where:
        where = where.replace(secret, "***")
    if status == 429:
        wait = retry_after(headers.get("retry-after"))
        return UpstreamUnavailable(f"{where}: rate limited (HTTP 429); retry after {wait:.0f} s", retry_after=wait)
    if status in (401, 403):
        return UpstreamAuthError(
            f"{where}: Jenkins refused the credentials (HTTP {status}); check the user and the API token"
        )
    if status >= 500:
        return UpstreamUnavailable(f"{where}: Jenkins answered HTTP {status}")
    if status == 404:
        return UpstreamRejected(f"{where}: not found (HTTP 404); check the job name and that the user can see it")
    return UpstreamRejected(f"{where}: Jenkins refused the request (HTTP {status})")


def retry_after(value: str | None) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
