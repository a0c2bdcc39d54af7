"""Runs one pipeline run's steps, in order, in the run's directory.

A thread per run starts each step under its own supervisor process (``supervise.py``) and
records the step's output and result. That thread is not what ends a run, though:
``enforce()``, which the provider calls on every poll from the worker's tick loop, stops a
run that is past its deadline, and ends the run itself, from the state it keeps here, when
the thread has died or has not finished a stopped step within ``STOP_GRACE_SECONDS``. So a
timeout or a cancel ends the run whatever became of the thread that started the step.
"""

from __future__ import annotations

import io
import logging
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from flashfusion.plugins import PipelineStep, StepResult
from flashfusion.providers.local.processes import StepStartError, kill_run_processes, start_step

log = logging.getLogger("flashfusion.local")

#: How a step or run ended -> (the step's status, the conclusion).
OUTCOMES = {
    "success": ("success", "success"),
    "failed": ("failed", "failure"),
    "timed_out": ("failed", "timed_out"),
    "cancelled": ("cancelled", "cancelled"),
}
SETTLED = ("success", "skipped", "failed", "cancelled")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunState:
    steps: list[StepResult]
    status: str = "running"
    phase: str = "in_progress"
    conclusion: str | None = None
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    version: int = 0


class Executor:
    """One thread per run. ``snapshot()``, ``cancel()`` and ``enforce()`` are safe to call
    from other threads; once the run is completed its state never changes again."""

    STOP_GRACE_SECONDS = 10.0

    def __init__(
        self,
        run_id: str,
        steps: Sequence[PipelineStep],
        workdir: Path,
        env: Mapping[str, str],
        timeout_seconds: float,
        log_tail_bytes: int,
        done: Sequence[StepResult] = (),
        started_at: datetime | None = None,
    ) -> None:
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
        self._stop_reason: str | None = None  # "cancelled" or "timed_out"
        self._stop_since: float | None = None
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name=f"local-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._stop("cancelled")

    def enforce(self) -> None:
        """Stop the run at its deadline; end it here if its thread died or does not end a
        stopped step in time."""
        if self.finished:
            return
        if time.time() >= self.deadline:
            self._stop("timed_out")
        if self._thread.ident is None:
            return
        if not self._thread.is_alive():
            self._end(self._stop_reason or "failed", "the step runner stopped unexpectedly (see the worker log)")
        elif self._stop_since is not None and time.monotonic() - self._stop_since >= self.STOP_GRACE_SECONDS:
            self._end(
                self._stop_reason or "failed",
                f"the step did not stop within {self.STOP_GRACE_SECONDS:g} s; its processes were killed",
            )

    @property
    def finished(self) -> bool:
        with self._lock:
            return self.state.phase == "completed"

    def snapshot(self) -> RunState:
        with self._lock:
            return replace(self.state, steps=list(self.state.steps))

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _stop(self, reason: str) -> None:
        with self._lock:
            if self.state.phase == "completed" or self._stop_reason is not None:
                return
            self._stop_reason, self._stop_since = reason, time.monotonic()
            proc = self._proc
        if proc is not None:
            self._signal(proc)

    @staticmethod
    def _signal(proc: subprocess.Popen) -> None:
        """Ask the step's supervisor to kill the step (and then to exit)."""
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass

    def _pending_stop(self) -> str | None:
        if time.time() >= self.deadline:
            self._stop("timed_out")
        with self._lock:
            return self._stop_reason

    def _set_step(self, index: int, result: StepResult) -> None:
        with self._lock:
            if self.state.phase != "completed":
                self.state.steps[index] = result
                self.state.version += 1

    def _complete(self, outcome: str) -> None:
        """Mark the run finished; the caller holds the lock."""
        self.state.status = "success" if outcome == "success" else "failed"
        self.state.phase = "completed"
        self.state.conclusion = OUTCOMES[outcome][1]
        self.state.finished_at = now()
        self.state.version += 1

    def _end(self, outcome: str, note: str) -> None:
        """End the run from outside its thread: kill whatever is left of its processes, mark
        the step that was interrupted (or next to run) with ``outcome`` and ``note`` and the
        later ones skipped."""
        kill_run_processes(self.run_id)
        status, conclusion = OUTCOMES[outcome]
        with self._lock:
            if self.state.phase == "completed":
                return
            ended = now()
            interrupted = False
            for index, step in enumerate(self.state.steps):
                if step.status in SETTLED:
                    continue
                if interrupted:
                    self.state.steps[index] = replace(step, status="skipped", conclusion="skipped")
                    continue
                interrupted = True
                duration = round((ended - step.started_at).total_seconds(), 3) if step.started_at else None
                self.state.steps[index] = replace(
                    step,
                    status=status,
                    conclusion=conclusion,
                    completed_at=ended,
                    duration_seconds=duration,
                    log_tail=note,
                )
            self._complete(outcome)

    def _run(self) -> None:
        try:
            self._run_steps()
        except Exception:
            log.exception("the runner of local run %s failed", self.run_id)
            self._end("failed", "internal error in the step runner (see the worker log)")

    def _run_steps(self) -> None:
        outcome = "success"
        for index, step in enumerate(self.steps):
            if self.state.steps[index].status in ("success", "skipped"):
                continue
            if outcome != "success":
                self._set_step(index, replace(self.state.steps[index], status="skipped", conclusion="skipped"))
                continue
            outcome = self._run_step(index, step)
        with self._lock:
            if self.state.phase != "completed":
                self._complete(outcome)

    def _run_step(self, index: int, step: PipelineStep) -> str:
        stop = self._pending_stop()
        if stop is not None:
            self._finish_step(index, step, None, stop, None, b"")
            return stop
        started = now()
        try:
            proc = self._start(step)
        except StepStartError as exc:
            self._finish_step(index, step, started, "failed", None, str(exc).encode())
            return "failed"
        with self._lock:
            self._proc = proc
            if self.state.phase != "completed":
                self.state.steps[index] = StepResult(name=step.name, status="running", started_at=started)
                self.state.version += 1
            stopping = self._stop_reason is not None
        if stopping:
            self._signal(proc)
        stdout = proc.stdout
        assert isinstance(stdout, io.BufferedReader), "start_step pipes stdout with default buffering"
        tail: deque[bytes] = deque()
        size = 0
        try:
            for chunk in iter(lambda: stdout.read1(4096), b""):
                tail.append(chunk)
                size += len(chunk)
                while size - len(tail[0]) >= self.log_tail_bytes:
                    size -= len(tail.popleft())
            code = proc.wait()
        finally:
            stdout.close()
            with self._lock:
                self._proc = None
        outcome = self._pending_stop() or ("success" if code == 0 else "failed")
        self._finish_step(index, step, started, outcome, code, b"".join(tail))
        return outcome

    def _start(self, step: PipelineStep) -> subprocess.Popen:
        """The step's supervisor, started; any failure as a ``StepStartError`` whose message
        is the step's log."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StepStartError(f"could not create the run's directory: {exc.strerror or exc}") from exc
        try:
            return start_step(step.run, self.workdir, self.env)
        except StepStartError as exc:
            reason = str(exc)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        except Exception:
            log.exception("starting a step of local run %s failed", self.run_id)
            reason = "internal error (see the worker log)"
        raise StepStartError(f"could not start the step: {reason}")

    def _finish_step(
        self, index: int, step: PipelineStep, started: datetime | None, outcome: str, code: int | None, output: bytes
    ) -> None:
        ended = now()
        status, conclusion = OUTCOMES[outcome]
        self._set_step(
            index,
            StepResult(
                name=step.name,
                status=status,
                conclusion=conclusion,
                started_at=started,
                completed_at=ended,
                duration_seconds=round((ended - started).total_seconds(), 3) if started else None,
                exit_code=code,
                log_tail=output[-self.log_tail_bytes :].decode("utf-8", "replace"),
            ),
        )
