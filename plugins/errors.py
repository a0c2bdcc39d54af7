"""Errors a provider raises; the core maps each to one HTTP answer.

    ProviderError               502  the provider failed (base class)
     +-- UpstreamRejected       422  upstream refused the request (unknown ref, workflow, ...)
     +-- UpstreamAuthError      502  upstream refused our credentials
     +-- UpstreamUnavailable    502  upstream answered 5xx or could not be reached
     +-- UpstreamTimeout        504  upstream did not answer in time
     +-- ArtifactGone           404  the artifact expired or was deleted upstream
    PipelineConfigError             a pipeline block is unusable (raised at start-up)

Messages are shown to API clients: never put a token or other secret in one.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider could not do what was asked. ``message`` is safe to show to clients."""

    http_status = 502
    error = "Provider error"
    conclusion = "dispatch_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class UpstreamRejected(ProviderError):
    http_status = 422
    error = "Upstream rejected the request"


class UpstreamAuthError(ProviderError):
    http_status = 502
    error = "Upstream authentication failed"


class UpstreamUnavailable(ProviderError):
    http_status = 502
    error = "Upstream unavailable"


class UpstreamTimeout(ProviderError):
    http_status = 504
    error = "Upstream timeout"


class ArtifactGone(ProviderError):
    http_status = 404
    error = "Artifact not found"


class PipelineConfigError(Exception):
    """A configuration block is wrong. ``key`` is the dotted key inside the pipeline or
    provider table (e.g. ``workflow``), ``problem`` says what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
