"""The docs site: it builds with no warnings, its generated reference pages are current, and
they name every key of the shipped flashfusion.toml and every CLI command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from flashfusion.core.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "reference"
BIN = Path(sys.executable).parent


def test_generated_reference_pages_are_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "generate_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def _keys(table: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in table.items():
        if isinstance(value, dict) and prefix.count(".") < 2 and key not in ("triggers", "quality_gates"):
            keys |= _keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_every_key_of_the_shipped_config_is_in_the_configuration_reference():
    shipped = tomllib.loads((REPO / "flashfusion.toml").read_text())
    reference = (REFERENCE / "config.md").read_text()
    sections = {"pipelines": "[pipelines.ID]", "providers": None}
    assert _keys(shipped)  # the file has keys to look for
    for dotted in sorted(_keys(shipped)):
        section, _, key = dotted.partition(".")
        if section == "providers":
            provider, _, key = key.partition(".")
            heading = f"## `[providers.{provider}]`"
        elif section == "pipelines":
            heading = f"## `{sections['pipelines']}`"
            key = key.partition(".")[2]
        else:
            heading = f"## `[{section}]`"
        assert heading in reference, dotted
        body = reference.split(heading, 1)[1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in body, dotted


def _commands(parser, prefix: str) -> list[str]:
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_cli_command_is_in_the_cli_reference():
    reference = (REFERENCE / "cli.md").read_text()
    commands = _commands(build_parser(), "flashfusion")
    assert {"flashfusion serve", "flashfusion backup", "flashfusion migrate", "flashfusion trigger"} <= set(commands)
    for command in commands:
        assert f"## `{command}`" in reference, command


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    mkdocs = BIN / "mkdocs"
    if not mkdocs.exists():
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed (it is in the test extra)")
        pytest.skip("mkdocs is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "config" / "index.html").exists()
    assert "WARNING" not in result.stderr


def test_systemd_units_verify(tmp_path):
    """deploy/'s units, with the install path pointed at this environment's executable."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    units = []
    for unit in sorted((REPO / "deploy").glob("*.service")):
        text = unit.read_text().replace("/opt/flashfusion/venv/bin/", f"{BIN}/")
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    assert len(units) == 2
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
