"""Checks of a provider's contract outside the life of a run: its class shape, how
upstream failures map to the plugin errors, settings errors, and secrets."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from flashfusion.plugins.conformance import check_provider_class
from flashfusion.plugins.errors import (
    PipelineConfigError,
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from flashfusion.plugins.provider import Provider
from flashfusion.plugins.testing.control import FakeControl, Fault
from flashfusion.plugins.testing.session import KitSkip, opened
from flashfusion.plugins.testing.tracker import KitFailure, Tracker

RETRY_AFTER = 7
#: How far a provider's ``retry_after`` may be from what the fake asked (clock rounding).
RETRY_AFTER_SLACK = 2.0
UNKNOWN_SETTING = "kit_no_such_setting"
_WRONG_VALUES: dict[str, Any] = {"str": 12345, "int": "not a number", "float": "not a number", "bool": "yes"}


def check_shape(control: FakeControl) -> None:
    """The provider class keeps the plugin contract's shape (``conformance``)."""
    provider = control.provider()
    try:
        check_provider_class(type(provider))
    except AssertionError as exc:
        raise KitFailure(str(exc)) from exc
    finally:
        provider.close()


def _dispatch_failure(control: FakeControl, tracker: Tracker, fault: Fault) -> ProviderError:
    if not control.inject(fault, retry_after=RETRY_AFTER):
        raise KitSkip(f"the fake cannot answer with {fault.value} (FakeControl.inject)")
    try:
        run = tracker.dispatch()
    except ProviderError as exc:
        return exc
    except Exception as exc:
        raise KitFailure(
            f"with the fake answering {fault.value}, dispatch() raised {type(exc).__name__} "
            f"({exc}) instead of a ProviderError"
        ) from exc
    raise KitFailure(
        f"dispatch() succeeded (upstream_id {run.ref.upstream_id!r}) although the fake answered {fault.value}"
    )


def _expect(control: FakeControl, fault: Fault, expected: type[ProviderError]) -> ProviderError:
    with opened(control) as tracker:
        error = _dispatch_failure(control, tracker, fault)
    if not isinstance(error, expected):
        raise KitFailure(
            f"with the fake answering {fault.value}, dispatch() raised {type(error).__name__} "
            f"({error.message}), expected {expected.__name__}"
        )
    if not error.message.strip():
        raise KitFailure(f"{type(error).__name__} has an empty message (clients see it)")
    return error


def check_error_bad_credentials(control: FakeControl) -> None:
    """Refused credentials raise ``UpstreamAuthError``."""
    _expect(control, Fault.BAD_CREDENTIALS, UpstreamAuthError)


def check_error_not_found(control: FakeControl) -> None:
    """A missing job/workflow/project raises ``UpstreamRejected``."""
    _expect(control, Fault.NOT_FOUND, UpstreamRejected)


def check_error_rate_limited(control: FakeControl) -> None:
    """A rate limit raises ``UpstreamUnavailable`` whose ``retry_after`` is upstream's."""
    error = _expect(control, Fault.RATE_LIMITED, UpstreamUnavailable)
    if error.retry_after is None or abs(error.retry_after - RETRY_AFTER) > RETRY_AFTER_SLACK:
        raise KitFailure(
            f"rate limited with Retry-After {RETRY_AFTER}, the error's retry_after is {error.retry_after!r}"
        )


def check_error_unavailable(control: FakeControl) -> None:
    """A transient 5xx raises ``UpstreamUnavailable``."""
    _expect(control, Fault.UNAVAILABLE, UpstreamUnavailable)


def _simple_fields(settings_cls: type) -> Iterator[tuple[str, str]]:
    if not dataclasses.is_dataclass(settings_cls):
        return
    for f in dataclasses.fields(settings_cls):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if kind in _WRONG_VALUES:
            yield f.name, kind


def _expect_key(cls: type[Provider], table: Mapping[str, Any], key: str) -> None:
    try:
        provider = cls.from_table(table, env={})
    except PipelineConfigError as exc:
        if exc.key != key:
            raise KitFailure(
                f"settings {dict(table)!r}: the error names {exc.key!r}, expected {key!r} ({exc.problem})"
            ) from exc
        return
    except Exception as exc:
        raise KitFailure(
            f"settings {dict(table)!r}: raised {type(exc).__name__} ({exc}) instead of a "
            f"PipelineConfigError naming {key!r}"
        ) from exc
    provider.close()
    raise KitFailure(f"settings {dict(table)!r} were accepted; expected a PipelineConfigError naming {key!r}")


def check_settings_errors_name_the_key(control: FakeControl) -> None:
    """An unknown key, a value of the wrong type, and each of the fake's invalid tables are
    refused with a ``PipelineConfigError`` naming the key."""
    provider = control.provider()
    cls = type(provider)
    provider.close()
    _expect_key(cls, {UNKNOWN_SETTING: 1}, UNKNOWN_SETTING)
    for name, kind in _simple_fields(cls.Settings):
        _expect_key(cls, {name: _WRONG_VALUES[kind]}, name)
    for table, key in control.invalid_settings():
        _expect_key(cls, table, key)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self._formatter.formatException(record.exc_info)
        self.lines.append(line)


def _exercise(control: FakeControl, texts: list[str]) -> None:
    with opened(control) as tracker:
        texts += [repr(tracker.provider), repr(tracker.provider.settings), str(tracker.provider.settings)]
        run = tracker.dispatch()
        tracker.bound(run)
        texts += [repr(run.dispatch), repr(run.history)]
        if "cancel" in type(tracker.provider).capabilities:
            tracker.provider.cancel(tracker.pipeline, run.ref)
            tracker.poll()
        for fault in (Fault.BAD_CREDENTIALS, Fault.NOT_FOUND):
            try:
                error = _dispatch_failure(control, tracker, fault)
            except KitSkip:
                continue
            texts += [str(error), error.message, repr(error)]


def check_no_secret_leaks(control: FakeControl) -> None:
    """No credential appears in the provider's or its settings' repr, in an error message,
    or in a log line (at DEBUG) while dispatching, polling, cancelling and failing."""
    secrets = [s for s in control.secrets() if s]
    if not secrets:
        raise KitSkip("the fake gave the provider no secrets (FakeControl.secrets)")
    capture = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    texts: list[str] = []
    try:
        _exercise(control, texts)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
    for where, items in (("a repr or an error message", texts), ("a log line", capture.lines)):
        for text in items:
            for secret in secrets:
                if secret in text:
                    shown = text.replace(secret, "<SECRET>")
                    raise KitFailure(f"a secret appears in {where}: {shown[:300]}")
