"""The worker's side of a local step's processes: starting the step under its supervisor
(see ``supervise.py``) and killing what a run left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

SUPERVISOR = Path(__file__).with_name("supervise.py")
RUN_ID_VARIABLE = "FLASHFUSION_RUN_ID"


class StepStartError(Exception):
    """The step cannot start; the message says why, for the step's log."""


def environment(env: Mapping[str, str]) -> dict[bytes, bytes]:
    """``env`` as the bytes a process environment holds, or a ``StepStartError`` naming the
    variable that no environment can hold."""
    encoded = {}
    for name, value in env.items():
        for text in (name, value):
            if "\0" in text:
                raise StepStartError(f"{name} contains a NUL character, which no environment variable can hold")
            try:
                os.fsencode(text)
            except UnicodeEncodeError:
                raise StepStartError(
                    f"{name} is not valid text (it holds a lone surrogate code point), "
                    "so no environment variable can hold it"
                ) from None
        encoded[os.fsencode(name)] = os.fsencode(value)
    return encoded


def start_step(command: str, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """Start ``command`` under a supervisor of its own. Raises ``StepStartError`` or ``OSError``.

    The supervisor gets a session of its own so that a terminal's signals reach the worker
    only; it stops the step when the thread calling this ends."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), command],
        cwd=cwd,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_run_processes(run_id: str, rounds: int = 50) -> int:
    """SIGKILL every process of this user whose environment carries ``FLASHFUSION_RUN_ID=run_id``
    (every process a step starts inherits it, whatever group or session it moves to), looking
    again until none is left. Returns how many were killed.

    Used before a run is resumed or cancelled by a worker that did not start it: normally the
    supervisor has killed everything already, but not if it was SIGKILLed itself. Run ids are
    random and never reused, so a match cannot be an unrelated process."""
    needle = f"{RUN_ID_VARIABLE}={run_id}".encode()
    killed: set[int] = set()
    for _ in range(rounds):
        found = [pid for pid in _pids() if needle in _environ(pid)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)  # a killed process keeps its environment until it has exited
    return len(killed)


def _pids() -> list[int]:
    me = os.getpid()
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != me]


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return environ.read().split(b"\0")
    except OSError:
        return []
