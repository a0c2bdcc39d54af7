"""The worlds ``polling_cost.py`` measures: a fake GitHub / fake GitLab on a fake clock, the
provider polling them the way the worker does (``Core``), the naive CI-script loop against the
same fake, and the request counts the fake keeps (``Cost``). ``hooks=True`` also gives the
provider a webhook secret, so it can verify and apply the fake's signed hooks
(``polling_hooks.py``)."""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import github  # noqa: E402  (PyGithub)
import gitlab  # noqa: E402  (python-gitlab)
from testkit.fake_github import DEFAULT_TOKEN, FakeClock, FakeGitHub  # noqa: E402
from testkit.fake_gitlab import FakeGitLab, JobSpec, _fmt  # noqa: E402

from flashfusion.plugins import Pipeline, RunRef, RunSnapshot  # noqa: E402
from flashfusion.plugins.provider import build_settings  # noqa: E402
from flashfusion.providers.github.plugin import GitHubProvider  # noqa: E402
from flashfusion.providers.github.settings import Settings as GitHubSettings  # noqa: E402
from flashfusion.providers.gitlab.provider import GitLabProvider  # noqa: E402

HOOK_SECRET = "bench-hook-secret-0123456789"
HOOK_SECRET_ENV = "FFBENCH_HOOK_SECRET"
INTERVAL = 10.0  # seconds between poll cycles (the freshness asked for)
CYCLES_PER_HOUR = 3600 / INTERVAL
PERIOD = 12  # cycles between two changes of one run: 12 x 10 s = 2 minutes
LIFE = 10  # changes from queued to completed (about 20 minutes at one change every 2 minutes)
QUIET_CYCLES = 3
TOKEN_BUDGET = 5000  # GitHub: requests per hour for one personal token


def print_head(title: str, head: str) -> None:
    """A report table's title, column heads and rule."""
    print(title)
    print(head)
    print("-" * len(head))


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

    def track(
        self,
        run_id: str,
        pipeline_id: str,
        upstream_id: str,
        state: dict | None = None,
        provider_status: str | None = None,
    ) -> None:
        created = datetime.fromtimestamp(self.clock(), UTC)
        self.refs[run_id] = RunRef(
            id=run_id,
            pipeline_id=pipeline_id,
            ref="main",
            inputs={},
            created_at=created,
            upstream_id=upstream_id,
            state=dict(state or {}),
            provider_status=provider_status,
        )
        self.by_pipeline[pipeline_id].append(run_id)

    def untrack(self, run_id: str) -> None:
        ref = self.refs.pop(run_id)
        self.by_pipeline[ref.pipeline_id].remove(run_id)

    def cycle(self) -> list[RunSnapshot]:
        out: list[RunSnapshot] = []
        for pid, ids in self.by_pipeline.items():
            if not ids:
                continue
            out.extend(self.apply(self.provider.poll(self.pipelines[pid], [self.refs[i] for i in ids])))
        return out

    def apply(self, snaps: list[RunSnapshot]) -> list[RunSnapshot]:
        for snap in snaps:
            ref = self.refs[snap.run_id]
            self.refs[snap.run_id] = dataclasses.replace(
                ref,
                upstream_id=snap.upstream_id or ref.upstream_id,
                provider_status=snap.provider_status or ref.provider_status,
                steps=snap.steps if snap.steps is not None else ref.steps,
                state=dict(snap.state) if snap.state is not None else ref.state,
            )
        return snaps

    def bound(self, pipeline_id: str, upstream_id: str) -> list[RunRef]:
        return [self.refs[i] for i in self.by_pipeline[pipeline_id] if self.refs[i].upstream_id == upstream_id]


# ----------------------------------------------------------------------------- both providers


class World:
    """Slots of runs on a fake upstream, each moved on by ``change`` and replaced by a fresh run of the
    same pipeline once finished; the subclasses build the fake, the provider and ``_new_run``."""

    fake: Any
    core: Core
    slots: list[tuple[str, int]]  # slot -> (run id, upstream id)

    def _fill(self, runs: int, repos: int) -> None:
        self.slots = []
        self._seq = 0
        for i in range(runs):
            self.slots.append(self._new_run(i % repos, advance=(i * 7) % LIFE))

    def _new_run(self, repo: int, advance: int = 0) -> tuple[str, int]:
        raise NotImplementedError

    def _next_run_id(self) -> str:
        self._seq += 1
        return f"run_{self._seq:05d}"

    def change(self, slot: int) -> None:
        self.fake.advance(self.slots[slot][1])

    def replace(self, slot: int) -> None:
        run_id, _ = self.slots[slot]
        repo = int(self.core.refs[run_id].pipeline_id[1:])
        self.core.untrack(run_id)
        self.slots[slot] = self._new_run(repo)

    def reset(self) -> None:
        self.fake.reset_counters()


# ----------------------------------------------------------------------------- GitHub


class GitHubWorld(World):
    name = "GitHub"

    def __init__(self, runs: int, repos: int, hooks: bool = False) -> None:
        self.clock = FakeClock(start=1_780_000_000.0)
        self.fake = FakeGitHub(clock=self.clock, rate_limit=10**9).start()
        steps = [f"step {i}" for i in range(LIFE - 2)]  # queued -> in_progress -> job starts -> 8 steps
        self.workflows = []
        pipelines = []
        for r in range(repos):
            name = f"acme/repo{r}"
            self.fake.add_repo(name)
            self.workflows.append(self.fake.add_workflow(name, "deploy.yml", jobs=[("build", steps)]))
            pipelines.append(
                Pipeline(
                    id=f"p{r}",
                    name=f"p{r}",
                    provider="github",
                    repository_name=name,
                    branch="main",
                    options={"workflow": "deploy.yml"},
                )
            )
        self.provider = GitHubProvider(
            GitHubSettings(
                base_url=self.fake.url,
                poll_interval_seconds=INTERVAL,
                webhook_secret_env=HOOK_SECRET_ENV if hooks else None,
            ),
            env={"GITHUB_TOKEN": DEFAULT_TOKEN, HOOK_SECRET_ENV: HOOK_SECRET},
            clock=self.clock,
        )
        self.core = Core(self.provider, pipelines, self.clock)
        self.naive_client = github.Github(
            base_url=self.fake.url,
            auth=github.Auth.Token(DEFAULT_TOKEN),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self.naive_repos = {f"acme/repo{r}": self.naive_client.get_repo(f"acme/repo{r}") for r in range(repos)}
        self.repos = repos
        self._fill(runs, repos)

    def _new_run(self, repo: int, advance: int = 0) -> tuple[str, int]:
        run = self.fake.create_run(self.workflows[repo])
        if advance:
            self.fake.advance(run.id, advance)
        run_id = self._next_run_id()
        self.core.track(run_id, f"p{repo}", str(run.id))
        return run_id, run.id

    def advance_clock(self) -> None:
        self.clock.advance(INTERVAL)

    def finished(self, slot: int) -> bool:
        return self.fake.runs[self.slots[slot][1]].status == "completed"

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


class GitLabWorld(World):
    name = "GitLab"

    def __init__(self, runs: int, repos: int, hooks: bool = False) -> None:
        self.clock = FakeClock(start=time.time())
        self.fake = FakeGitLab(rate_limit=10**9).start()
        stages = tuple(JobSpec(f"job{i}", f"stage{i}") for i in range(LIFE - 1))  # 9 stages: 10 advances
        self.projects = []
        pipelines = []
        for r in range(repos):
            path = f"acme/repo{r}"
            self.projects.append(self.fake.add_project(path, jobs=stages))
            pipelines.append(
                Pipeline(id=f"p{r}", name=f"p{r}", provider="gitlab", repository_name=path, branch="main", options={})
            )
        table = {"url": self.fake.url, "timeout_seconds": 5, "poll_interval_seconds": INTERVAL}
        if hooks:
            table["webhook_secret_env"] = HOOK_SECRET_ENV
        settings = build_settings(GitLabProvider.Settings, table)
        self.provider = GitLabProvider(
            settings, env={"GITLAB_TOKEN": self.fake.token, HOOK_SECRET_ENV: HOOK_SECRET}, clock=self.clock
        )
        self.core = Core(self.provider, pipelines, self.clock)
        self.naive_client = gitlab.Gitlab(self.fake.url, private_token=self.fake.token)
        self.naive_projects = {
            f"p{r}": self.naive_client.projects.get(f"acme/repo{r}", lazy=True) for r in range(repos)
        }
        self._fill(runs, repos)

    def _new_run(self, repo: int, advance: int = 0) -> tuple[str, int]:
        pid = self.fake.create_pipeline(self.projects[repo], "main", source="api")
        for _ in range(advance):
            self.fake.advance(pid)
        p = self.fake.pipeline(pid)
        run_id = self._next_run_id()
        # what dispatch() hands the core for a pipeline it just created
        self.core.track(
            run_id,
            f"p{repo}",
            str(pid),
            state={
                "project_id": self.projects[repo].id,
                "updated_at": _fmt(p.updated_at),
                "status": p.status,
                "created_at": _fmt(p.created_at),
            },
            provider_status=p.status,
        )
        return run_id, pid

    def advance_clock(self) -> None:
        self.clock.advance(INTERVAL)
        self.fake.tick(INTERVAL)

    def finished(self, slot: int) -> bool:
        return self.fake.pipeline(self.slots[slot][1]).status in ("success", "failed", "canceled", "skipped")

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
