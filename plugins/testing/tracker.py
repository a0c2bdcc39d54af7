"""The core's side of a provider, as the kit plays it: starting runs, keeping each run's
``RunRef`` up to date from the snapshots, polling the active ones, and refusing any
snapshot that breaks the common model."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flashfusion.plugins.provider import Provider
from flashfusion.plugins.testing.control import FakeControl
from flashfusion.plugins.types import PHASES, RUN_STATUSES, STEP_STATUSES, Dispatch, RunRef, RunSnapshot


class KitFailure(AssertionError):
    """A check found the provider breaking the contract; the message says how."""


@dataclass
class TrackedRun:
    """One run as the core would hold it."""

    ref: RunRef
    status: str = "running"
    phase: str = "dispatching"
    conclusion: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dispatch: Dispatch | None = None
    history: list[RunSnapshot] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.status in ("success", "failed")


def new_run_id() -> str:
    return "kit-" + uuid.uuid4().hex[:12]


class Tracker:
    """Runs of one provider and one pipeline of ``control``."""

    def __init__(self, control: FakeControl, provider: Provider) -> None:
        self.control = control
        self.provider = provider
        self.pipeline = control.pipeline()
        self.runs: dict[str, TrackedRun] = {}

    def new_ref(self) -> RunRef:
        run_id = new_run_id()
        return RunRef(
            id=run_id,
            pipeline_id=self.pipeline.id,
            ref=self.pipeline.branch,
            inputs={self.control.marker_input: run_id},
            created_at=datetime.now(UTC),
        )

    def dispatch(self, ref: RunRef | None = None) -> TrackedRun:
        ref = ref or self.new_ref()
        result = self.provider.dispatch(self.pipeline, ref, ref.ref, ref.inputs)
        if not isinstance(result, Dispatch):
            raise KitFailure(f"dispatch() returned {type(result).__name__}, not a Dispatch")
        run = TrackedRun(
            ref=dataclasses.replace(
                ref,
                upstream_id=result.upstream_id,
                workflow_id=result.workflow_id,
                provider_status=result.provider_status,
                state=dict(result.state),
            ),
            dispatch=result,
        )
        if result.upstream_id is not None:
            run.phase = "queued"
        self.runs[ref.id] = run
        return run

    def poll(self) -> list[RunSnapshot]:
        """One poll of every active run, as the worker's tick does it."""
        active = [r.ref for r in self.runs.values() if not r.terminal]
        if not active:
            return []
        snapshots = self.provider.poll(self.pipeline, active)
        asked = {r.id for r in active}
        for snapshot in snapshots:
            if snapshot.run_id not in asked:
                raise KitFailure(
                    f"poll() returned a snapshot for run {snapshot.run_id!r}, which it was not asked about"
                )
            self.apply(self.runs[snapshot.run_id], snapshot)
        return list(snapshots)

    def apply(self, run: TrackedRun, snapshot: RunSnapshot) -> None:
        check_snapshot(snapshot)
        run.history.append(snapshot)
        run.status, run.phase = snapshot.status, snapshot.phase
        for name in ("conclusion", "started_at", "finished_at"):
            value = getattr(snapshot, name)
            if value is not None:
                setattr(run, name, value)
        changes = {
            name: getattr(snapshot, name)
            for name in ("upstream_id", "provider_status", "steps", "state")
            if getattr(snapshot, name) is not None
        }
        run.ref = dataclasses.replace(run.ref, **changes)

    def wait(self, run: TrackedRun, done: Callable[[TrackedRun], bool], what: str) -> TrackedRun:
        """Tick and poll until ``done(run)``; fail naming ``what`` after the control's timeout."""
        deadline = time.monotonic() + self.control.timeout_seconds
        while not done(run):
            if time.monotonic() > deadline:
                raise KitFailure(
                    f"timed out after {self.control.timeout_seconds:g} s waiting for {what} "
                    f"(run {run.ref.id}: {describe(run)})"
                )
            self.control.tick()
            self.poll()
        return run

    def bound(self, run: TrackedRun) -> str:
        """The run's upstream id, polling until the provider has found it."""
        self.wait(
            run,
            lambda r: r.ref.upstream_id is not None or r.terminal,
            "the dispatched run to be bound to an upstream run",
        )
        if run.ref.upstream_id is None:
            raise KitFailure(f"run {run.ref.id} ended without an upstream run ({describe(run)})")
        return run.ref.upstream_id


def describe(run: TrackedRun) -> str:
    return (
        f"status={run.status} phase={run.phase} conclusion={run.conclusion} "
        f"provider_status={run.ref.provider_status!r} upstream_id={run.ref.upstream_id!r}"
    )


def check_snapshot(snapshot: RunSnapshot) -> None:
    """The rules every snapshot keeps, whatever the check."""
    where = f"snapshot of run {snapshot.run_id}"
    if snapshot.status not in RUN_STATUSES:
        raise KitFailure(f"{where}: status {snapshot.status!r} is not one of {', '.join(RUN_STATUSES)}")
    if snapshot.phase not in PHASES:
        raise KitFailure(f"{where}: phase {snapshot.phase!r} is not one of {', '.join(PHASES)}")
    if snapshot.terminal != (snapshot.phase == "completed"):
        raise KitFailure(
            f"{where}: status {snapshot.status!r} with phase {snapshot.phase!r} "
            "(a run is success/failed exactly when its phase is completed)"
        )
    times = [("started_at", snapshot.started_at), ("finished_at", snapshot.finished_at)]
    for step in snapshot.steps or ():
        if step.status not in STEP_STATUSES:
            raise KitFailure(
                f"{where}: step {step.name!r} has status {step.status!r}, not one of {', '.join(STEP_STATUSES)}"
            )
        times += [
            (f"step {step.name!r} started_at", step.started_at),
            (f"step {step.name!r} completed_at", step.completed_at),
        ]
    for name, value in times:
        if value is not None and value.utcoffset() is None:
            raise KitFailure(f"{where}: {name} is a naive datetime (must be timezone-aware UTC)")
