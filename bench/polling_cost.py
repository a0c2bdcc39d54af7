"""Provider polling cost: upstream requests per poll cycle and rate-limited requests per hour,
FlashFusion's GitHub and GitLab providers against the naive loop CI scripts use (one
``GET run`` per active run per cycle, through PyGithub / python-gitlab), both against the same
fake GitHub / fake GitLab in the same run and counted by the fakes.

    python bench/polling_cost.py [--sizes 1,10,100,1000] [--mix-cycles 12] [--no-verify] [--hooks]

For every size (active runs) and layout (all in one repository, or spread over 10), at 10 s
freshness (``poll_interval_seconds = 10``; each cycle the fake clock moves 10 s):

* quiet: nothing changes upstream (3 cycles measured, after one warm-up cycle);
* mix: every run changes state or step once every 2 minutes (run i moves on cycles where
  (cycle + i) % 12 == 0, so each of the 12 cycles moves 1/12 of the runs); a run takes 10
  changes (about 20 minutes) from queued to completed and is replaced by a new queued run,
  so the number of active runs stays constant. Each run is pre-advanced to a different point
  of its life, so completions (and their deployment lookups) are spread over the window.
  12 cycles = one full 2-minute period, so requests per hour = 30 x the period's count.

"counted" is what the fake charges against the rate limit: on GitHub a 304 answer to a
conditional request is free; on GitLab every request counts. Requests per hour =
(requests per cycle averaged over the measured cycles) x 360 cycles.

Capacity of one GitHub token (5,000 counted requests/h): naive = 5000 / 360 runs; the
gateway's is searched by measuring the mix at sizes interpolated between the nearest measured
sizes below and above the budget (a few secant steps); the answer is the largest size
measured within 5,000 counted requests per hour.

``--hooks`` measures every world a second time with the fake's signed webhooks applied through
the provider and polling only as the reconciler (``polling_hooks.py``), side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import machine  # noqa: E402
from polling_hooks import RECONCILE, HookScenario, measure_hooks, report_hooks  # noqa: E402
from polling_worlds import (  # noqa: E402
    CYCLES_PER_HOUR,
    INTERVAL,
    LIFE,
    PERIOD,
    QUIET_CYCLES,
    TOKEN_BUDGET,
    Cost,
    GitHubWorld,
    GitLabWorld,
    print_head,
)

# ----------------------------------------------------------------------------- measuring


@dataclasses.dataclass
class Scenario:
    provider: str
    runs: int
    repos: int
    quiet_gw: Cost
    quiet_naive: Cost
    mix_gw: Cost
    mix_naive: Cost
    completed: int
    seconds: float


def measure(world_cls: type, runs: int, repos: int, mix_cycles: int) -> Scenario:
    started = time.monotonic()
    world = world_cls(runs, repos)
    try:
        world.advance_clock()
        world.core.cycle()  # warm-up: the gateway learns every run once (not measured)
        quiet_gw, quiet_naive, mix_gw, mix_naive = Cost(), Cost(), Cost(), Cost()
        for _ in range(QUIET_CYCLES):
            world.advance_clock()
            world.reset()
            assert world.core.cycle() == [], "a quiet cycle reported changes"
            quiet_gw.add(*world.counts())
            world.reset()
            world.naive_cycle()
            quiet_naive.add(*world.counts())
        completed = 0
        for cycle in range(mix_cycles):
            world.advance_clock()
            moved = [slot for slot in range(runs) if (cycle + slot) % PERIOD == 0]
            for slot in moved:
                world.change(slot)
            world.reset()
            snaps = world.core.cycle()
            mix_gw.add(*world.counts())
            reported = {s.run_id for s in snaps}
            missing = [world.slots[s][0] for s in moved if world.slots[s][0] not in reported]
            assert not missing, f"changed runs not reported: {missing[:5]}"
            world.reset()
            world.naive_cycle()
            mix_naive.add(*world.counts())
            for slot in moved:
                if world.finished(slot):
                    completed += 1
                    world.replace(slot)
        return Scenario(
            world.name, runs, repos, quiet_gw, quiet_naive, mix_gw, mix_naive, completed, time.monotonic() - started
        )
    finally:
        world.close()


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 or x == int(x) else f"{x:,.1f}"


def report(rows: list[Scenario]) -> None:
    print_head(
        "\nrequests per 10 s cycle (total / counted against the rate limit) and counted requests per hour",
        f"{'provider':8} {'runs':>5} {'repos':>5} | {'quiet: gateway':>17} {'naive':>13} | "
        f"{'mix: gateway':>17} {'naive':>13} | {'counted/h gw quiet':>18} {'gw mix':>9} {'naive':>9} "
        f"{'naive/gw mix':>12}",
    )
    for r in rows:
        ratio = r.mix_naive.counted_per_hour / r.mix_gw.counted_per_hour if r.mix_gw.counted else float("inf")
        print(
            f"{r.provider:8} {r.runs:>5} {r.repos:>5} | "
            f"{fmt(r.quiet_gw.per_cycle):>8} / {fmt(r.quiet_gw.counted_per_cycle):>6} "
            f"{fmt(r.quiet_naive.per_cycle):>6} / {fmt(r.quiet_naive.counted_per_cycle):>4} | "
            f"{fmt(r.mix_gw.per_cycle):>8} / {fmt(r.mix_gw.counted_per_cycle):>6} "
            f"{fmt(r.mix_naive.per_cycle):>6} / {fmt(r.mix_naive.counted_per_cycle):>4} | "
            f"{fmt(r.quiet_gw.counted_per_hour):>18} {fmt(r.mix_gw.counted_per_hour):>9} "
            f"{fmt(r.mix_naive.counted_per_hour):>9} {ratio:>11.1f}x"
        )


def measured(row: Scenario | HookScenario, what: str) -> None:
    """The progress line after each measurement: a full run takes minutes."""
    print(f"  measured {row.provider} {row.runs} runs / {row.repos} repos {what}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100,1000", help="active runs, comma-separated")
    parser.add_argument("--mix-cycles", type=int, default=PERIOD, help="cycles of the realistic mix (default: 12)")
    parser.add_argument("--providers", default="github,gitlab")
    parser.add_argument(
        "--hooks",
        action="store_true",
        help=f"also measure each world with the fake's webhooks applied and a reconcile poll every {RECONCILE:g} s",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip measuring the mix at the computed capacity")
    args = parser.parse_args()
    print(machine())
    print(
        f"freshness {INTERVAL:g} s ({CYCLES_PER_HOUR:g} cycles/h); mix: each run changes every "
        f"{PERIOD * INTERVAL:g} s and completes after {LIFE} changes, then is replaced"
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    worlds = {"github": GitHubWorld, "gitlab": GitLabWorld}
    rows: list[Scenario] = []
    hook_rows = []
    for name in args.providers.split(","):
        for runs in sizes:
            for repos in (1, 10):
                if repos > runs:
                    continue
                row = measure(worlds[name], runs, repos, args.mix_cycles)
                rows.append(row)
                measured(row, f"in {row.seconds:.1f} s ({row.completed} runs completed and replaced during the mix)")
                if args.hooks:
                    hooked = measure_hooks(worlds[name], runs, repos, args.mix_cycles)
                    hook_rows.append(hooked)
                    measured(
                        hooked, f"with hooks in {hooked.seconds:.1f} s ({hooked.deliveries} deliveries in the mix)"
                    )
    report(rows)
    if hook_rows:
        report_hooks(hook_rows, {(r.provider, r.runs, r.repos): r for r in rows}, fmt)

    github_rows = [r for r in rows if r.provider == "GitHub"]
    if not github_rows:
        return
    naive_capacity = int(TOKEN_BUDGET / CYCLES_PER_HOUR)
    print(f"\nOne GitHub token ({TOKEN_BUDGET:,} requests/h), 10 s freshness:")
    print(f"  naive (1 counted GET per run per cycle = {CYCLES_PER_HOUR:g}/run/h): {naive_capacity} concurrent runs")
    for repos in (1, 10):
        pts = sorted((r.runs, r.mix_gw.counted_per_hour) for r in github_rows if r.repos == repos)
        quiet = max((r.quiet_gw.counted_per_hour for r in github_rows if r.repos == repos), default=0)
        if len(pts) < 2:
            continue
        print(
            f"  gateway, runs in {repos} repo(s): quiet cycles cost {fmt(quiet)} counted/h at up to {pts[-1][0]} runs"
        )
        if args.no_verify:
            continue
        # Secant steps between the nearest measured sizes below and above the budget, each
        # step measured; the answer is the largest size measured within the budget.
        for _ in range(5):
            below = max((p for p in pts if p[1] <= TOKEN_BUDGET), default=(0, 0.0))
            above = min((p for p in pts if p[1] > TOKEN_BUDGET), default=None)
            if above is None or above[0] - below[0] <= 1:
                break
            guess = below[0] + (TOKEN_BUDGET - below[1]) * (above[0] - below[0]) / (above[1] - below[1])
            guess = min(max(int(guess), below[0] + 1), above[0] - 1)
            if guess in dict(pts):
                break
            check = measure(GitHubWorld, guess, repos, args.mix_cycles)
            pts = sorted(pts + [(guess, check.mix_gw.counted_per_hour)])
            print(
                f"    mix with {guess} runs: {fmt(check.mix_gw.counted_per_hour)} counted/h "
                f"({fmt(check.mix_gw.total_per_hour)} requests/h in all, the rest free 304s)",
                flush=True,
            )
        best = max((p for p in pts if p[1] <= TOKEN_BUDGET), default=(0, 0.0))
        print(
            f"    -> realistic mix: {best[0]} concurrent runs within {TOKEN_BUDGET:,}/h "
            f"({fmt(best[1])} counted/h measured; {best[0] / naive_capacity:.1f}x naive)"
        )


if __name__ == "__main__":
    main()
