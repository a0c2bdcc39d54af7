"""Checks of what a provider does with runs: dispatch, binding, polling, steps, cancel,
inbound events. Each takes a fresh ``FakeControl`` and raises ``KitFailure`` or ``KitSkip``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from flashfusion.plugins.testing.control import FakeControl
from flashfusion.plugins.testing.inbound import parses_events, snapshots_from_request
from flashfusion.plugins.testing.session import KitSkip, opened
from flashfusion.plugins.testing.tracker import KitFailure, TrackedRun, Tracker, describe
from flashfusion.plugins.types import RunSnapshot, StepResult

CONCURRENT_DISPATCHES = 4


def _upstream_inputs(control: FakeControl, upstream_id: str) -> dict[str, str] | None:
    """The inputs of the fake's run ``upstream_id``, giving the fake until the kit's timeout
    to list it (a run may appear a moment after dispatch returns)."""
    deadline = time.monotonic() + control.timeout_seconds
    while True:
        for run in control.runs():
            if run.upstream_id == upstream_id:
                return dict(run.inputs)
        if time.monotonic() > deadline:
            return None
        control.tick()


def _expect_bound_to_own_run(control: FakeControl, tracker: Tracker, run: TrackedRun) -> str:
    upstream = tracker.bound(run)
    inputs = _upstream_inputs(control, upstream)
    if inputs is None:
        raise KitFailure(f"run {run.ref.id} was bound to upstream run {upstream!r}, which the fake does not have")
    marker = inputs.get(control.marker_input)
    if marker != run.ref.id:
        raise KitFailure(f"run {run.ref.id} was bound to upstream run {upstream!r}, which was started for {marker!r}")
    return upstream


def check_dispatch_binds(control: FakeControl) -> None:
    """dispatch() starts exactly one upstream run and returns its id, or a correlation that
    the following polls turn into that id."""
    with opened(control) as tracker:
        before = len(control.runs())
        run = tracker.dispatch()
        _expect_bound_to_own_run(control, tracker, run)
        started = len(control.runs()) - before
        if started != 1:
            raise KitFailure(f"one dispatch started {started} upstream runs")


def check_concurrent_dispatches(control: FakeControl) -> None:
    """Dispatches made at the same moment from several threads each end bound to the
    upstream run started for them."""
    with opened(control) as tracker:
        refs = [tracker.new_ref() for _ in range(CONCURRENT_DISPATCHES)]
        barrier = threading.Barrier(len(refs))
        errors: list[BaseException] = []

        def start(index: int) -> None:
            try:
                barrier.wait(timeout=control.timeout_seconds)
                tracker.dispatch(refs[index])
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(refs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(control.timeout_seconds)
        if errors:
            raise KitFailure(f"a concurrent dispatch failed: {errors[0]!r}") from errors[0]
        seen: dict[str, str] = {}
        for ref in refs:
            upstream = _expect_bound_to_own_run(control, tracker, tracker.runs[ref.id])
            if upstream in seen:
                raise KitFailure(f"runs {seen[upstream]} and {ref.id} were both bound to upstream run {upstream!r}")
            seen[upstream] = ref.id


#: Polls after which a run that already has the expected status and got no new snapshot
#: counts as settled (the new upstream state looked like the previous one).
QUIET_POLLS = 3


def _settled(seen: int, expected: str | None = None) -> Callable[[TrackedRun], bool]:
    """Done once a snapshot newer than the ``seen`` first ones arrived (with ``expected``:
    and the run has that status or has ended, or it had it already and stayed quiet)."""
    polls = 0

    def done(run: TrackedRun) -> bool:
        nonlocal polls
        polls += 1
        if len(run.history) <= seen:
            return expected is not None and run.status == expected and polls > QUIET_POLLS
        return expected is None or run.status == expected or run.terminal

    return done


def check_states_map(control: FakeControl) -> None:
    """Every upstream state maps to the expected common status (a wrong mapping shows up as
    a wrong terminal status, or as a run that never ends)."""
    with opened(control) as tracker:
        for state, expected in control.states().items():
            run = tracker.dispatch()
            upstream = tracker.bound(run)
            seen = len(run.history)
            control.set_state(upstream, state)
            tracker.wait(run, _settled(seen, expected), f"status {expected!r} for upstream state {state!r}")
            if run.status != expected:
                raise KitFailure(
                    f"upstream state {state!r} was reported as {run.status!r}, expected {expected!r} ({describe(run)})"
                )


def check_unknown_state_kept(control: FakeControl) -> None:
    """A state the provider does not know never makes poll() raise; the raw value is kept
    in ``provider_status``."""
    state = control.unknown_state()
    if state is None:
        raise KitSkip("the fake has no upstream state the provider could not know (FakeControl.unknown_state)")
    with opened(control) as tracker:
        run = tracker.dispatch()
        upstream = tracker.bound(run)
        control.set_state(upstream, state)
        try:
            tracker.wait(
                run, lambda r: r.ref.provider_status == state, f"provider_status {state!r} (the raw upstream state)"
            )
        except KitFailure:
            raise
        except Exception as exc:
            raise KitFailure(
                f"poll() raised {type(exc).__name__} for the unknown upstream state {state!r}: {exc}"
            ) from exc


_RANK = {"pending": 0, "running": 1}


def _steps(history: list[RunSnapshot]) -> Iterator[tuple[int, tuple[StepResult, ...]]]:
    for index, snapshot in enumerate(history):
        if snapshot.steps is not None:
            yield index, snapshot.steps


def _earlier(new: datetime | None, old: datetime | None) -> bool:
    return new is not None and old is not None and new < old


@dataclass
class _Seen:
    step: StepResult


def _check_forward(run: TrackedRun) -> None:
    last_started: datetime | None = None
    for index, snapshot in enumerate(run.history):
        if _earlier(snapshot.started_at, last_started):
            raise KitFailure(f"snapshot {index}: started_at moved back from {last_started} to {snapshot.started_at}")
        last_started = snapshot.started_at or last_started
        if _earlier(snapshot.finished_at, last_started):
            raise KitFailure(
                f"snapshot {index}: finished_at {snapshot.finished_at} is before started_at {last_started}"
            )
    seen: dict[str, _Seen] = {}
    for index, steps in _steps(run.history):
        names = {s.name for s in steps}
        gone = sorted(name for name, old in seen.items() if name not in names and old.step.status != "pending")
        if gone:
            raise KitFailure(
                f"snapshot {index}: step {gone[0]!r} disappeared once started (a pending step may be "
                "replaced by the steps it turns into; a started one stays)"
            )
        for step in steps:
            old = seen.get(step.name)
            if _earlier(step.completed_at, step.started_at):
                raise KitFailure(f"snapshot {index}: step {step.name!r} completed before it started")
            if old is not None:
                was, now = old.step, step
                if _RANK.get(now.status, 2) < _RANK.get(was.status, 2) or (
                    _RANK.get(was.status, 2) == 2 and now.status != was.status
                ):
                    raise KitFailure(
                        f"snapshot {index}: step {step.name!r} went from {was.status!r} back to {now.status!r}"
                    )
                for name in ("started_at", "completed_at"):
                    if _earlier(getattr(now, name), getattr(was, name)):
                        raise KitFailure(f"snapshot {index}: step {step.name!r} {name} moved back")
            seen[step.name] = _Seen(step)


def check_steps_move_forward(control: FakeControl) -> None:
    """Played step by step, a run's steps only move forward (pending -> running -> a final
    status that then stays), no started step disappears, and no timestamp moves back."""
    with opened(control) as tracker:
        run = tracker.dispatch()
        upstream = tracker.bound(run)
        while control.advance(upstream) and not run.terminal:
            control.tick()
            tracker.poll()
        tracker.wait(run, lambda r: r.terminal, "the run to finish once the fake played its whole script")
        _check_forward(run)
        if control.expects_steps and not any(True for _ in _steps(run.history)):
            raise KitFailure("the fake's run had steps but no snapshot reported any")


def check_cancel_ends_run(control: FakeControl) -> None:
    """cancel() ends a running run: the next polls report it failed with conclusion
    ``cancelled``."""
    with opened(control) as tracker:
        if "cancel" not in type(tracker.provider).capabilities:
            raise KitSkip("the provider does not declare the 'cancel' capability")
        run = tracker.dispatch()
        upstream = tracker.bound(run)
        control.advance(upstream)
        tracker.provider.cancel(tracker.pipeline, run.ref)
        tracker.wait(run, lambda r: r.terminal, "the cancelled run to end")
        if run.status != "failed" or run.conclusion != "cancelled":
            raise KitFailure(
                f"a cancelled run ended with {describe(run)}, expected status failed and conclusion cancelled"
            )


def check_inbound_matches_polling(control: FakeControl) -> None:
    """For a provider that parses inbound events: the webhook about a run gives the same
    snapshot as polling the same run."""
    with opened(control) as tracker:
        if not parses_events(tracker.provider):
            raise KitSkip(f"provider {type(tracker.provider).name!r} does not parse inbound events")
        for state in control.states():
            run = tracker.dispatch()
            upstream = tracker.bound(run)
            control.set_state(upstream, state)
            request = control.inbound_request(upstream)
            if request is None:
                raise KitSkip("the fake cannot send webhooks (FakeControl.inbound_request)")
            before = run.ref
            from_event = snapshots_from_request(tracker.provider, tracker.pipeline, request, [before]) or []
            seen = len(run.history)
            tracker.wait(run, _settled(seen), f"a polled snapshot for state {state!r}")
            polled = run.history[-1]
            if not from_event:
                raise KitFailure(
                    f"the webhook for upstream state {state!r} gave no snapshot; polling gave {_key(polled)}"
                )
            if _key(from_event[-1]) != _key(polled):
                raise KitFailure(
                    f"upstream state {state!r}: the webhook gave {_key(from_event[-1])}, polling gave {_key(polled)}"
                )


def _key(snapshot: RunSnapshot) -> tuple[str, str, str | None, str | None]:
    return snapshot.status, snapshot.phase, snapshot.conclusion, snapshot.provider_status
