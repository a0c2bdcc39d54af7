"""The ``local`` provider: runs a pipeline's configured steps on the worker's machine.

The embedded default needs no CI system at all. Request data never reaches a shell: the
commands come from the configuration file, and a run's branch and inputs arrive as
environment variables (``FLASHFUSION_BRANCH``, ``FLASHFUSION_INPUT_<NAME>``).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flashfusion.plugins import (
    Artifact,
    Dispatch,
    Pipeline,
    PipelineConfigError,
    PipelineStep,
    Provider,
    RunRef,
    RunResults,
    RunSnapshot,
)
from flashfusion.providers.local.executor import Executor
from flashfusion.providers.local.processes import kill_run_processes
from flashfusion.providers.local.results import RunFiles

SAFE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "SHELL")
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class LocalSettings:
    workdir: str = ""
    log_tail_bytes: int = 4096
    poll_interval_seconds: float = 0.5
    pass_env: list = field(default_factory=list)


class LocalProvider(Provider):
    name = "local"
    Settings = LocalSettings
    capabilities = frozenset({"cancel", "runs_in_worker", "returns_run_id", "results"})

    def __init__(self, settings: LocalSettings, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, env=env)
        base = settings.workdir or os.path.join(tempfile.gettempdir(), "flashfusion-runs")
        self.base = Path(base).resolve()
        self._executors: dict[str, Executor] = {}
        self._reported: dict[str, int] = {}
        self._lock = threading.Lock()

    def validate(self, pipeline: Pipeline) -> None:
        if not pipeline.steps and not pipeline.build_command:
            raise PipelineConfigError("steps", "a local pipeline needs 'steps' or a 'build_command'")
        if not all(isinstance(v, str) for v in self.settings.pass_env):
            raise PipelineConfigError("pass_env", "expected a list of environment variable names")

    def steps_of(self, pipeline: Pipeline) -> tuple[PipelineStep, ...]:
        return pipeline.steps or (PipelineStep(name="build", run=pipeline.build_command),)

    def dispatch(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> Dispatch:
        self._start(pipeline, run, ref, inputs)
        return Dispatch(workflow_id=pipeline.id, upstream_id=run.id)

    def poll(self, pipeline: Pipeline, runs: Sequence[RunRef]) -> list[RunSnapshot]:
        snapshots = []
        for ref in runs:
            with self._lock:
                executor = self._executors.get(ref.id)
            if executor is None:
                # Not ours in this process: the worker that ran it died. Kill what it left
                # running, then start the run again from its first step that had not succeeded.
                kill_run_processes(ref.id)
                executor = self._start(pipeline, ref, ref.ref, ref.inputs, done=ref.steps)
            executor.enforce()
            state = executor.snapshot()
            if self._reported.get(ref.id) == state.version:
                continue
            self._reported[ref.id] = state.version
            snapshots.append(
                RunSnapshot(
                    run_id=ref.id,
                    status=state.status,
                    phase=state.phase,
                    conclusion=state.conclusion,
                    provider_status=state.conclusion or "running",
                    started_at=state.started_at,
                    finished_at=state.finished_at,
                    steps=tuple(state.steps),
                    upstream_id=ref.id,
                )
            )
            if state.phase == "completed":
                with self._lock:
                    self._executors.pop(ref.id, None)
                    self._reported.pop(ref.id, None)
        return snapshots

    def cancel(self, pipeline: Pipeline, run: RunRef) -> None:
        with self._lock:
            executor = self._executors.get(run.id)
        if executor is None:
            kill_run_processes(run.id)
            self._start(pipeline, run, run.ref, run.inputs, done=run.steps, cancelled=True)
        else:
            executor.cancel()

    def results(self, pipeline: Pipeline, run: RunRef) -> RunResults:
        return self._files(run.id).results()

    def open_artifact(self, pipeline: Pipeline, run: RunRef, artifact: Artifact) -> Iterator[bytes]:
        return self._files(run.id).open(artifact)

    def _files(self, run_id: str) -> RunFiles:
        if not RUN_ID.match(run_id):
            raise ValueError("unexpected run id")
        return RunFiles(self.base, run_id)

    def close(self) -> None:
        with self._lock:
            executors = list(self._executors.values())
        for executor in executors:
            executor.cancel()
        for executor in executors:
            executor.join(5)

    def _start(
        self,
        pipeline: Pipeline,
        run: RunRef,
        ref: str,
        inputs: Mapping[str, str],
        *,
        done: Sequence = (),
        cancelled: bool = False,
    ) -> Executor:
        if not RUN_ID.match(run.id):
            raise ValueError("unexpected run id")
        started = min((s.started_at for s in done if s.started_at), default=None)
        env = self._env(pipeline, run, ref, inputs)
        env.update(self._files(run.id).prepare())
        executor = Executor(
            run.id,
            self.steps_of(pipeline),
            self.base / run.id,
            env,
            pipeline.timeout_seconds,
            self.settings.log_tail_bytes,
            done=done,
            started_at=started,
        )
        with self._lock:
            self._executors[run.id] = executor
        if cancelled:
            executor.cancel()
        executor.start()
        return executor

    def _env(self, pipeline: Pipeline, run: RunRef, ref: str, inputs: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if k in SAFE_ENV or k in self.settings.pass_env}
        env.setdefault("PATH", os.defpath)
        env.update(
            {
                "CI": "true",
                "FLASHFUSION": "true",
                "FLASHFUSION_RUN_ID": run.id,
                "FLASHFUSION_PIPELINE_ID": pipeline.id,
                "FLASHFUSION_BRANCH": ref,
                "FLASHFUSION_REPOSITORY": pipeline.repository_name,
            }
        )
        for name, value in inputs.items():
            env["FLASHFUSION_INPUT_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()] = value
        return env
