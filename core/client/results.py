"""``flashfusion outputs`` and ``artifacts``, ``trigger --outputs-file``, and how a finished
run's quality gates are shown."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import EXIT_SUCCESS
from .api import UsageError

DOTENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def show_gates(run: Mapping[str, Any], say: Any) -> None:
    gates = run.get("quality_gates") or []
    if not gates:
        return
    failed = [g for g in gates if not g.get("passed")]
    say(f"  quality gates: {len(gates) - len(failed)} of {len(gates)} passed")
    for gate in failed:
        line = f"    ✗ {gate.get('name')}: expected {gate.get('expected')}, got {gate.get('actual')}"
        if gate.get("reason"):
            line += f" ({gate['reason']})"
        say(line)


def dotenv(outputs: Mapping[str, str]) -> str:
    """``outputs`` as a dotenv file another CI step can load (GitHub's ``$GITHUB_ENV`` and
    ``$GITHUB_OUTPUT`` read it too): ``NAME=value``, or ``NAME<<DELIM`` for multi-line values;
    names that are not shell variable names get their other characters replaced by ``_``."""
    lines = []
    for name, value in outputs.items():
        safe = name if DOTENV_NAME.match(name) else re.sub(r"\W", "_", name)
        if "\n" in value or "\r" in value:
            delimiter = "FLASHFUSION_EOF"
            while delimiter in value:
                delimiter += "_"
            lines.append(f"{safe}<<{delimiter}\n{value}\n{delimiter}")
        else:
            lines.append(f"{safe}={value}")
    return "".join(line + "\n" for line in lines)


def write_outputs_file(path: str, outputs: Mapping[str, str]) -> None:
    Path(path).write_text(dotenv(outputs), encoding="utf-8")


def cmd_outputs(api: Any, args: Any, out: Any) -> int:
    run = api.status(args.run_id)
    outputs = run.get("outputs") or {}
    if args.json:
        out.document(outputs)
    else:
        for line in dotenv(outputs).splitlines():
            out.say(line)
    return EXIT_SUCCESS


def cmd_artifacts(api: Any, args: Any, out: Any) -> int:
    run = api.status(args.run_id)
    artifacts = run.get("artifacts") or []
    if args.download:
        target = Path(args.download)
        target.mkdir(parents=True, exist_ok=True)
        for artifact in artifacts:
            path = safe_path(target, artifact["name"])
            size = api.download(artifact["download_url"], path)
            out.say(f"{artifact['name']}: {size} bytes -> {path}")
        return EXIT_SUCCESS
    if args.json:
        out.document(artifacts)
        return EXIT_SUCCESS
    if not artifacts:
        out.say("no artifacts")
    for artifact in artifacts:
        size = artifact.get("size")
        out.say(f"{artifact['name']}\t{'-' if size is None else size}\t{artifact.get('expires_at') or '-'}")
    return EXIT_SUCCESS


def safe_path(target: Path, name: str) -> Path:
    """Where artifact ``name`` goes under ``target``; a name that would climb out is refused."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UsageError(f"refusing to write the artifact {name!r} outside {target}")
    path = target.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(path):
        raise UsageError(f"refusing to write the artifact {name!r} through a symbolic link")
    return path
