"""The per-step supervisor: runs one local step and makes sure that nothing the step started
outlives the step, a cancel, a timeout, or the worker.

The worker starts this file (``python -I -S supervise.py WORKER_PID COMMAND``, stdlib only)
for each step, instead of the step's shell itself. It

1. becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): every process the step starts
   stays its descendant even when its own parent exits or it moves to another process group
   or session (``setsid``, ``nohup``, a double fork), so all of them can be found and killed;
2. asks for SIGTERM when the worker thread that started it dies (``PR_SET_PDEATHSIG``; on
   Linux this fires when the *thread* that forked it ends, and the worker's step thread lives
   until the step ends), and exits at once if the worker is already gone;
3. runs ``/bin/sh -c COMMAND`` in a new session, reaping orphans while it waits;
4. when the shell exits, or on SIGTERM/SIGINT/SIGHUP (the worker died, or it cancels or
   times out the step), SIGKILLs every descendant, repeating until none is left, and
   exits: the shell's exit code, or 128 + the signal that stopped it.

SIGKILL cannot be ignored, and as a subreaper the supervisor inherits the orphans of the
processes it kills, so it keeps finding them until none is left. Only a SIGKILL of the
supervisor itself escapes this; for that case the worker that takes the run over kills every
process still carrying the run's ``FLASHFUSION_RUN_ID`` before it runs the step again
(``processes.kill_run_processes``). Linux only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Exit code when the step could not be started (as a shell reports a missing command).
CANNOT_START = 127


class Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop(signum)


def prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def descendants(root: int) -> list[int]:
    """Every live (not zombie) process below ``root``, from the parent ids in /proc."""
    children: dict[int, list[tuple[int, bool]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                state, ppid = stat.read().rsplit(b")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        children.setdefault(int(ppid), []).append((int(name), state == b"Z"))
    found, todo = [], [root]
    while todo:
        for pid, zombie in children.get(todo.pop(), ()):
            if not zombie:
                found.append(pid)
            todo.append(pid)
    return found


def kill_all() -> None:
    """SIGKILL every descendant, again and again, until none that can be killed is left,
    reaping the orphans handed to us meanwhile."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    while True:
        killed = 0
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):  # gone, or set-uid: not ours to kill
                pass
        _reap()
        if not killed:
            return
        time.sleep(0.01)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_for(pid: int) -> int:
    """Wait for ``pid`` (reaping any orphan handed to us meanwhile); its exit code as a shell
    gives it."""
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    worker, command = int(argv[1]), argv[2]
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != worker:
            print("flashfusion: the worker stopped before the step started", file=sys.stderr)
            return 128 + signal.SIGTERM
        try:
            shell = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", command], os.environ, setsid=True)
        except OSError as exc:
            print(f"could not start the step: {exc.strerror}", file=sys.stderr)
            return CANNOT_START
        code = wait_for(shell)
    except Stop as stop:
        kill_all()
        return 128 + stop.signum
    kill_all()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
