"""Showing a run while it goes.

* :class:`LiveProgress` -- on a terminal: the run and each step with its status and
  elapsed time, a spinner on what is running, redrawn in place ten times a second (a
  thread draws; the HTTP long-poll never has to return early for the spinner to move).
* :class:`PlainProgress` -- in CI logs (no TTY, ``CI=true``, ``TERM=dumb``): one plain line
  per change, nothing else, so logs stay readable and short.

Both get the run dict of ``get-status`` through :meth:`update`, and :meth:`close` before
the summary is printed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from .durations import human_duration

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "|/-\\"
MARKS = {
    "success": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "skipped": "-",
    "running": None,
    "queued": "·",
    "pending": "·",
}
ASCII_MARKS = {
    "success": "+",
    "failed": "x",
    "cancelled": "!",
    "skipped": "-",
    "running": None,
    "queued": ".",
    "pending": ".",
}
WAITING = ("queued", "pending", "waiting")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def fmt_duration(seconds: float | int | None) -> str:
    """The spec's duration style ("2m 30s"), as the gateway's webhooks write it."""
    if seconds is None:
        return "-"
    return human_duration(max(0, int(round(seconds)))) or "0s"


def step_elapsed(step: Mapping[str, Any], server_now: float) -> float | None:
    if step.get("duration_seconds") is not None and step.get("status") not in ("running", *WAITING):
        return float(step["duration_seconds"])
    start = parse_time(step.get("started_at"))
    if start is None:
        return None
    end = parse_time(step.get("completed_at")) or server_now
    return max(0.0, end - start)


def run_elapsed(run: Mapping[str, Any], server_now: float) -> float | None:
    if run.get("phase") == "completed" and run.get("duration_seconds") is not None:
        return float(run["duration_seconds"])
    start = parse_time(run.get("started_at")) or parse_time(run.get("created_at"))
    return None if start is None else max(0.0, server_now - start)


def run_state(run: Mapping[str, Any]) -> str:
    if run.get("phase") == "completed":
        return f"{run.get('status')} ({run.get('conclusion') or '-'})"
    state = f"{run.get('status')} [{run.get('phase')}]"
    if run.get("cancel_requested"):
        state += " cancelling"
    return state


def use_live_display(stream: TextIO, env: Mapping[str, str] = os.environ) -> bool:
    if (env.get("CI") or "").strip().lower() in ("1", "true", "yes"):
        return False
    if env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    def update(self, run: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class NoProgress(Progress):
    pass


class PlainProgress(Progress):
    """One line per change: the run's status/phase, and each step's status."""

    def __init__(
        self, stream: TextIO, clock: Callable[[], float] = time.time, redact: Callable[[str], str] = lambda s: s
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.redact = redact
        self._run_state: str | None = None
        self._steps: dict[str, str] = {}
        self.lines = 0

    def _emit(self, text: str) -> None:
        self.lines += 1
        print(self.redact(text), file=self.stream, flush=True)

    def update(self, run: Mapping[str, Any]) -> None:
        now = self.clock()
        state = run_state(run)
        if state != self._run_state:
            self._run_state = state
            elapsed = run_elapsed(run, now)
            self._emit(f"run {run.get('id')}: {state}" + (f" after {fmt_duration(elapsed)}" if elapsed else ""))
        for step in run.get("steps") or []:
            name, status = str(step.get("name")), str(step.get("status"))
            if self._steps.get(name) == status:
                continue
            self._steps[name] = status
            if status in WAITING:
                continue
            line = f"  step {name}: {status}"
            if status not in ("running", "skipped"):
                line += f" ({fmt_duration(step_elapsed(step, now))})"
                if step.get("exit_code") not in (None, 0):
                    line += f", exit code {step['exit_code']}"
            self._emit(line)


class LiveProgress(Progress):
    """Redrawn in place; a thread keeps the spinner and the clocks moving between updates."""

    def __init__(
        self,
        stream: TextIO,
        clock_offset: Callable[[], float] = lambda: 0.0,
        redact: Callable[[str], str] = lambda s: s,
        interval: float = 0.1,
    ) -> None:
        self.stream = stream
        self.clock_offset = clock_offset
        self.redact = redact
        self.interval = interval
        encoding = (getattr(stream, "encoding", None) or "").lower()
        self.fancy = "utf" in encoding
        self._run: Mapping[str, Any] | None = None
        self._drawn = 0
        self._tick = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flashfusion-progress", daemon=True)
        self._thread.start()

    def update(self, run: Mapping[str, Any]) -> None:
        with self._lock:
            self._run = run
            self._draw()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        with self._lock:
            self._draw()
            self._drawn = 0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self._tick += 1
                self._draw()

    def _lines(self) -> list[str]:
        run = self._run
        if run is None:
            return []
        now = time.time() + self.clock_offset()
        spinner = SPINNER if self.fancy else ASCII_SPINNER
        spin = spinner[self._tick % len(spinner)]
        marks = MARKS if self.fancy else ASCII_MARKS
        done = run.get("phase") == "completed"
        head_mark = (marks.get(str(run.get("status"))) or "?") if done else spin
        lines = [
            f"{head_mark} {run.get('id')}  {run.get('pipeline_id')}  {run_state(run)}  "
            f"{fmt_duration(run_elapsed(run, now))}"
        ]
        steps = run.get("steps") or []
        width = max((len(str(s.get("name"))) for s in steps), default=0)
        for step in steps:
            status = str(step.get("status"))
            mark = marks.get(status, "?") or spin
            elapsed = step_elapsed(step, now)
            text = f"  {mark} {str(step.get('name')).ljust(width)}  {status.ljust(9)}"
            if elapsed is not None and status not in ("skipped", *WAITING):
                text += f"  {fmt_duration(elapsed)}"
            lines.append(text)
        return lines

    def _draw(self) -> None:
        lines = self._lines()
        if not lines:
            return
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # to the start of the first line drawn last time
        for line in lines:
            out.append("\x1b[2K" + self.redact(line) + "\n")
        if len(lines) < self._drawn:
            out.append("\x1b[J")
        self._drawn = len(lines)
        try:
            self.stream.write("".join(out))
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()


def make_progress(
    stream: TextIO,
    *,
    quiet: bool,
    clock_offset: Callable[[], float],
    redact: Callable[[str], str],
    env: Mapping[str, str] = os.environ,
) -> Progress:
    if quiet:
        return NoProgress()
    if use_live_display(stream, env):
        return LiveProgress(stream, clock_offset=clock_offset, redact=redact)
    return PlainProgress(stream, clock=lambda: time.time() + clock_offset(), redact=redact)
