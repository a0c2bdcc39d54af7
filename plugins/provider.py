"""The ``Provider`` base class: what a CI system plugin implements."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import msgspec

from flashfusion.plugins.errors import PipelineConfigError
from flashfusion.plugins.events import DeliveryRejected, InboundDelivery, InboundEvent
from flashfusion.plugins.types import (
    Artifact,
    Budget,
    Dispatch,
    Pipeline,
    RepositoryLinks,
    RunRef,
    RunResults,
    RunSnapshot,
)


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """Settings of a provider that takes none."""


T = TypeVar("T")


class Provider:
    """Base class of a CI system adapter.

    Subclasses set ``name`` (the ``provider = "..."`` value of a pipeline and the name of its
    ``[providers.NAME]`` table) and ``Settings`` (a frozen dataclass whose fields are that
    table's keys), and implement ``dispatch`` and ``poll``.

    One instance per provider name lives in each process; the core calls it from several
    threads, so keep per-call state local or locked.

    Capabilities a provider may declare in ``capabilities``:

    ``cancel``           ``cancel()`` is implemented.
    ``returns_run_id``   ``dispatch()`` normally knows the upstream run id at once.
    ``deployments``      snapshots may carry ``deployment_url``.
    ``runs_in_worker``   the run executes inside the worker process: the core calls
                         ``dispatch()`` from the worker instead of the request path.
    ``results``          ``results()`` and ``open_artifact()`` are implemented.
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type] = NoSettings
    #: Upstream's names of the webhook events to select when setting a hook up (empty: the
    #: provider does not accept hooks). Shown by ``flashfusion hooks show``.
    webhook_events: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: Any, *, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> Provider:
        """Build the provider from its ``[providers.NAME]`` table (may be empty)."""
        return cls(build_settings(cls.Settings, table), env=env)

    def validate(self, pipeline: Pipeline) -> None:
        """Raise ``PipelineConfigError`` for a pipeline block this provider cannot run.
        Called at start-up, without network access."""

    def check(self, pipeline: Pipeline) -> list[str]:
        """Problems found by talking to upstream (credentials, missing workflow, ...),
        one short line each; empty when all is well. Used by ``readyz`` and ``doctor``."""
        return []

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        """Start ``run`` upstream on ``ref`` with ``inputs``. Raise a ``ProviderError``
        subclass when upstream refuses or fails."""
        raise NotImplementedError(f"provider {self.name!r} does not implement dispatch")

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """Report the current state of MANY active runs of one pipeline in one call.

        Return snapshots only for runs whose state may have changed; a run left out keeps
        its state. Implementations should make one upstream list request per repository
        rather than one request per run."""
        raise NotImplementedError(f"provider {self.name!r} does not implement poll")

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        """Ask upstream to cancel ``run``; the next poll reports the outcome."""
        raise NotImplementedError(f"provider {self.name!r} cannot cancel runs")

    def close(self) -> None:
        """Release threads, sockets and child processes at shutdown."""

    def repository_links(self, pipeline: Pipeline) -> RepositoryLinks | None:
        """The repository's address on upstream's web host (no network), for the dashboard's
        commit and branch links; ``None`` (the default): shown as plain text."""
        return None

    def budget(self) -> Budget | None:
        """The remaining upstream API allowance as this instance last heard it (e.g. from the
        rate-limit headers of its latest answer), or ``None`` when it knows nothing: never
        spend a request to find out. Called by the core after provider calls, for metrics."""
        return None

    # -- outputs and artifacts (optional; capability ``results``) -------------------------------

    def results(self, pipeline: Pipeline, run: RunRef) -> RunResults:
        """The outputs and artifacts of ``run``, which upstream reports finished. Called by
        the worker once, before the run's completing transition (quality gates read the
        outputs), so it may talk to upstream. Raise a ``ProviderError`` when upstream fails:
        the run then completes without them, and a gate on an output fails as missing."""
        return RunResults()

    def open_artifact(self, pipeline: Pipeline, run: RunRef, artifact: Artifact) -> Iterator[bytes]:
        """The bytes of ``artifact`` (as ``results()`` listed it), in chunks, fetched with the
        provider's own credentials. Called on the request path of a download; raise a
        ``ProviderError`` when upstream refuses or the artifact has expired."""
        raise NotImplementedError(f"provider {self.name!r} does not serve artifacts")

    # -- inbound webhooks (optional; see flashfusion.plugins.events) ---------------------------

    def verify_delivery(self, headers: Mapping[str, str], body: bytes) -> InboundDelivery:
        """Check the signature of an inbound webhook delivery (``headers`` have lower-case
        names; ``body`` is the raw request body) in constant time, and name its delivery id
        and event. Raise ``DeliveryRejected`` when the signature is missing or wrong. Called on
        the request path: no network, no database. Default: hooks are not accepted."""
        raise DeliveryRejected(f"provider {self.name!r} does not accept webhooks")

    def parse_event(self, delivery: InboundDelivery, headers: Mapping[str, str], body: bytes) -> InboundEvent | None:
        """Turn a stored delivery into an ``InboundEvent``; ``None`` ignores it."""
        return None

    def register_webhook(self, pipeline: Pipeline, url: str) -> str:
        """Create the repository's (project's) webhook to ``url`` with the configured secret
        through upstream's API; return a short description. Raise a ``ProviderError`` when
        upstream refuses (e.g. the token may not manage hooks)."""
        raise NotImplementedError(f"provider {self.name!r} cannot register webhooks")

    def event_matches(self, pipeline: Pipeline, event: InboundEvent) -> bool:
        """Whether ``event`` concerns ``pipeline`` (default: the same repository)."""
        return pipeline.repository_name == event.repository

    def event_snapshots(self, pipeline: Pipeline, event: InboundEvent, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        """The snapshots ``event`` causes for ``runs`` (the active runs of ``pipeline`` bound to
        ``event.upstream_id``, or the run just created for a run started upstream) — the same
        snapshots ``poll`` would return. A stale event (older than what a run's ``state``
        records) returns nothing for that run."""
        return []


def build_settings(settings_cls: type, table: Mapping[str, Any]) -> Any:
    """Build ``settings_cls`` (a dataclass) from a config table, refusing unknown keys
    and values of the wrong type with a ``PipelineConfigError`` naming the key."""
    return convert_table(settings_cls, table)


def convert_table(cls: type[T], table: Mapping[str, Any], *, unknown: str = "unknown setting") -> T:
    """``table`` as a ``cls`` dataclass, the one converter of config tables (the core's
    sections and every provider's Settings). Raises ``PipelineConfigError(key, problem)``:
    ``unknown`` for a key ``cls`` lacks, else what is wrong with the value. msgspec checks
    the annotations; a Settings annotation msgspec cannot read is checked as before (plain
    types only, anything else left to the provider)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError("Provider.Settings must be a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = sorted(set(table) - set(fields))
    if extra:
        raise PipelineConfigError(extra[0], f"{unknown} (known: {', '.join(sorted(fields)) or 'none'})")
    try:
        return msgspec.convert(dict(table), cls)
    except msgspec.ValidationError as exc:
        key, problem = _problem(str(exc), table)
        raise PipelineConfigError(key, problem) from None
    except TypeError:
        return _convert_by_name(cls, fields, table)


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$\.(?P<key>[^`\[.]*)[^`]*`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<key>[^`]+)`$")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_TYPE_NAMES = {"array": "a list", "object": "a table", "null": "None"}


def _problem(text: str, table: Mapping[str, Any]) -> tuple[str, str]:
    missing = _MISSING.match(text)
    if missing:
        return missing["key"], "required setting is missing"
    parts = _AT.match(text)
    what, key = (parts["what"], parts["key"] or "settings") if parts else (text, "settings")
    typed = _TYPE.match(what)
    if typed:
        expected = " | ".join(_TYPE_NAMES.get(t, t) for t in typed["expected"].split(" | "))
        if expected == "a list" and key in table:
            expected = "a list of strings" if isinstance(table[key], str) else expected
        value = table.get(key)
        return key, f"expected {expected}, got {type(value).__name__} {value!r:.60}"
    return key, what[:1].lower() + what[1:]


def _convert_by_name(cls: type[T], fields: dict[str, dataclasses.Field[Any]], table: Mapping[str, Any]) -> T:
    values = {}
    for key, value in table.items():
        expected = fields[key].type
        expected_name = expected if isinstance(expected, str) else getattr(expected, "__name__", str(expected))
        if not _type_matches(value, expected_name):
            raise PipelineConfigError(key, f"expected {expected_name}, got {type(value).__name__}")
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        missing = [
            n
            for n, f in fields.items()
            if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        raise PipelineConfigError(missing[0] if missing else "settings", "required setting is missing") from exc


def _type_matches(value: Any, type_name: str) -> bool:
    simple: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "float": (int, float), "bool": bool}
    for part in (p.strip() for p in type_name.split("|")):
        if part == "None":
            if value is None:
                return True
            continue
        if part in simple:
            if part in ("int", "float") and isinstance(value, bool):
                continue
            if isinstance(value, simple[part]):
                return True
        else:
            return True  # complex annotations are left to the provider's own validation
    return False
