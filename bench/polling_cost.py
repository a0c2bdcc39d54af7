"""Provider polling cost: upstream requests per poll cycle and rate-limited requests per hour,
FlashFusion's GitHub and GitLab providers against the naive loop CI scripts use (one
``GET run`` per active run per cycle, through PyGithub / python-gitlab), both against the same
fake GitHub / fake GitLab in the same run and counted by the fakes.

    python bench/polling_cost.py [--sizes 1,10,100,1000] [--mix-cycles 12] [--no-verify]

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
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import github  # noqa: E402  (PyGithub)
import gitlab  # noqa: E402  (python-gitlab)
from common import machine  # noqa: E402
from testkit.fake_github import DEFAULT_TOKEN, FakeClock, FakeGitHub  # noqa: E402
from testkit.fake_gitlab import FakeGitLab, JobSpec, _fmt  # noqa: E402

from flashfusion.plugins import Pipeline, RunRef, RunSnapshot  # noqa: E402
from flashfusion.plugins.provider import build_settings  # noqa: E402
from flashfusion.providers.github.plugin import GitHubProvider  # noqa: E402
from flashfusion.providers.github.settings import Settings as GitHubSettings  # noqa: E402
from flashfusion.providers.gitlab.provider import GitLabProvider  # noqa: E402

INTERVAL = 10.0  # seconds between poll cycles (the freshness asked for)
CYCLES_PER_HOUR = 3600 / INTERVAL
PERIOD = 12  # cycles between two changes of one run: 12 x 10 s = 2 minutes
LIFE = 10  # changes from queued to completed (about 20 minutes at one change every 2 minutes)
QUIET_CYCLES = 3
TOKEN_BUDGET = 5000  # GitHub: requests per hour for one personal token


@dataclasses.dataclass
class Cost:
    total: int = 0
    counted: int = 0
    cycles: int = 0

    def add(self, total: int, counted: int) -> None:
        self.total += total
        self.counted += counted
        self.cycles += 1

    @property
    def per_cycle(self) -> float:
        return self.total / self.cycles if self.cycles else 0.0

    @property
    def counted_per_cycle(self) -> float:
        return self.counted / self.cycles if self.cycles else 0.0

    @property
    def counted_per_hour(self) -> float:
        return self.counted_per_cycle * CYCLES_PER_HOUR

    @property
    def total_per_hour(self) -> float:
        return self.per_cycle * CYCLES_PER_HOUR


class Core:
    """The worker's bookkeeping in miniature: the RunRef of every active run, updated from the
    provider's snapshots the way the core applies them."""

    def __init__(self, provider: Any, pipelines: list[Pipeline], clock: Any) -> None:
        self.provider = provider
        self.pipelines = {p.id: p for p in pipelines}
        self.clock = clock
        self.refs: dict[str, RunRef] = {}
        self.by_pipeline: dict[str, list[str]] = {p.id: [] for p in pipelines}

    def track(self, run_id: str, pipeline_id: str, upstream_id: str, state: dict | None = None,
              provider_status: str | None = None) -> None:
        created = datetime.fromtimestamp(self.clock(), timezone.utc)
        self.refs[run_id] = RunRef(id=run_id, pipeline_id=pipeline_id, ref="main", inputs={}, created_at=created,
                                   upstream_id=upstream_id, state=dict(state or {}), provider_status=provider_status)
        self.by_pipeline[pipeline_id].append(run_id)

    def untrack(self, run_id: str) -> None:
        ref = self.refs.pop(run_id)
        self.by_pipeline[ref.pipeline_id].remove(run_id)

    def cycle(self) -> list[RunSnapshot]:
        out: list[RunSnapshot] = []
        for pid, ids in self.by_pipeline.items():
            if not ids:
                continue
            snaps = self.provider.poll(self.pipelines[pid], [self.refs[i] for i in ids])
            for snap in snaps:
                ref = self.refs[snap.run_id]
                self.refs[snap.run_id] = dataclasses.replace(
                    ref, upstream_id=snap.upstream_id or ref.upstream_id,
                    provider_status=snap.provider_status or ref.provider_status,
                    steps=snap.steps if snap.steps is not None else ref.steps,
                    state=dict(snap.state) if snap.state is not None else ref.state)
            out.extend(snaps)
        return out


# ----------------------------------------------------------------------------- GitHub


class GitHubWorld:
    name = "GitHub"

    def __init__(self, runs: int, repos: int) -> None:
        self.clock = FakeClock(start=1_780_000_000.0)
        self.fake = FakeGitHub(clock=self.clock, rate_limit=10**9).start()
        steps = [f"step {i}" for i in range(LIFE - 2)]  # queued -> in_progress -> job starts -> 8 steps
        self.workflows = []
        pipelines = []
        for r in range(repos):
            name = f"acme/repo{r}"
            self.fake.add_repo(name)
            self.workflows.append(self.fake.add_workflow(name, "deploy.yml", jobs=[("build", steps)]))
            pipelines.append(Pipeline(id=f"p{r}", name=f"p{r}", provider="github", repository_name=name,
                                      branch="main", options={"workflow": "deploy.yml"}))
        self.provider = GitHubProvider(GitHubSettings(base_url=self.fake.url, poll_interval_seconds=INTERVAL),
                                       env={"GITHUB_TOKEN": DEFAULT_TOKEN}, clock=self.clock)
        self.core = Core(self.provider, pipelines, self.clock)
        self.naive_client = github.Github(base_url=self.fake.url, auth=github.Auth.Token(DEFAULT_TOKEN), retry=None,
                                         seconds_between_requests=None, seconds_between_writes=None)
        self.naive_repos = {f"acme/repo{r}": self.naive_client.get_repo(f"acme/repo{r}") for r in range(repos)}
        self.repos = repos
        self.slots: list[tuple[str, int]] = []  # slot -> (run id, upstream id)
        self._seq = 0
        for i in range(runs):
            self.slots.append(self._new_run(i % repos, advance=(i * 7) % LIFE))

    def _new_run(self, repo: int, advance: int = 0) -> tuple[str, int]:
        run = self.fake.create_run(self.workflows[repo])
        if advance:
            self.fake.advance(run.id, advance)
        self._seq += 1
        run_id = f"run_{self._seq:05d}"
        self.core.track(run_id, f"p{repo}", str(run.id))
        return run_id, run.id

    def advance_clock(self) -> None:
        self.clock.advance(INTERVAL)

    def change(self, slot: int) -> None:
        self.fake.advance(self.slots[slot][1])

    def finished(self, slot: int) -> bool:
        return self.fake.runs[self.slots[slot][1]].status == "completed"

    def replace(self, slot: int) -> None:
        run_id, _ = self.slots[slot]
        repo = int(self.core.refs[run_id].pipeline_id[1:])
        self.core.untrack(run_id)
        self.slots[slot] = self._new_run(repo)

    def reset(self) -> None:
        self.fake.reset_counters()

    def counts(self) -> tuple[int, int]:
        stats = self.fake.stats()
        return stats["total"], stats["counted"]

    def naive_cycle(self) -> None:
        for run_id, upstream in self.slots:
            repo = self.core.refs[run_id].pipeline_id[1:]
            self.naive_repos[f"acme/repo{repo}"].get_workflow_run(upstream).status  # noqa: B018

    def close(self) -> None:
        self.provider.close()
        self.naive_client.close()
        self.fake.stop()


# ----------------------------------------------------------------------------- GitLab


class GitLabWorld:
    name = "GitLab"

    def __init__(self, runs: int, repos: int) -> None:
        self.clock = FakeClock(start=time.time())
        self.fake = FakeGitLab(rate_limit=10**9).start()
        stages = tuple(JobSpec(f"job{i}", f"stage{i}") for i in range(LIFE - 1))  # 9 stages: 10 advances
        self.projects = []
        pipelines = []
        for r in range(repos):
            path = f"acme/repo{r}"
            self.projects.append(self.fake.add_project(path, jobs=stages))
            pipelines.append(Pipeline(id=f"p{r}", name=f"p{r}", provider="gitlab", repository_name=path,
                                      branch="main", options={}))
        settings = build_settings(GitLabProvider.Settings, {"url": self.fake.url, "timeout_seconds": 5,
                                                            "poll_interval_seconds": INTERVAL})
        self.provider = GitLabProvider(settings, env={"GITLAB_TOKEN": self.fake.token}, clock=self.clock)
        self.core = Core(self.provider, pipelines, self.clock)
        self.naive_client = gitlab.Gitlab(self.fake.url, private_token=self.fake.token)
        self.naive_projects = {f"p{r}": self.naive_client.projects.get(f"acme/repo{r}", lazy=True)
                               for r in range(repos)}
        self.slots: list[tuple[str, int]] = []
        self._seq = 0
        for i in range(runs):
            self.slots.append(self._new_run(i % repos, advance=(i * 7) % LIFE))

    def _new_run(self, repo: int, advance: int = 0) -> tuple[str, int]:
        pid = self.fake.create_pipeline(self.projects[repo], "main", source="api")
        for _ in range(advance):
            self.fake.advance(pid)
        p = self.fake.pipeline(pid)
        self._seq += 1
        run_id = f"run_{self._seq:05d}"
        # what dispatch() hands the core for a pipeline it just created
        self.core.track(run_id, f"p{repo}", str(pid), state={
            "project_id": self.projects[repo].id, "updated_at": _fmt(p.updated_at), "status": p.status,
            "created_at": _fmt(p.created_at)}, provider_status=p.status)
        return run_id, pid

    def advance_clock(self) -> None:
        self.clock.advance(INTERVAL)
        self.fake.tick(INTERVAL)

    def change(self, slot: int) -> None:
        self.fake.advance(self.slots[slot][1])

    def finished(self, slot: int) -> bool:
        return self.fake.pipeline(self.slots[slot][1]).status in ("success", "failed", "canceled", "skipped")

    def replace(self, slot: int) -> None:
        run_id, _ = self.slots[slot]
        repo = int(self.core.refs[run_id].pipeline_id[1:])
        self.core.untrack(run_id)
        self.slots[slot] = self._new_run(repo)

    def reset(self) -> None:
        self.fake.reset_counters()

    def counts(self) -> tuple[int, int]:
        total = self.fake.total
        return total, total  # GitLab counts every authenticated request

    def naive_cycle(self) -> None:
        for run_id, upstream in self.slots:
            self.naive_projects[self.core.refs[run_id].pipeline_id].pipelines.get(upstream).status  # noqa: B018

    def close(self) -> None:
        self.provider.close()
        self.naive_client.session.close()
        self.fake.stop()


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
        return Scenario(world.name, runs, repos, quiet_gw, quiet_naive, mix_gw, mix_naive, completed,
                        time.monotonic() - started)
    finally:
        world.close()


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 or x == int(x) else f"{x:,.1f}"


def report(rows: list[Scenario]) -> None:
    print("\nrequests per 10 s cycle (total / counted against the rate limit) and counted requests per hour")
    head = (f"{'provider':8} {'runs':>5} {'repos':>5} | {'quiet: gateway':>17} {'naive':>13} | "
            f"{'mix: gateway':>17} {'naive':>13} | {'counted/h gw quiet':>18} {'gw mix':>9} {'naive':>9} "
            f"{'naive/gw mix':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r.mix_naive.counted_per_hour / r.mix_gw.counted_per_hour if r.mix_gw.counted else float("inf")
        print(f"{r.provider:8} {r.runs:>5} {r.repos:>5} | "
              f"{fmt(r.quiet_gw.per_cycle):>8} / {fmt(r.quiet_gw.counted_per_cycle):>6} "
              f"{fmt(r.quiet_naive.per_cycle):>6} / {fmt(r.quiet_naive.counted_per_cycle):>4} | "
              f"{fmt(r.mix_gw.per_cycle):>8} / {fmt(r.mix_gw.counted_per_cycle):>6} "
              f"{fmt(r.mix_naive.per_cycle):>6} / {fmt(r.mix_naive.counted_per_cycle):>4} | "
              f"{fmt(r.quiet_gw.counted_per_hour):>18} {fmt(r.mix_gw.counted_per_hour):>9} "
              f"{fmt(r.mix_naive.counted_per_hour):>9} {ratio:>11.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100,1000", help="active runs, comma-separated")
    parser.add_argument("--mix-cycles", type=int, default=PERIOD, help="cycles of the realistic mix (default: 12)")
    parser.add_argument("--providers", default="github,gitlab")
    parser.add_argument("--no-verify", action="store_true", help="skip measuring the mix at the computed capacity")
    args = parser.parse_args()
    print(machine())
    print(f"freshness {INTERVAL:g} s ({CYCLES_PER_HOUR:g} cycles/h); mix: each run changes every "
          f"{PERIOD * INTERVAL:g} s and completes after {LIFE} changes, then is replaced")
    sizes = [int(s) for s in args.sizes.split(",")]
    worlds = {"github": GitHubWorld, "gitlab": GitLabWorld}
    rows: list[Scenario] = []
    for name in args.providers.split(","):
        for runs in sizes:
            for repos in (1, 10):
                if repos > runs:
                    continue
                row = measure(worlds[name], runs, repos, args.mix_cycles)
                rows.append(row)
                print(f"  measured {row.provider} {runs} runs / {repos} repos in {row.seconds:.1f} s "
                      f"({row.completed} runs completed and replaced during the mix)", flush=True)
    report(rows)

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
        print(f"  gateway, runs in {repos} repo(s): quiet cycles cost {fmt(quiet)} counted/h at up to "
              f"{pts[-1][0]} runs")
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
            print(f"    mix with {guess} runs: {fmt(check.mix_gw.counted_per_hour)} counted/h "
                  f"({fmt(check.mix_gw.total_per_hour)} requests/h in all, the rest free 304s)", flush=True)
        best = max((p for p in pts if p[1] <= TOKEN_BUDGET), default=(0, 0.0))
        print(f"    -> realistic mix: {best[0]} concurrent runs within {TOKEN_BUDGET:,}/h "
              f"({fmt(best[1])} counted/h measured; {best[0] / naive_capacity:.1f}x naive)")

if __name__ == "__main__":
    main()
