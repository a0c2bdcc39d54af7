"""One provider instance is shared by the worker's threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from testkit.fake_gitlab import FakeGitLab, JobSpec


def test_concurrent_dispatch_and_poll_on_one_project_lose_nothing(kit: Any, fake: FakeGitLab) -> None:
    fake.add_project("acme/web", jobs=(JobSpec("build", "build"),))
    provider = kit.provider(poll_interval_seconds=0)
    cores = [kit.core("acme/web", provider, id=f"p{i}") for i in range(4)]

    def work(core: Any) -> None:
        for _ in range(5):
            run = core.dispatch()
            fake.advance(int(run.upstream_id))
            core.poll()
            fake.advance(int(run.upstream_id))
        for _ in range(3):
            core.poll()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, cores))
    for core in cores:
        assert len(core.runs) == 5
        assert all(core.status(run) == "success" for run in core.runs.values()), core.history
