"""What ``check()`` can tell from a workflow file's text without a YAML parser."""

from __future__ import annotations

import re


def _code(text: str) -> str:
    return "\n".join(line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#"))


def has_dispatch_trigger(text: str) -> bool:
    """``on: workflow_dispatch``, ``on: [push, workflow_dispatch]`` or a ``workflow_dispatch:`` key."""
    return re.search(r"(^|[\s\[,{:'\"])workflow_dispatch\b", _code(text)) is not None


def declares_input(text: str, name: str) -> bool:
    return re.search(rf"^\s+['\"]?{re.escape(name)}['\"]?\s*:", _code(text), re.MULTILINE) is not None


def run_name_uses(text: str, name: str) -> bool:
    return re.search(rf"^run-name\s*:.*inputs\.{re.escape(name)}\b", _code(text), re.MULTILINE) is not None


def workflow_text_problems(text: str, workflow: str, correlation_input: str) -> list[str]:
    if not has_dispatch_trigger(text):
        return [f"workflow {workflow!r} has no workflow_dispatch trigger"]
    if declares_input(text, correlation_input) and not run_name_uses(text, correlation_input):
        return [
            f"workflow {workflow!r} declares input {correlation_input!r} but its run-name does not "
            f"show it (add: run-name: ${{{{ inputs.{correlation_input} }}}})"
        ]
    return []
