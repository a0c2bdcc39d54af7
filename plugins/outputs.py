"""Reading run outputs as CI systems write them, for providers to share.

``KEY=VALUE`` lines (a dotenv file, GitLab's ``dotenv`` report, a local step's
``$FLASHFUSION_OUTPUT``) and GitHub's multi-line form::

    NOTES<<EOF
    line one
    line two
    EOF

or a JSON object of scalar values.
"""

from __future__ import annotations

import json
import re

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


def parse_output_lines(text: str) -> dict[str, str]:
    """The outputs in ``text``; blank lines, ``#`` comments and lines that are not an
    assignment are skipped, a later value of a name wins. One pair of matching single or
    double quotes around a one-line value is removed."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "<<" in stripped and ("=" not in stripped or stripped.index("<<") < stripped.index("=")):
            name, delimiter = (part.strip() for part in stripped.split("<<", 1))
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            i += 1  # the delimiter
            if NAME.match(name) and delimiter:
                outputs[name] = "\n".join(body)
            continue
        if "=" not in stripped:
            continue
        name, value = stripped.split("=", 1)
        name = name.strip().removeprefix("export ").strip()
        if NAME.match(name):
            outputs[name] = _unquote(value.strip())
    return outputs


def parse_outputs_file(filename: str, data: bytes) -> dict[str, str]:
    """A dotenv or JSON outputs file (JSON: a ``.json`` name, or text that starts with
    ``{``). Non-string JSON values become their JSON text; nested values are skipped."""
    text = data.decode("utf-8", "replace")
    if filename.endswith(".json") or text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {
            str(k): v if isinstance(v, str) else json.dumps(v)
            for k, v in loaded.items()
            if NAME.match(str(k)) and not isinstance(v, (dict, list))
        }
    return parse_output_lines(text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
