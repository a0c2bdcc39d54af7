"""Runs one pipeline run's steps as subprocesses, in order, in the run's directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from flashfusion.plugins import PipelineStep, StepResult


# The step's shell gets SIGKILL when the worker dies, so a crashed worker's step cannot go on
# running (and repeat its side effects) beside the one its successor starts.
DIE_WITH_WORKER = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()


def PIDFILE(workdir: Path) -> Path:
    """Where the running step's process group id is kept, so that a worker restarted after
    a crash can kill what its predecessor left running before it runs the step again."""
    return workdir / ".flashfusion-step.pid"


def kill_leftover(workdir: Path) -> None:
    try:
        pgid = int(PIDFILE(workdir).read_text())
    except (OSError, ValueError):
        return
    try:
        if Path(f"/proc/{pgid}/cwd").resolve() != workdir.resolve():
            return  # the id now belongs to some other process
        os.killpg(pgid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass
    PIDFILE(workdir).unlink(missing_ok=True)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RunState:
    steps: list[StepResult]
    status: str = "running"
    phase: str = "in_progress"
    conclusion: str | None = None
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    pgid: int | None = None
    version: int = 0


class Executor:
    """One thread per run. ``snapshot()`` is safe to call from other threads."""

    def __init__(self, run_id: str, steps: Sequence[PipelineStep], workdir: Path, env: Mapping[str, str],
                 timeout_seconds: float, log_tail_bytes: int, done: Sequence[StepResult] = (),
                 started_at: datetime | None = None) -> None:
        self.run_id = run_id
        self.steps = list(steps)
        self.workdir = workdir
        self.env = dict(env)
        self.log_tail_bytes = log_tail_bytes
        kept = {s.name: s for s in done if s.status in ("success", "skipped")}
        results = [kept.get(step.name, StepResult(name=step.name)) for step in self.steps]
        self.state = RunState(steps=results, started_at=started_at or now())
        self.deadline = self.state.started_at.timestamp() + timeout_seconds
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name=f"local-{run_id}", daemon=True)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        self._kill()

    def snapshot(self) -> RunState:
        with self._lock:
            return replace(self.state, steps=list(self.state.steps))

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _update(self, **changes: object) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.state, key, value)
            self.state.version += 1

    def _set_step(self, index: int, result: StepResult) -> None:
        with self._lock:
            self.state.steps[index] = result
            self.state.version += 1

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _run(self) -> None:
        outcome = "success"
        for index, step in enumerate(self.steps):
            if self.state.steps[index].status in ("success", "skipped"):
                continue
            if outcome != "success":
                self._set_step(index, replace(self.state.steps[index], status="skipped", conclusion="skipped"))
                continue
            outcome = self._run_step(index, step)
        conclusion = {"success": "success", "failed": "failure"}.get(outcome, outcome)
        self._update(status="success" if outcome == "success" else "failed", phase="completed",
                     conclusion=conclusion, finished_at=now(), pgid=None)

    def _run_step(self, index: int, step: PipelineStep) -> str:
        if self._cancel.is_set():
            self._set_step(index, StepResult(name=step.name, status="cancelled", conclusion="cancelled"))
            return "cancelled"
        started = now()
        tail: deque[bytes] = deque()
        size = 0
        try:
            self._proc = subprocess.Popen(
                [*DIE_WITH_WORKER, "/bin/sh", "-c", step.run], cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self._finish_step(index, step, started, "failed", None, f"could not start: {exc.strerror}".encode())
            return "failed"
        PIDFILE(self.workdir).write_text(str(self._proc.pid))
        with self._lock:
            self.state.steps[index] = StepResult(name=step.name, status="running", started_at=started)
            self.state.pgid = self._proc.pid
            self.state.version += 1
        timer = threading.Timer(max(0.0, self.deadline - time.time()), self._timeout)
        timer.daemon = True
        timer.start()
        try:
            assert self._proc.stdout is not None
            for chunk in iter(lambda: self._proc.stdout.read1(4096), b""):
                tail.append(chunk)
                size += len(chunk)
                while size - len(tail[0]) >= self.log_tail_bytes:
                    size -= len(tail.popleft())
            code = self._proc.wait()
        finally:
            timer.cancel()
            self._kill()  # children left behind by the step die with it
            PIDFILE(self.workdir).unlink(missing_ok=True)
        if self._timed_out:
            status = "timed_out"
        elif self._cancel.is_set():
            status = "cancelled"
        else:
            status = "success" if code == 0 else "failed"
        self._finish_step(index, step, started, status, code, b"".join(tail))
        return status

    _timed_out = False

    def _timeout(self) -> None:
        self._timed_out = True
        self._kill()

    def _finish_step(self, index: int, step: PipelineStep, started: datetime, outcome: str, code: int | None,
                     output: bytes) -> None:
        ended = now()
        text = output[-self.log_tail_bytes:].decode("utf-8", "replace")
        step_status = {"timed_out": "failed"}.get(outcome, outcome)
        conclusion = {"success": "success", "failed": "failure"}.get(outcome, outcome)
        self._set_step(index, StepResult(
            name=step.name, status=step_status, conclusion=conclusion, started_at=started, completed_at=ended,
            duration_seconds=round((ended - started).total_seconds(), 3), exit_code=code, log_tail=text))
