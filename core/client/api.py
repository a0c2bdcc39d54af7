"""The gateway's API over httpx, with retries that are safe because every trigger carries
an ``Idempotency-Key``.

Retried with exponential backoff and jitter: network errors (connect, read, protocol),
429 (after ``Retry-After``), 5xx, and 409 "Idempotency-Key in use" (a retry racing the
first request). Anything else is answered at once: 4xx become :class:`ApiError` (exit 2)
with the server's ``error`` and ``message``; retries exhausted become
:class:`Unreachable` (exit 4).

Tunable for tests and impatient people: ``FLASHFUSION_RETRIES`` (attempts after the first,
default 5) and ``FLASHFUSION_RETRY_DELAY`` (base delay in seconds, default 1; doubles per
attempt up to ``FLASHFUSION_RETRY_MAX_DELAY``, default 30).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import EXIT_UNREACHABLE, EXIT_USAGE

USER_AGENT = "flashfusion-client/0.1"
MAX_RETRY_AFTER = 300.0  # a server asking for a longer pause than this is treated as down
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ClientError(Exception):
    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    exit_code = EXIT_USAGE


class ApiError(ClientError):
    """The gateway refused the request (4xx): the server's words, exit 2."""

    exit_code = EXIT_USAGE

    def __init__(self, status: int, error: str, message: str, request_id: str | None = None) -> None:
        text = f"{status} {error}: {message}" if message and message != error else f"{status} {error}"
        if request_id:
            text += f" (request id {request_id})"
        super().__init__(text)
        self.status, self.error, self.detail, self.request_id = status, error, message, request_id


class Unreachable(ClientError):
    """Network errors, 5xx or 429 that outlasted the retries: exit 4."""

    exit_code = EXIT_UNREACHABLE


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RetryPolicy:
        def number(name: str, default: float, kind: Callable = float) -> Any:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise UsageError(f"{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise UsageError(f"{name} must not be negative")
            return value

        return cls(
            retries=number("FLASHFUSION_RETRIES", cls.retries, int),
            base_delay=number("FLASHFUSION_RETRY_DELAY", cls.base_delay),
            max_delay=number("FLASHFUSION_RETRY_MAX_DELAY", cls.max_delay),
        )

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based): half fixed, half jitter, so
        many CI jobs retrying together spread out."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Response:
    status: int
    body: Any
    headers: httpx.Headers


class Api:
    """One gateway. ``log`` receives one line per request when verbose (never the key)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.log = log
        self.sleep = sleep
        self.clock_offset = 0.0  # server clock minus local clock, from the Date header
        self.requests = 0
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            follow_redirects=False,
            headers={"X-API-Key": api_key, "User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the endpoints -------------------------------------------------------------------

    def trigger(
        self, pipeline_id: str, branch: str | None, inputs: dict[str, str], idempotency_key: str
    ) -> tuple[dict, bool]:
        body: dict[str, Any] = {"pipeline_id": pipeline_id}
        if branch:
            body["branch"] = branch
        if inputs:
            body["inputs"] = inputs
        resp = self.request("POST", "/api/trigger-pipeline", json=body, headers={"Idempotency-Key": idempotency_key})
        return resp.body, resp.headers.get("Idempotent-Replayed", "").lower() == "true"

    def status(self, run_id: str, *, wait: int = 0, version: int | None = None) -> dict:
        params: dict[str, Any] = {"run_id": run_id}
        if wait:
            params["wait"] = wait
            if version is not None:
                params["version"] = version
        return self.request("GET", "/api/get-status", params=params, read_timeout=wait + 20.0).body["run"]

    def runs(
        self, *, pipeline_id: str | None = None, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict:
        params = {
            k: v
            for k, v in {"pipeline_id": pipeline_id, "status": status, "limit": limit, "cursor": cursor}.items()
            if v is not None
        }
        return self.request("GET", "/api/runs", params=params).body

    def config(self, pipeline_id: str) -> dict:
        return self.request("GET", "/api/get-config", params={"pipeline_id": pipeline_id}).body["config"]

    def cancel(self, run_id: str) -> dict:
        return self.request("POST", "/api/cancel-run", json={"run_id": run_id}).body["run"]

    def trigger_group(self, runs: list[dict[str, Any]], idempotency_key: str) -> tuple[dict, bool]:
        resp = self.request(
            "POST", "/api/trigger-pipelines", json={"runs": runs}, headers={"Idempotency-Key": idempotency_key}
        )
        return resp.body, resp.headers.get("Idempotent-Replayed", "").lower() == "true"

    def group(self, group_id: str) -> dict:
        return self.request("GET", "/api/get-group", params={"group_id": group_id}).body["group"]

    def download(self, url: str, path: Any) -> int:
        """Stream a gateway download (a path on this gateway) into ``path``; the byte count."""
        if not url.startswith("/"):
            raise UsageError("refusing a download URL that is not on this gateway")
        size = 0
        timeout = httpx.Timeout(300.0, connect=10.0)
        with self._http.stream("GET", url, headers={"Accept": "*/*"}, timeout=timeout) as raw:
            if raw.status_code >= 400:
                raw.read()
                body = _json(raw)
                error = body.get("error") if isinstance(body, dict) else None
                message = body.get("message") if isinstance(body, dict) else None
                raise ApiError(
                    raw.status_code,
                    str(error or raw.reason_phrase),
                    str(message or ""),
                    raw.headers.get("X-Request-ID"),
                )
            with open(path, "wb") as f:
                for chunk in raw.iter_bytes():
                    f.write(chunk)
                    size += len(chunk)
        return size

    # -- the machinery -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        headers: dict | None = None,
        read_timeout: float | None = None,
    ) -> Response:
        timeout = httpx.Timeout(max(30.0, read_timeout or 0), connect=10.0)
        attempt = 0
        while True:
            started = time.monotonic()
            self.requests += 1
            try:
                raw = self._http.request(method, path, params=params, json=json, headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._log(f"{method} {path} -> {problem}")
                delay = self._next_delay(attempt, None, f"cannot reach {self.base_url}: {problem}")
            else:
                self._note_clock(raw)
                self._log(
                    f"{method} {raw.request.url.raw_path.decode(errors='replace')} -> {raw.status_code} "
                    f"in {time.monotonic() - started:.2f}s"
                    + (
                        f" (rate limit: {raw.headers['X-RateLimit-Remaining']} left)"
                        if "X-RateLimit-Remaining" in raw.headers
                        else ""
                    )
                )
                body = _json(raw)
                if raw.status_code < 400:
                    return Response(raw.status_code, body, raw.headers)
                error = body.get("error") if isinstance(body, dict) else None
                message = body.get("message") if isinstance(body, dict) else None
                error = str(error or raw.reason_phrase or "HTTP error")
                message = str(message or "")
                request_id = raw.headers.get("X-Request-ID")
                retryable = raw.status_code in RETRY_STATUSES or (raw.status_code == 409 and "in use" in error.lower())
                if not retryable:
                    raise ApiError(raw.status_code, error, message, request_id)
                wait = retry_after_seconds(raw.headers.get("Retry-After")) if raw.status_code in (429, 503) else None
                text = str(ApiError(raw.status_code, error, message, request_id))
                if raw.status_code == 429 and wait is not None and wait > MAX_RETRY_AFTER:
                    raise Unreachable(f"rate limited by the gateway for {wait:.0f} s: {text}")
                delay = self._next_delay(attempt, wait, f"the gateway answered {text}")
            attempt += 1
            self._log(f"retry {attempt}/{self.retry.retries} in {delay:.1f}s")
            self.sleep(delay)

    def _next_delay(self, attempt: int, retry_after: float | None, problem: str) -> float:
        if attempt >= self.retry.retries:
            suffix = f" (after {attempt} retr{'y' if attempt == 1 else 'ies'})" if attempt else ""
            raise Unreachable(problem + suffix)
        delay = self.retry.backoff(attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _note_clock(self, raw: httpx.Response) -> None:
        date = raw.headers.get("Date")
        if date:
            try:
                self.clock_offset = parsedate_to_datetime(date).timestamp() - time.time()
            except (TypeError, ValueError):
                pass

    def _log(self, line: str) -> None:
        if self.log:
            self.log(line)


def _json(raw: httpx.Response) -> Any:
    try:
        return raw.json()
    except ValueError:
        return None


def plain_http_warning(base_url: str) -> str | None:
    """The key would cross the network in clear text."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1") and not host.endswith(".localhost"):
        return f"warning: {base_url} is plain http: the API key crosses the network unencrypted; use https"
    return None


def check_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the gateway URL must look like https://host[:port], not {base_url!r}")
    return base_url.rstrip("/")


def stderr_log(line: str) -> None:
    print(f"flashfusion: {line}", file=sys.stderr, flush=True)
