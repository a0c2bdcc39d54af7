"""Optional OpenTelemetry tracing (``[tracing] enabled = true``), exported over OTLP/HTTP.

Off by default, and then nothing here imports ``opentelemetry``: the packages come with the
``tracing`` extra and are imported on first use in a process that has tracing on. Each
process builds its own tracer provider on first use (gunicorn forks its workers, and an
exporter's thread does not survive a fork) and flushes it at exit (``shutdown``).

Spans: one per API request (``access_log.Tracing``), one per dispatch and per poll; a dispatch
made while handling a request is that request's child, so a trigger is one trace.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flashfusion.core.config import TracingConfig

log = logging.getLogger("flashfusion.tracing")
PACKAGES = {
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
}

_settings = TracingConfig()
_lock = threading.Lock()
_provider: Any = None  # the process's TracerProvider, once built
_provider_pid: int | None = None


def missing_packages() -> list[str]:
    """The distributions tracing needs that are not installed (found without importing them)."""
    missing = []
    for module, distribution in PACKAGES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(distribution)
    return missing


def configure(settings: TracingConfig) -> None:
    """Use ``settings`` in this process (the config decides; nothing is imported yet)."""
    global _settings
    _settings = settings


def enabled() -> bool:
    return _settings.enabled


def _tracer() -> Any:
    global _provider, _provider_pid
    with _lock:
        if _provider is None or _provider_pid != os.getpid():
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider(resource=Resource.create({"service.name": _settings.service_name}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_settings.endpoint)))
            _provider, _provider_pid = provider, os.getpid()
        return _provider.get_tracer("flashfusion")


@contextmanager
def span(name: str, attributes: Mapping[str, str | int] | None = None) -> Iterator[Any]:
    """A span around the block, current inside it (``None`` when tracing is off); an
    exception marks it failed and passes through."""
    if not _settings.enabled:
        yield None
        return
    with _tracer().start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current


def start_request_span(method: str) -> tuple[Any, Any] | None:
    """A span made current until ``end_request_span``: the API request's, whose route is known
    only once falcon has routed it."""
    if not _settings.enabled:
        return None
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind

    current = _tracer().start_span(method, kind=SpanKind.SERVER, attributes={"http.request.method": method})
    return current, context.attach(trace.set_span_in_context(current))


def end_request_span(started: tuple[Any, Any] | None, method: str, route: str, status: int) -> None:
    if started is None:
        return
    from opentelemetry import context
    from opentelemetry.trace import Status, StatusCode

    current, token = started
    current.update_name(f"{method} {route}")
    current.set_attribute("http.route", route)
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))
    current.end()
    context.detach(token)


def dispatch_inputs(pipeline_id: str, inputs: Mapping[str, str]) -> Mapping[str, str]:
    """``inputs`` plus the current trace's W3C ``traceparent`` under ``dispatch_input``, for a
    pipeline listed in ``dispatch_input_pipelines`` only (upstream may refuse an input its
    workflow does not declare) and never replacing an input the caller gave."""
    name = _settings.dispatch_input
    if not _settings.enabled or pipeline_id not in _settings.dispatch_input_pipelines or name in inputs:
        return inputs
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return {**inputs, name: carrier["traceparent"]} if "traceparent" in carrier else inputs


def shutdown() -> None:
    """Export what is left and stop this process's exporter (at process exit)."""
    global _provider
    with _lock:
        provider, _provider = (_provider, None) if _provider_pid == os.getpid() else (None, _provider)
    if provider is not None:
        try:
            provider.shutdown()
        except Exception:  # a collector that is down must not turn a clean exit into a crash
            log.warning("tracing: could not export the last spans at exit")
