"""No source module grows past 400 lines (tests and the fakes they drive excepted): a module
that long holds more than one thing, and should be split by what it holds."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 400


def test_no_module_is_over_400_lines():
    too_long = {}
    for top in ("core", "providers", "plugins", "bench"):
        for path in (REPO / top).rglob("*.py"):
            if {"tests", "build", ".venv"} & set(path.relative_to(REPO).parts):
                continue
            lines = len(path.read_text().splitlines())
            if lines > LIMIT:
                too_long[str(path.relative_to(REPO))] = lines
    assert not too_long, f"modules over {LIMIT} lines: {too_long}"
