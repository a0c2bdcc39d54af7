"""How the client commands speak: the output contract, and a run told to people.

With ``--json`` standard output holds exactly one JSON document (the final run object, or
the listing) and everything for people goes to standard error; without it, people's output
goes to standard output and warnings/errors to standard error. The API key is never
printed: every line passes through :meth:`Output.redact`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import EXIT_RUN_FAILED, EXIT_RUNNING, EXIT_SUCCESS
from .progress import fmt_duration
from .results import show_gates

LOG_TAIL_LINES = 15


@dataclass
class Output:
    json_mode: bool
    program: str = "flashfusion"  # the command's name in messages: flashfusion, or flashfusion-client
    secret: str | None = None
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def human(self) -> TextIO:
        return self.stderr if self.json_mode else self.stdout

    def redact(self, text: str) -> str:
        if self.secret and len(self.secret) >= 8:
            text = text.replace(self.secret, "[redacted]")
        return text

    def say(self, text: str = "") -> None:
        print(self.redact(text), file=self.human, flush=True)

    def warn(self, text: str) -> None:
        print(self.redact(f"{self.program}: {text}"), file=self.stderr, flush=True)

    def document(self, obj: Any) -> None:
        print(self.redact(json.dumps(obj, indent=2, sort_keys=True)), file=self.stdout, flush=True)


def summary(run: Mapping[str, Any], out: Output, *, timed_out: bool = False) -> None:
    status = run.get("status")
    conclusion = run.get("conclusion")
    head = f"run {run.get('id')} ({run.get('pipeline_id')}): {status}"
    if conclusion and conclusion != status:
        head += f", conclusion {conclusion}"
    if run.get("phase") != "completed":
        head += f" [{run.get('phase')}]"
    head += f", duration {fmt_duration(run.get('duration_seconds'))}"
    out.say(head)
    failing = run.get("failed_step")
    if failing:
        step: Mapping[str, Any] = next((s for s in run.get("steps") or [] if s.get("name") == failing), {})
        line = f"  failing step: {failing}"
        if step.get("exit_code") is not None:
            line += f" (exit code {step['exit_code']})"
        out.say(line)
        tail = (step.get("log_tail") or "").rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
        for text in tail:
            out.say(f"    | {text}")
        if step.get("url"):
            out.say(f"    {step['url']}")
    if run.get("error"):
        out.say(f"  error: {run['error']}")
    show_gates(run, out.say)
    if run.get("deployment_url"):
        out.say(f"  deployment: {run['deployment_url']}")
    if run.get("html_url"):
        out.say(f"  web: {run['html_url']}")
    if timed_out and run.get("phase") != "completed":
        out.say(f"  the run is still going: {out.program} status {run.get('id')} --wait")


def describe(run: Mapping[str, Any], out: Output) -> None:
    summary(run, out)
    for step in run.get("steps") or []:
        line = f"  - {step.get('name')}: {step.get('status')}"
        if step.get("duration_seconds") is not None:
            line += f" ({fmt_duration(step['duration_seconds'])})"
        out.say(line)


def run_exit_code(run: Mapping[str, Any]) -> int:
    if run.get("phase") != "completed":
        return EXIT_RUNNING
    return EXIT_SUCCESS if run.get("status") == "success" else EXIT_RUN_FAILED
