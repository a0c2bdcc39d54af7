"""The runs service: the one place that creates, checks, dispatches, cancels and lists runs.

The API's resources, the dashboard, the CLI and the worker all call these functions. A run
is dispatched by ``dispatch`` alone, whether a request does it at once or the worker does
it for a run left queued (a provider that runs in the worker, or a retry): the dispatching
process holds the run's lease while it calls the provider, and ``record_dispatch`` hands the
lease to the worker that polls it next.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from flashfusion.core.errors import BadRequest, NotFound
from flashfusion.core.gateway import Gateway
from flashfusion.core.observability import metrics, tracing
from flashfusion.core.runs import runcache, transitions
from flashfusion.core.storage.db import fetch_by_id, from_db_time, to_db_time, utcnow
from flashfusion.core.storage.models import Run
from flashfusion.plugins import Pipeline, ProviderError

log = logging.getLogger("flashfusion.runs")

REF_PATTERN = r"^(?!/)(?!.*\.\.)(?!.*//)(?!.*/$)(?!.*\.lock$)[A-Za-z0-9._/@+-]{1,255}$"
REF = re.compile(REF_PATTERN)
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$"
INPUT_NAME = re.compile(INPUT_NAME_PATTERN)
MAX_INPUTS = 25
MAX_INPUT_VALUE = 8192
#: What a run's ``status`` may be, and so what the runs list filters on.
STATUSES = ("running", "success", "failed")


def check_ref(ref: str) -> str:
    if not REF.match(ref):
        raise BadRequest("'branch' is not a valid git ref name", error="Invalid parameter")
    return ref


def parse_inputs(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("'inputs' must be a JSON object of string values", error="Invalid parameter")
    if len(raw) > MAX_INPUTS:
        raise BadRequest(f"'inputs' takes at most {MAX_INPUTS} entries", error="Invalid parameter")
    for name, value in raw.items():
        if not INPUT_NAME.match(name):
            raise BadRequest(f"input name {name[:100]!r} must match {INPUT_NAME.pattern}", error="Invalid parameter")
        if not isinstance(value, str):
            raise BadRequest(f"input {name!r} must be a string", error="Invalid parameter")
        if len(value) > MAX_INPUT_VALUE:
            raise BadRequest(f"input {name!r} is longer than {MAX_INPUT_VALUE} characters", error="Invalid parameter")
    return dict(raw)


def start_run(
    gw: Gateway,
    pipeline: Pipeline,
    ref: str,
    inputs: dict[str, str],
    api_key_id: str | None,
    trigger: Mapping[str, Any] | None = None,
    group_id: str | None = None,
) -> Run:
    """Create a run and dispatch it now, or leave it queued for the worker when the provider
    runs there. ``trigger`` records what started it (runs.triggers); ``group_id`` the group
    it belongs to (runs.groups). A provider's refusal ends the run ``failed`` and is raised as
    ProviderError."""
    in_worker = "runs_in_worker" in gw.provider_for(pipeline).capabilities
    run = transitions.create_run(
        pipeline, ref, inputs, api_key_id, trigger=trigger, group_id=group_id, **_dispatch_lease(gw, in_worker)
    )
    return run if in_worker else dispatch(gw, pipeline, run, then_lease_to=None)


def start_run_once(gw: Gateway, pipeline: Pipeline, claim: str, ref: str, trigger: Mapping[str, Any]) -> Run | None:
    """``start_run`` for a trigger that may start ``pipeline`` only once (``claim`` names it:
    a pushed commit, a schedule's due time); None when a run already claimed it."""
    in_worker = "runs_in_worker" in gw.provider_for(pipeline).capabilities
    run = transitions.create_run_once(claim, pipeline, ref, {}, trigger=trigger, **_dispatch_lease(gw, in_worker))
    if run is None or in_worker:
        return run
    return dispatch(gw, pipeline, run, then_lease_to=None)


def _dispatch_lease(gw: Gateway, in_worker: bool) -> dict[str, Any]:
    """A run dispatched by its creator is leased to "api" meanwhile; if the creator dies
    before dispatching, a worker takes it over when the lease ends."""
    return {} if in_worker else {"lease_owner": "api", "lease_seconds": gw.config.worker.lease_seconds}


def dispatch(gw: Gateway, pipeline: Pipeline, run: Run, *, then_lease_to: str | None) -> Run:
    """Ask the provider to start ``run`` and record what it answered. The run's lease goes to
    ``then_lease_to`` (the worker that dispatched it keeps polling it; a request leaves it
    to whichever worker claims it). Failures end the run: a ProviderError is re-raised for
    the caller to report, anything else is recorded as an internal dispatch error."""
    provider = gw.provider_for(pipeline)
    metrics.queue_latency.observe(max(0.0, (utcnow() - transitions.created_at(run)).total_seconds()))
    try:
        with (
            tracing.span(
                "dispatch",
                {
                    "flashfusion.pipeline": pipeline.id,
                    "flashfusion.provider": pipeline.provider,
                    "flashfusion.run_id": run.id,
                },
            ),
            metrics.provider_call(pipeline.provider, "dispatch", provider),
        ):
            inputs = tracing.dispatch_inputs(pipeline.id, run.inputs or {})
            answer = provider.dispatch(pipeline, transitions.to_ref(run), run.ref, inputs)
    except ProviderError as exc:
        log.warning("dispatch of %s for pipeline %s failed: %s", run.id, pipeline.id, exc.message)
        transitions.fail_dispatch(run.id, exc)
        raise
    except Exception:
        log.exception("dispatch of %s crashed", run.id)
        transitions.fail_run(run.id, "dispatch_error", "internal error while dispatching")
        raise
    return (
        transitions.record_dispatch(
            run.id, answer, lease_owner=then_lease_to, lease_seconds=gw.config.worker.lease_seconds
        )
        or run
    )


def cancel(run: Run) -> Run:
    """Ask for ``run`` to be cancelled; the worker carries it out (``cancel_upstream``)."""
    return transitions.request_cancel(run.id) or run


def cancel_upstream(gw: Gateway, pipeline: Pipeline, run: Run) -> bool:
    """The worker's half of a cancel, on each tick while one is requested: end a run never
    dispatched, or ask the provider once. A run that executes inside a worker is asked again
    on every tick until it ends: the worker holding it now may have taken it over from the
    one the cancel first reached, and must not resume it (a repeat is a no-op for the
    provider). Returns whether the worker should go on to poll the run this tick."""
    provider = gw.provider_for(pipeline)
    if run.cancel_sent:
        if "runs_in_worker" in provider.capabilities:
            try:
                with metrics.provider_call(pipeline.provider, "cancel", provider):
                    provider.cancel(pipeline, transitions.to_ref(run))
            except ProviderError as exc:
                log.warning("cancel of %s failed: %s", run.id, exc.message)
            except NotImplementedError:
                pass
        return True
    if run.phase == "queued":
        transitions.fail_run(run.id, "cancelled", "cancelled before it started")
        return False
    try:
        with metrics.provider_call(pipeline.provider, "cancel", provider):
            provider.cancel(pipeline, transitions.to_ref(run))
    except ProviderError as exc:
        log.warning("cancel of %s failed: %s", run.id, exc.message)
        return False
    except NotImplementedError:
        transitions.fail_run(run.id, "cancelled", "cancelled (provider cannot cancel upstream)")
        return False
    Run.update(cancel_sent=True).where(Run.id == run.id).execute()
    return False


def find_run(run_id: str, visible: Iterable[str] | None, *, remembered: bool = False) -> Run:
    """The run, if its pipeline is among ``visible`` (None: every pipeline); else NotFound,
    so that a caller learns nothing about runs outside its scope. ``remembered``: the
    process's copy may answer (``runs.runcache``: read-only use, as current as the database)."""
    if not remembered or runcache.seconds <= 0:
        run = cast("Run | None", fetch_by_id(Run, run_id[:64]))
    else:
        cache = runcache.state().cache
        run = cache.get(run_id)
        if run is None:
            stamp = cache.stamp.current()
            run = cast("Run | None", fetch_by_id(Run, run_id[:64]))
            if run is not None:
                cache.put(run, stamp, runcache.seconds)
    if run is None or (visible is not None and run.pipeline_id not in visible):
        raise NotFound("Run not found", error="Run not found")
    return run


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}", error="Invalid parameter")


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None


def list_runs(
    *,
    pipelines: Iterable[str] | None,
    status: str | None = None,
    branch: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> RunPage:
    """Newest first, ``limit`` at a time. ``pipelines`` None means every pipeline; the cursor
    is opaque to clients and stable while new runs arrive."""
    check_status(status)
    q = Run.select()
    if pipelines is not None:
        q = q.where(Run.pipeline_id.in_(sorted(pipelines) or [""]))
    if status is not None:
        q = q.where(Run.status == status)
    if branch:
        q = q.where(Run.ref == branch)
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        q = q.where((Run.created_at < created) | ((Run.created_at == created) & (Run.id < last_id)))
    rows = list(q.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(rows, encode_cursor(rows[-1]) if more else None)


def encode_cursor(run: Run) -> str:
    stamp = transitions.created_at(run).isoformat()
    return base64.urlsafe_b64encode(f"{stamp}|{run.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, run_id = raw.split("|", 1)
        return to_db_time(from_db_time(stamp)), run_id
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("'cursor' is not a cursor this API returned", error="Invalid parameter") from None
