"""Fixtures for the GitLab provider tests: a started fake GitLab, a fake clock, and ``kit``,
which builds providers, pipeline blocks and a tiny stand-in for the core that keeps RunRefs
up to date from snapshots exactly as the worker would."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from testkit.fake_github import FakeClock
from testkit.fake_gitlab import FakeGitLab
from testkit.runrefs import updated_ref

from flashfusion.plugins import Pipeline, RunRef, RunSnapshot
from flashfusion.plugins.provider import build_settings
from flashfusion.providers.gitlab.provider import GitLabProvider


class Core:
    """What the worker does with a provider: dispatch, then poll active runs and store snapshots."""

    def __init__(self, provider: GitLabProvider, pipeline: Pipeline) -> None:
        self.provider, self.pipeline = provider, pipeline
        self.runs: dict[str, RunRef] = {}
        self.history: dict[str, list[RunSnapshot]] = {}

    def dispatch(self, inputs: dict[str, str] | None = None, ref: str | None = None) -> RunRef:
        run_id = f"run_{self.pipeline.id}_{len(self.runs) + 1}"
        run = RunRef(
            id=run_id,
            pipeline_id=self.pipeline.id,
            ref=ref or self.pipeline.branch,
            inputs=inputs or {},
            created_at=datetime.now(UTC),
        )
        d = self.provider.dispatch(self.pipeline, run, run.ref, run.inputs)
        self.runs[run_id] = dataclasses.replace(
            run, upstream_id=d.upstream_id, workflow_id=d.workflow_id, state=dict(d.state)
        )
        self.history[run_id] = []
        return self.runs[run_id]

    def active(self) -> list[RunRef]:
        return [r for r in self.runs.values() if not (self.history[r.id] and self.history[r.id][-1].terminal)]

    def poll(self) -> list[RunSnapshot]:
        snaps = self.provider.poll(self.pipeline, self.active())
        for snap in snaps:
            self.store(snap)
        return snaps

    def store(self, snap: RunSnapshot) -> None:
        self.runs[snap.run_id] = updated_ref(self.runs[snap.run_id], snap)
        self.history[snap.run_id].append(snap)

    def status(self, run: RunRef) -> str | None:
        return self.history[run.id][-1].provider_status if self.history[run.id] else None


@dataclasses.dataclass
class Kit:
    fake: FakeGitLab
    clock: FakeClock

    def provider(self, *, env: dict[str, str] | None = None, real_clock: bool = False, **table: Any) -> GitLabProvider:
        settings = build_settings(GitLabProvider.Settings, {"url": self.fake.url, "timeout_seconds": 5, **table})
        return GitLabProvider(
            settings,
            env=env if env is not None else {"GITLAB_TOKEN": self.fake.token},
            clock=time.time if real_clock else self.clock,
        )

    @staticmethod
    def pipeline(repo: str, *, id: str = "web", branch: str = "main", **options: Any) -> Pipeline:
        return Pipeline(id=id, name=id, provider="gitlab", repository_name=repo, branch=branch, options=options)

    def core(self, repo: str, provider: GitLabProvider | None = None, **options: Any) -> Core:
        return Core(provider or self.provider(poll_interval_seconds=0), self.pipeline(repo, **options))


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as server:
        yield server
        assert not server.errors, server.errors


@pytest.fixture
def kit(fake: FakeGitLab) -> Kit:
    return Kit(fake, FakeClock())
