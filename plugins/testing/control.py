"""What a plugin author implements so the kit can drive their fake CI.

The kit talks to the provider exactly as the core does, and to the fake through a
``FakeControl``: a small adapter over the author's own fake server (an HTTP server on
127.0.0.1 that answers like the real CI). Subclass ``FakeControl`` and implement the
abstract methods; the others have defaults that make the matching checks skip with a
reason.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from flashfusion.plugins.provider import Provider
from flashfusion.plugins.types import Pipeline


class Fault(Enum):
    """A failure the kit asks the fake to answer the provider's next request with."""

    BAD_CREDENTIALS = "bad_credentials"  # e.g. 401: expected UpstreamAuthError
    NOT_FOUND = "not_found"  # e.g. 404 for the job/workflow/project: expected UpstreamRejected
    RATE_LIMITED = "rate_limited"  # e.g. 429 + Retry-After: expected UpstreamUnavailable(retry_after=...)
    UNAVAILABLE = "unavailable"  # e.g. 503: expected UpstreamUnavailable


@dataclass(frozen=True)
class UpstreamRun:
    """One run as the fake CI knows it: its id (what ``Dispatch.upstream_id`` or a later
    snapshot's ``upstream_id`` must name) and the inputs it was started with."""

    upstream_id: str
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundRequest:
    """A webhook delivery as the CI would POST it: lower-case header names, raw body."""

    headers: Mapping[str, str]
    body: bytes


class FakeControl(abc.ABC):
    """The author's adapter over their fake CI (one per check: a fresh fake each time).

    ``marker_input`` is an input name the fake accepts; the kit starts each run with
    ``{marker_input: <the run's id>}`` and finds runs again by it in ``runs()``.
    ``timeout_seconds`` bounds every wait of the kit. ``expects_steps``: the fake's runs
    have steps (jobs, stages), so the provider must report some.
    """

    marker_input: str = "kit_marker"
    timeout_seconds: float = 30.0
    expects_steps: bool = True

    @abc.abstractmethod
    def provider(self) -> Provider:
        """A new provider instance configured (settings, credentials) to talk to the fake."""

    @abc.abstractmethod
    def pipeline(self) -> Pipeline:
        """A pipeline block the provider can run against the fake."""

    @abc.abstractmethod
    def runs(self) -> Sequence[UpstreamRun]:
        """Every run the fake has, in any order."""

    @abc.abstractmethod
    def states(self) -> Mapping[str, str]:
        """Every upstream state the fake can put a run in, mapped to the common status the
        provider must report for it (``running``, ``success`` or ``failed``)."""

    @abc.abstractmethod
    def set_state(self, upstream_id: str, state: str) -> None:
        """Put a run in ``state`` (a key of ``states()``, or ``unknown_state()``) so that the
        provider's next poll can see the change."""

    @abc.abstractmethod
    def advance(self, upstream_id: str) -> bool:
        """Move a run one step along its script (a step starts or ends). Return False once
        the run has nothing left to do (it finished, or is finishing on its own)."""

    def unknown_state(self) -> str | None:
        """An upstream state name the provider cannot know; ``None`` if the fake has none."""
        return None

    def inject(self, fault: Fault, *, retry_after: int) -> bool:
        """Make the fake answer the provider's next request(s) with ``fault`` (for a rate
        limit, asking to wait ``retry_after`` seconds). Return False if it cannot."""
        return False

    def secrets(self) -> Sequence[str]:
        """The credential values the provider was given; none may appear in a repr, an
        error message or a log line."""
        return ()

    def invalid_settings(self) -> Sequence[tuple[Mapping[str, Any], str]]:
        """Extra ``[providers.NAME]`` tables the provider must refuse, each with the key its
        ``PipelineConfigError`` must name (unknown keys and wrong types are tried anyway)."""
        return ()

    def inbound_request(self, upstream_id: str) -> InboundRequest | None:
        """The webhook the CI would send about this run in its current state, signed as the
        provider expects; ``None`` if the fake cannot send webhooks."""
        return None

    def tick(self) -> None:
        """Let time pass between two polls (advance a fake clock, or sleep a little)."""
        time.sleep(0.01)

    def close(self) -> None:
        """Stop the fake (default: nothing to stop)."""
        return None
