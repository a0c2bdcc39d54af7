"""Fixtures for the GitHub provider tests: a fake GitHub, a fake clock, and ``Tracker``, which keeps
runs between provider calls the way the core does (RunRef + the provider's ``state``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from testkit.fake_github import DEFAULT_TOKEN, FakeClock, FakeGitHub
from testkit.runrefs import updated_ref

from flashfusion.plugins import Dispatch, Pipeline, RunRef, RunSnapshot
from flashfusion.providers.github.plugin import GitHubProvider
from flashfusion.providers.github.settings import Settings

REPO = "acme/web"


class Tracker:
    """The core's bookkeeping in miniature: dispatch, then feed active runs to ``poll``."""

    def __init__(self, provider: GitHubProvider, pipeline: Pipeline, clock: FakeClock) -> None:
        self.provider = provider
        self.pipeline = pipeline
        self.clock = clock
        self.refs: dict[str, RunRef] = {}
        self.latest: dict[str, RunSnapshot] = {}
        self.history: dict[str, list[RunSnapshot]] = {}

    def new_ref(self, run_id: str, inputs: dict[str, str] | None = None, ref: str = "main") -> RunRef:
        created = datetime.fromtimestamp(self.clock(), UTC)
        return RunRef(id=run_id, pipeline_id=self.pipeline.id, ref=ref, inputs=inputs or {}, created_at=created)

    def dispatch(self, run_id: str, inputs: dict[str, str] | None = None, ref: str = "main") -> Dispatch:
        run = self.new_ref(run_id, inputs, ref)
        result = self.provider.dispatch(self.pipeline, run, ref, inputs or {})
        self.refs[run_id] = dataclasses.replace(
            run, upstream_id=result.upstream_id, workflow_id=result.workflow_id, state=dict(result.state)
        )
        self.history[run_id] = []
        return result

    def track(self, run: RunRef) -> None:
        self.refs[run.id] = run
        self.history.setdefault(run.id, [])

    def active(self) -> list[RunRef]:
        return [r for r in self.refs.values() if not (r.id in self.latest and self.latest[r.id].terminal)]

    def poll(self, runs: list[RunRef] | None = None) -> list[RunSnapshot]:
        snapshots = self.provider.poll(self.pipeline, self.active() if runs is None else runs)
        for snap in snapshots:
            self.apply(snap)
        return snapshots

    def apply(self, snap: RunSnapshot) -> None:
        self.refs[snap.run_id] = updated_ref(self.refs[snap.run_id], snap)
        self.latest[snap.run_id] = snap
        self.history[snap.run_id].append(snap)

    def cycle(self, seconds: float = 10.0) -> list[RunSnapshot]:
        """Let one poll interval pass, then poll."""
        self.clock.advance(seconds)
        return self.poll()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_780_000_000.0)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGitHub]:
    with FakeGitHub(clock=clock) as server:
        server.add_repo(REPO, branches=("main", "release"))
        yield server


def _pipeline(workflow: Any = "deploy.yml", **options: Any) -> Pipeline:
    return Pipeline(
        id="web",
        name="Web",
        provider="github",
        repository_name=REPO,
        branch="main",
        options={"workflow": workflow, **options},
    )


@pytest.fixture
def make_pipeline() -> Callable[..., Pipeline]:
    """``make_pipeline(workflow="deploy.yml", **options)``: pipeline ``web`` on ``acme/web``."""
    return _pipeline


@pytest.fixture
def make_provider(fake: FakeGitHub, clock: FakeClock) -> Iterator[Callable[..., GitHubProvider]]:
    made: list[GitHubProvider] = []

    def build(env: dict[str, str] | None = None, **settings: Any) -> GitHubProvider:
        settings.setdefault("base_url", fake.url)
        provider = GitHubProvider(
            Settings(**settings), env={"GITHUB_TOKEN": DEFAULT_TOKEN} if env is None else env, clock=clock
        )
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


@pytest.fixture
def tracker(make_provider: Callable[..., GitHubProvider], clock: FakeClock) -> Callable[..., Tracker]:
    """``tracker(pipeline=None, provider=None, **settings)``: a ``Tracker`` on a new provider."""

    def build(pipeline: Pipeline | None = None, provider: GitHubProvider | None = None, **settings: Any) -> Tracker:
        return Tracker(provider or make_provider(**settings), pipeline or _pipeline(), clock)

    return build
