"""Hooks in ``polling_cost.py``: the fake sends its signed webhooks (``tests/testkit/hooks_out``)
over HTTP to a local receiver, and ``HookFeed.apply`` does with each what the gateway does —
the provider's ``verify_delivery``, ``parse_event``, ``event_matches`` and ``event_snapshots``
for the runs bound to the event — so the requests that applying events costs upstream (GitLab
re-reads the pipeline and its jobs, GitHub reads a run's jobs at its completion) are counted
by the fake like polling's. The hooks that describe the runs' starting state are applied as a
warm-up (not measured), as the poll-only world's warm-up poll learns every run once.

While a repository's hooks are trusted the worker polls it every ``reconcile_interval_seconds``
(300 s) instead of every ``poll_interval_seconds``; a quiet repository keeps that trust, and a
reconcile poll that finds a status change no hook reported ends it until the next hook
(``core/hooks/activity.py``, ``Worker.poll_interval``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from polling_worlds import (  # noqa: E402
    CYCLES_PER_HOUR,
    HOOK_SECRET,
    INTERVAL,
    PERIOD,
    QUIET_CYCLES,
    Cost,
    print_head,
)
from testkit.receiver import Receiver  # noqa: E402

RECONCILE = 300.0  # reconcile_interval_seconds (the default)


class HookFeed:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.rx = Receiver().start()
        self.seen = 0
        self.received = 0
        self.applied = 0
        self.crashed = 0  # event_snapshots raised; the pipeline was polled instead (as the worker does)
        world.fake.hooks.add_target(self.rx.url("/hooks"), HOOK_SECRET)
        with world.fake._lock:  # the hook sender learns the current state (one hook per run and job)
            world.fake.hooks.emit_changes()

    def apply(self) -> set[str]:
        """Apply every delivery received since the last call; the runs whose snapshots changed."""
        self.world.fake.hooks.wait_idle()
        new = self.rx.snapshot()[self.seen :]
        self.seen += len(new)
        provider, core = self.world.provider, self.world.core
        reported: set[str] = set()
        for received in new:
            delivery = provider.verify_delivery(received.headers, received.body)
            if not delivery.wanted:
                continue
            event = provider.parse_event(delivery, received.headers, received.body)
            if event is None or event.kind != "run" or event.upstream_id is None:
                continue
            for pipeline in core.pipelines.values():
                if not provider.event_matches(pipeline, event):
                    continue
                bound = core.bound(pipeline.id, str(event.upstream_id))
                if not bound:
                    continue
                try:
                    snaps = provider.event_snapshots(pipeline, event, bound)
                except Exception:  # what the worker does then: poll the pipeline at once
                    self.crashed += 1
                    snaps = provider.poll(pipeline, [core.refs[i] for i in core.by_pipeline[pipeline.id]])
                snaps = core.apply(snaps)
                self.applied += len(snaps)
                reported.update(s.run_id for s in snaps)
        self.received += len(new)
        return reported

    def close(self) -> None:
        self.rx.stop()


@dataclasses.dataclass
class HookScenario:
    provider: str
    runs: int
    repos: int
    quiet_poll: Cost  # one poll cycle of a quiet world (what a reconcile poll costs there)
    quiet_hooks: int  # deliveries received while quiet (expected: none)
    mix_hooks: Cost  # applying the mix's deliveries, per 10 s cycle
    reconcile_poll: Cost  # one poll cycle in the middle of the mix (the reconcile poll)
    changes: int  # upstream changes made during the mix
    seen: int  # ... of which a hook's snapshots reported at once
    deliveries: int
    crashed: int
    seconds: float

    @property
    def quiet_per_hour(self) -> float:
        """Quiet for an hour: a quiet source keeps its trust, so only the reconcile polls."""
        return self.quiet_poll.counted_per_cycle * 3600 / RECONCILE

    @property
    def mix_per_hour(self) -> float:
        return self.mix_hooks.counted_per_hour + self.reconcile_poll.counted_per_cycle * 3600 / RECONCILE

    @property
    def mix_total_per_hour(self) -> float:
        return self.mix_hooks.total_per_hour + self.reconcile_poll.per_cycle * 3600 / RECONCILE


def measure_hooks(world_cls: type, runs: int, repos: int, mix_cycles: int) -> HookScenario:
    """The same world and mix as ``polling_cost.measure``, with the fake's hooks applied each
    cycle and a poll only as the reconciler (once per ``RECONCILE``: measured once, in the
    middle of the mix, and counted 12 times an hour)."""
    started = time.monotonic()
    world = world_cls(runs, repos, hooks=True)
    feed = HookFeed(world)
    try:
        world.advance_clock()
        world.core.cycle()  # warm-up, as in poll-only (the dispatch's list)
        feed.apply()  # ... and the hooks that told the runs' state so far (not measured either)
        quiet_poll, mix_hooks, reconcile_poll = Cost(), Cost(), Cost()
        before = feed.received
        for _ in range(QUIET_CYCLES):
            world.advance_clock()
            world.reset()
            feed.apply()
            assert world.core.cycle() == [], "a quiet cycle reported changes"
            quiet_poll.add(*world.counts())
        quiet_hooks = feed.received - before
        changes = seen = 0
        for cycle in range(mix_cycles):
            world.advance_clock()
            moved = [slot for slot in range(runs) if (cycle + slot) % PERIOD == 0]
            world.reset()
            for slot in moved:
                world.change(slot)
            reported = feed.apply()
            mix_hooks.add(*world.counts())
            changes += len(moved)
            seen += sum(1 for slot in moved if world.slots[slot][0] in reported)
            if cycle == mix_cycles // 2:
                world.reset()
                world.core.cycle()
                reconcile_poll.add(*world.counts())
            for slot in moved:
                if world.finished(slot):
                    world.replace(slot)  # its "requested" hook is applied (and counted) next cycle
        return HookScenario(
            world.name,
            runs,
            repos,
            quiet_poll,
            quiet_hooks,
            mix_hooks,
            reconcile_poll,
            changes,
            seen,
            feed.received - before - quiet_hooks,
            feed.crashed,
            time.monotonic() - started,
        )
    finally:
        feed.close()
        world.close()


def report_hooks(rows: list[HookScenario], poll_only: dict[tuple[str, int, int], Any], fmt: Any) -> None:
    """``poll_only``: (provider, runs, repos) -> the poll-only ``Scenario`` of the same world."""
    print_head(
        f"\nwith hooks (reconcile poll every {RECONCILE:g} s), counted requests per hour, against poll-only "
        f"at {INTERVAL:g} s",
        f"{'provider':8} {'runs':>5} {'repos':>5} | {'quiet: poll-only':>16} {'hooks':>8} {'ratio':>6} "
        f"| {'mix: poll-only':>14} {'hooks':>8} {'ratio':>6} "
        f"{'hooks/h':>8} {'changes seen by hook':>20}",
    )
    for r in rows:
        base = poll_only[(r.provider, r.runs, r.repos)]
        quiet, mix = base.quiet_gw.counted_per_hour, base.mix_gw.counted_per_hour

        def ratio(a: float, b: float) -> str:
            return f"{a / b:>5.1f}x" if b else "   inf"

        print(
            f"{r.provider:8} {r.runs:>5} {r.repos:>5} | {fmt(quiet):>16} {fmt(r.quiet_per_hour):>8} "
            f"{ratio(quiet, r.quiet_per_hour)} | {fmt(mix):>14} {fmt(r.mix_per_hour):>8} "
            f"{ratio(mix, r.mix_per_hour)} {fmt(r.deliveries / max(r.mix_hooks.cycles, 1) * CYCLES_PER_HOUR):>8} "
            f"{r.seen:>9} of {r.changes:<8}" + (f" ({r.crashed} event_snapshots raised: polled)" if r.crashed else "")
        )
