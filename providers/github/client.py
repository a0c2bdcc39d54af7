"""Credentials and PyGithub clients.

PyGithub's ``Requester`` keeps the request being sent on a shared connection object, so one
``Github`` instance must not serve two threads at once. ``ClientPool`` hands each caller its own
client for the duration of a call and reuses idle ones; clients are built with ``lazy=True``
(no request until data is needed), ``retry=None`` and no client-side sleeps: rate limits are
handled by the provider, which delays polling instead of blocking a thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from github import Auth, Github, GithubIntegration

from flashfusion.providers.github.errors import CredentialsMissing
from flashfusion.providers.github.settings import Settings

Clock = Callable[[], float]


def github_kwargs(settings: Settings, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Constructor arguments shared by ``Github`` and ``GithubIntegration``."""
    kwargs: dict[str, Any] = {
        "base_url": settings.base_url.rstrip("/"),
        "timeout": max(1, math.ceil(settings.timeout_seconds)),  # PyGithub asserts an int
        "retry": None,
        "seconds_between_requests": None,
        "seconds_between_writes": None,
    }
    kwargs.update(overrides or {})
    return kwargs


class TokenSource(Protocol):
    def token(self) -> str: ...

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message."""
        ...


class EnvToken:
    """A personal or fine-grained token read from ``env[name]`` at each use."""

    def __init__(self, env: Mapping[str, str], name: str) -> None:
        self._env = env
        self._name = name

    def token(self) -> str:
        value = self._env.get(self._name, "").strip()
        if not value:
            raise CredentialsMissing(f"environment variable {self._name} is not set")
        return value

    def secrets(self) -> tuple[str, ...]:
        value = self._env.get(self._name, "").strip()
        return (value,) if value else ()


class AppInstallationToken:
    """Installation tokens of a GitHub App, fetched with a JWT and refreshed before expiry
    (at the latest five minutes before, or half-way through a short-lived token)."""

    def __init__(
        self, settings: Settings, env: Mapping[str, str], clock: Clock, overrides: Mapping[str, Any] | None = None
    ) -> None:
        self._settings = settings
        self._env = env
        self._clock = clock
        self._overrides = overrides
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def _private_key(self) -> str:
        s = self._settings
        if s.private_key_env:
            value = self._env.get(s.private_key_env, "")
            if value.strip():
                return value.replace("\\n", "\n")
            if not s.private_key_file:
                raise CredentialsMissing(f"environment variable {s.private_key_env} is not set")
        assert s.private_key_file
        try:
            return Path(s.private_key_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialsMissing(f"cannot read private_key_file ({exc.strerror})") from exc

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._refresh_at:
                s = self._settings
                assert s.app_id is not None and s.installation_id is not None
                integration = GithubIntegration(
                    auth=Auth.AppAuth(s.app_id, self._private_key()), **github_kwargs(s, self._overrides)
                )
                try:
                    grant = integration.get_access_token(s.installation_id)
                finally:
                    integration.close()
                expires = grant.expires_at.timestamp()
                self._token = grant.token
                self._refresh_at = expires - min(300.0, max(0.0, expires - now) / 2)
            return self._token

    def secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()


def token_source(
    settings: Settings, env: Mapping[str, str], clock: Clock, overrides: Mapping[str, Any] | None = None
) -> TokenSource:
    if settings.app_id is not None:
        return AppInstallationToken(settings, env, clock, overrides)
    return EnvToken(env, settings.token_env)


class ClientPool:
    """Per-call PyGithub clients for the current token; idle clients are reused. After each
    call that heard from GitHub, ``observe`` gets the client's ``Requester`` (its rate-limit
    bookkeeping of the latest answer)."""

    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        overrides: Mapping[str, Any] | None = None,
        max_idle: int = 8,
        observe: Callable[[Any], None] | None = None,
    ) -> None:
        self._settings = settings
        self._observe = observe
        self._tokens = tokens
        self._overrides = overrides
        self._max_idle = max_idle
        self._idle: list[tuple[str, Github]] = []
        self._lock = threading.Lock()

    def _make(self, token: str) -> Github:
        kwargs = github_kwargs(self._settings, self._overrides)
        kwargs.setdefault("per_page", self._settings.per_page)
        kwargs.setdefault("lazy", True)
        return Github(auth=Auth.Token(token), **kwargs)

    @contextmanager
    def client(self) -> Iterator[Github]:
        token = self._tokens.token()
        with self._lock:
            stale = [g for t, g in self._idle if t != token]
            self._idle = [(t, g) for t, g in self._idle if t == token]
            client = self._idle.pop()[1] if self._idle else None
        for g in stale:
            g.close()
        if client is None:
            client = self._make(token)
        heard = _rate_info(client)
        try:
            yield client
        finally:
            if self._observe is not None and _rate_info(client) != heard:
                self._observe(client.requester)
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append((token, client))
                    client = None
            if client is not None:
                client.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, g in idle:
            g.close()


def _rate_info(client: Github) -> tuple[Any, ...]:
    """What the client's ``Requester`` kept of the last answer's ``x-ratelimit-*`` headers
    (the attributes, not ``Github.rate_limiting``, which asks GitHub when it knows nothing)."""
    return (*client.requester.rate_limiting, client.requester.rate_limiting_resettime)
