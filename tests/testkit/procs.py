"""Find the processes of one local run through /proc: every process a step starts inherits
``FLASHFUSION_RUN_ID`` in its environment, whatever process group or session it moves to."""

from __future__ import annotations

import os
from pathlib import Path


def run_processes(run_id: str) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process whose environment names ``run_id``."""
    needle = f"FLASHFUSION_RUN_ID={run_id}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state != "Z":
            found[int(entry.name)] = cmdline
    return found
