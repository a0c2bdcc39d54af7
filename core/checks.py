"""Provider checks per pipeline (credentials, workflow, project): ``Provider.check`` run in
parallel with a bounded wait, for ``flashfusion doctor`` and ``GET /readyz``.

``/readyz`` keeps the results per process for ``ttl`` seconds (``CheckCache``) so that probes
do not spend the GitHub/GitLab rate limit: a probe never waits more than ``wait`` seconds for
a refresh; until the first refresh finishes a pipeline reports ``checking``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flashfusion.core.gateway import Gateway
from flashfusion.core.storage.db import utcnow
from flashfusion.plugins import Pipeline

log = logging.getLogger("flashfusion.checks")

MAX_PARALLEL = 8


@dataclass(frozen=True)
class PipelineCheck:
    pipeline_id: str
    provider: str
    problems: tuple[str, ...]
    finished: bool = True

    @property
    def ok(self) -> bool:
        return self.finished and not self.problems


def check_pipeline(gateway: Gateway, pipeline: Pipeline) -> PipelineCheck:
    """One provider check; a crash is a problem, never an exception."""
    try:
        problems = gateway.provider_for(pipeline).check(pipeline) or []
        lines = tuple(" ".join(str(p).split()) for p in problems)
    except Exception as exc:  # a provider bug must not take doctor or readyz down
        log.exception("the %s check of pipeline %s crashed", pipeline.provider, pipeline.id)
        lines = (f"the {pipeline.provider} check crashed ({type(exc).__name__})",)
    return PipelineCheck(pipeline.id, pipeline.provider, lines)


def run_checks(
    gateway: Gateway, pipelines: Iterable[Pipeline], *, timeout: float, parallel: int = MAX_PARALLEL
) -> dict[str, PipelineCheck]:
    """Check ``pipelines`` with up to ``parallel`` threads; a check still running after
    ``timeout`` seconds is reported as unfinished (its thread is a daemon and ends on its own,
    bounded by the provider's own request timeout)."""
    todo = list(pipelines)
    results: dict[str, PipelineCheck] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not todo:
                    return
                pipeline = todo.pop(0)
            result = check_pipeline(gateway, pipeline)
            with lock:
                results[pipeline.id] = result

    order = [p for p in todo]
    threads = [
        threading.Thread(target=work, name="flashfusion-check", daemon=True) for _ in range(min(parallel, len(todo)))
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        done = dict(results)
    late = f"no answer within {timeout:g} s"
    return {p.id: done.get(p.id) or PipelineCheck(p.id, p.provider, (late,), finished=False) for p in order}


class CheckCache:
    """The latest check results of every configured pipeline, refreshed in the background at
    most once per ``ttl`` seconds, on demand."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        ttl: float = 60.0,
        wait: float = 2.0,
        timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gw = gateway
        self.ttl, self.wait, self.timeout, self.clock = ttl, wait, timeout, clock
        self._lock = threading.Lock()
        self._results: dict[str, PipelineCheck] = {}
        self._checked_at: float | None = None
        self._checked_wall: datetime | None = None
        self._refresh: threading.Thread | None = None

    def get(self) -> tuple[dict[str, PipelineCheck], datetime | None]:
        """Results (missing: not checked yet) and when they were taken."""
        with self._lock:
            stale = self._checked_at is None or self.clock() - self._checked_at >= self.ttl
            if stale and self._refresh is None:
                self._refresh = threading.Thread(target=self._run, name="flashfusion-readyz-checks", daemon=True)
                self._refresh.start()
            refresh = self._refresh
        if refresh is not None and self.wait > 0:
            refresh.join(self.wait)
        with self._lock:
            return dict(self._results), self._checked_wall

    def _run(self) -> None:
        try:
            results = run_checks(self.gw, self.gw.config.pipelines.values(), timeout=self.timeout)
            with self._lock:
                self._results, self._checked_at, self._checked_wall = results, self.clock(), utcnow()
        finally:
            with self._lock:
                self._refresh = None
