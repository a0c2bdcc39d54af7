"""The light client distribution (clients/python) as a CI job gets it: its wheel, built from
this checkout, installed offline into a fresh venv with nothing but httpx beside it, runs
``flashfusion-client trigger --wait`` against a real ``flashfusion serve`` (gunicorn + worker,
local provider) started from the main venv."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import write_config
from testkit.server import cli, start_server

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "clients" / "python"
WHEELHOUSE = REPO / "build" / "wheelhouse"
MAKE_TARGET = "make wheelhouse"
SERVER_ONLY = {
    "flashfusion",
    "falcon",
    "gunicorn",
    "peewee",
    "pygithub",
    "python-gitlab",
    "argon2-cffi",
    "libpass",
    "pluggy",
    "jinja2",
    "cryptography",
    "msgspec",
    "prometheus-client",
    "cronsim",
}


def clean_env(**extra: str) -> dict[str, str]:
    """No CI variables, no Python path or pip index of the test run leaking into the venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CI", "GITHUB_", "GITLAB_", "FLASHFUSION_", "PYTHON", "PIP_", "VIRTUAL_ENV"))
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    return env


def require_wheelhouse() -> Path:
    needed = ("httpx", "httpcore", "setuptools", "wheel")
    missing = [name for name in needed if not any(WHEELHOUSE.glob(f"{name}-*.whl"))]
    if missing:
        pytest.fail(
            f"{WHEELHOUSE} lacks wheels of {missing}: `{MAKE_TARGET}` creates it (so do `make test` "
            "and `make .venv/.installed-test`; this test installs the client offline from it)"
        )
    return WHEELHOUSE


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    """Run outside the checkout: ``python -c`` would otherwise see its flashfusion.egg-info."""
    kwargs.setdefault("cwd", Path(args[0]).parent)
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A venv holding only the client wheel and its dependencies, from the wheelhouse (no network)."""
    wheelhouse = require_wheelhouse()
    tmp = tmp_path_factory.mktemp("client-package")
    # a copy with the symlinked package resolved, so the build writes nothing into the checkout
    source = tmp / "source"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    offline = ["--no-index", "--find-links", wheelhouse]
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", tmp / "dist", source], env=clean_env()
    )
    wheel = next((tmp / "dist").glob("flashfusion_client-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", *offline, wheel],
        env=clean_env(),
    )
    return venv


def installed(venv: Path) -> set[str]:
    listing = run(
        [
            venv / "bin" / "python",
            "-c",
            "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
        ],
        env=clean_env(),
    )
    return {name.lower().replace("_", "-") for name in json.loads(listing.stdout)}


def test_the_client_venv_holds_the_client_and_httpx_only(client_venv):
    names = installed(client_venv)
    assert {"flashfusion-client", "httpx"} <= names
    assert not names & SERVER_ONLY, f"server packages in the client's venv: {sorted(names & SERVER_ONLY)}"
    probe = run(
        [
            client_venv / "bin" / "python",
            "-c",
            "import importlib.util as u; "
            "print(u.find_spec('falcon'), u.find_spec('gunicorn'), u.find_spec('peewee'), "
            "u.find_spec('flashfusion.core'))",
        ],
        env=clean_env(),
    )
    assert probe.stdout.split() == ["None"] * 4
    version = run([client_venv / "bin" / "flashfusion-client", "--version"], env=clean_env())
    assert version.stdout.strip() == f"flashfusion-client {server_version()}"


def test_trigger_wait_from_the_client_venv_follows_a_real_run_to_its_end(client_venv, tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'flashfusion.db'}")
    server = start_server(config, tmp_path)
    try:
        made = cli(
            "keys", "create", "--name", "ci job", "--permissions", "trigger_pipeline,read_runs", "--json", config=config
        )
        key = json.loads(made.stdout)["plaintext_key"]
        env = clean_env(CI="true", FLASHFUSION_URL=server.url, FLASHFUSION_API_KEY=key)
        client = client_venv / "bin" / "flashfusion-client"

        def ff(*args: str) -> subprocess.CompletedProcess:
            result = subprocess.run(
                [str(client), *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
            )
            assert key not in result.stdout + result.stderr, "the API key was printed"
            return result

        done = ff("trigger", "demo", "--input", "GREETING=hello", "--wait", "--timeout", "2m")
        assert done.returncode == 0, done.stdout + done.stderr
        run_id = re.search(r"\brun (run_\w+)", done.stdout).group(1)
        # the progress display of a CI log (plain lines as the run changes), then the summary
        assert re.search(rf"^run {run_id}: running\b", done.stdout, re.M), done.stdout
        assert "step lint: success" in done.stdout and "step test: success" in done.stdout
        assert f"run {run_id} (demo): success" in done.stdout

        status = ff("status", run_id, "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["status"] == "success"
        listed = ff("runs", "--pipeline", "demo", "--json")
        assert run_id in [r["id"] for r in json.loads(listed.stdout)]
        assert ff("outputs", run_id).returncode == 0

        failed = ff("trigger", "broken", "--wait", "--timeout", "2m")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "unit-tests" in failed.stdout
    finally:
        server.process.stop()


def server_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_client_distribution_keeps_the_server_version_and_its_source():
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert client["version"] == server_version()
    assert client["dependencies"] == ["httpx>=0.27"]
    assert (CLIENT / "flashfusion" / "client").resolve() == REPO / "core" / "client"
