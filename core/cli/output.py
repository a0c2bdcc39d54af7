"""How the admin commands print: one line per row of a listing, lines about one answer, or
JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def print_rows(
    rows: Sequence[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str], *, document: Any = None
) -> int:
    """Print ``rows``; with ``as_json`` print ``document`` (default: the rows) as JSON."""
    if as_json:
        print(json.dumps(rows if document is None else document, indent=2 if document is not None else None))
        return 0
    for row in rows:
        print(line(row))
    return 0


def print_answer(answer: dict[str, Any], as_json: bool, lines: Iterable[str]) -> int:
    """Print ``answer`` as one line of JSON, or ``lines`` for people."""
    for line in [json.dumps(answer)] if as_json else lines:
        print(line)
    return 0
