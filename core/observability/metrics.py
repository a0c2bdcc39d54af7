"""The gateway's Prometheus metrics, recorded where things happen.

Under ``flashfusion serve`` every process (each gunicorn worker, the run worker) writes its
samples to files in ``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` creates for itself; the
API's ``GET /metrics`` adds them up (see ``exposition``). Without that variable the samples
stay in the process, which is what tests calling ``create_app`` see.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, values

from flashfusion.plugins import Budget, Provider

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


def process_id() -> int:
    """This process's id, remembered (and renewed after a fork). prometheus_client asks for it
    at every sample it records, to notice a fork: a system call each, several per request."""
    return _pid


os.register_at_fork(after_in_child=_forked)
if os.environ.get(MULTIPROC_VAR):
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)

http_requests = Counter(
    "flashfusion_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
http_latency = Histogram(
    "flashfusion_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)
rate_limited = Counter("flashfusion_rate_limited_requests", "Requests refused with 429 Too Many Requests", ["route"])
provider_requests = Counter(
    "flashfusion_provider_requests", "Calls to a provider (dispatch, poll, cancel)", ["provider", "operation"]
)
provider_errors = Counter("flashfusion_provider_errors", "Provider calls that failed", ["provider", "operation"])
# A budget belongs to the upstream account, not to a process: API processes (dispatch, cancel)
# and the worker (poll) all hear it, so the scrape shows the latest value any process heard.
budget_remaining = Gauge(
    "flashfusion_provider_budget_remaining",
    "Requests the provider's upstream API still allows in the current window, as its latest answer said",
    ["provider"],
    multiprocess_mode="mostrecent",
)
budget_limit = Gauge(
    "flashfusion_provider_budget_limit",
    "Requests the provider's upstream API allows per window",
    ["provider"],
    multiprocess_mode="mostrecent",
)
budget_reset = Gauge(
    "flashfusion_provider_budget_reset_timestamp_seconds",
    "When the provider's upstream API budget starts afresh (Unix time)",
    ["provider"],
    multiprocess_mode="mostrecent",
)
run_transitions = Counter(
    "flashfusion_run_transitions",
    "Steps in runs' lives (queued, dispatched, each change, failed), by provider and the phase and status reached",
    ["provider", "phase", "status"],
)
webhook_attempts = Counter("flashfusion_webhook_attempts", "Webhook delivery attempts, by outcome", ["outcome"])
webhook_deliveries = Counter("flashfusion_webhook_deliveries", "Webhook deliveries that ended, by result", ["result"])
queue_latency = Histogram(
    "flashfusion_queue_latency_seconds",
    "Time from a run's creation to its dispatch",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
worker_tick = Histogram(
    "flashfusion_worker_tick_seconds",
    "Duration of one worker tick",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@contextmanager
def provider_call(provider: str, operation: str, instance: Provider | None = None) -> Iterator[None]:
    """Count one call to ``provider`` and, if it fails, one error (not an operation the
    provider does not offer); then record ``instance``'s budget (a failed call's answer
    usually says it too)."""
    provider_requests.labels(provider, operation).inc()
    try:
        yield
    except NotImplementedError:
        raise
    except BaseException:
        provider_errors.labels(provider, operation).inc()
        raise
    finally:
        if instance is not None:
            record_budgets([instance])


_recorded: dict[str, Budget] = {}


def record_budgets(providers: Iterable[Provider]) -> None:
    """Set the budget gauges of the providers that know their budget (``Provider.budget``);
    a provider that knows nothing gets no sample rather than a made-up one. Only news is
    written: under ``mostrecent`` a process re-stamping what it heard long ago would hide a
    fresher value another process heard since."""
    for provider in providers:
        try:
            budget = provider.budget()
        except Exception:  # a third-party plugin's bookkeeping must not fail a provider call
            continue
        if budget is None or _recorded.get(provider.name) == budget:
            continue
        _recorded[provider.name] = budget
        budget_remaining.labels(provider.name).set(budget.remaining)
        if budget.limit is not None:
            budget_limit.labels(provider.name).set(budget.limit)
        if budget.reset_at is not None:
            budget_reset.labels(provider.name).set(budget.reset_at.timestamp())


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - start)


def process_exited(pid: int | None = None) -> None:
    """Tell the multiprocess files that ``pid`` is gone (gunicorn's ``worker_exit`` hook and
    the run worker's exit): its live gauges are dropped, its counters kept."""
    if os.environ.get(MULTIPROC_VAR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)
