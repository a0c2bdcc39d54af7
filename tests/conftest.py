from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest
from testkit.db import BACKENDS, database_url, fresh_database, require_backend
from testkit.receiver import Receiver

from flashfusion.core.access import apikeys
from flashfusion.core.app import build_gateway, create_app
from flashfusion.core.config import load_config
from flashfusion.core.storage.db import database

ALL_PERMISSIONS = ["trigger_pipeline", "read_runs", "read_config", "webhook"]

BASE_CONFIG = """
[server]
database_url = "{database_url}"

[worker]
lease_seconds = 2.0
tick_seconds = 0.1

[providers.local]
workdir = "{workdir}"
poll_interval_seconds = 0.1

[pipelines.demo]
name = "Demo"
provider = "local"
project_type = "python"
repository_name = "local/demo"
branch = "main"
build_command = "echo built"
steps = [
  {{ name = "lint", run = "echo lint ok" }},
  {{ name = "test", run = "echo \\"testing $FLASHFUSION_BRANCH $FLASHFUSION_INPUT_GREETING\\"" }},
]
triggers = {{ manual = true }}
quality_gates = {{ max_duration_seconds = 600 }}
"""

BROKEN_STEPS = [
    ("compile", "echo compiling"),
    ("unit-tests", "echo 'AssertionError: 2 != 3' >&2; exit 3"),
    ("deploy", "echo never"),
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    require_backend(request.param)
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    url = database_url(backend, tmp_path)
    fresh_database(url)
    return url


def toml_value(value: object) -> str:
    """``value`` in TOML: lists and tables inline, anything else as JSON (which TOML reads)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def pipeline_table(pipeline_id: str, settings: dict[str, object]) -> str:
    """``[pipelines.<pipeline_id>]`` with one line per setting."""
    lines = "".join(f"{key} = {toml_value(value)}\n" for key, value in settings.items())
    return f"\n[pipelines.{pipeline_id}]\n{lines}"


def local_pipeline(pipeline_id: str, steps: list[tuple[str, str]], **settings: object) -> str:
    """A pipeline of the local provider in ``local/<pipeline_id>``, one step per (name, shell command)."""
    table = [{"name": name, "run": run} for name, run in steps]
    return pipeline_table(
        pipeline_id, {"provider": "local", "repository_name": f"local/{pipeline_id}", "steps": table, **settings}
    )


def write_config(
    tmp_path: Path, db_url: str, extra: str = "", slow_seconds: float = 30, slow_timeout: int = 600
) -> Path:
    """``BASE_CONFIG``, the local pipelines ``broken`` (its second step fails) and ``slow`` (its ``sleepy``
    step sleeps ``slow_seconds``; the run times out after ``slow_timeout``), then ``extra``."""
    slow = [
        ("first", "echo started > marker-first"),
        ("sleepy", f"sleep {slow_seconds}; echo done >> ../sleepy-count"),
        ("last", "echo last"),
    ]
    path = tmp_path / "flashfusion.toml"
    path.write_text(
        BASE_CONFIG.format(database_url=db_url, workdir=tmp_path / "runs")
        + local_pipeline("broken", BROKEN_STEPS)
        + local_pipeline("slow", slow, timeout_seconds=slow_timeout)
        + textwrap.dedent(extra)
    )
    return path


@pytest.fixture
def config_path(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Path:
    """The test configuration, plus the requesting test module's ``EXTRA_CONFIG`` if it has one."""
    return write_config(tmp_path, db_url, extra=getattr(request.module, "EXTRA_CONFIG", ""))


@pytest.fixture
def gateway(config_path: Path):
    gw = build_gateway(load_config(str(config_path), env={}))
    yield gw
    gw.providers.close()
    database.close()


@pytest.fixture
def client(gateway) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(gateway))


@pytest.fixture
def make_key(gateway):
    def make(permissions=ALL_PERMISSIONS, pipelines=(), expires_in_days=90, name="test key") -> str:
        with database.connection_context():
            return apikeys.create_key(
                name, permissions, pipelines, expires_in_days, known_pipelines=gateway.config.pipelines
            )["plaintext_key"]

    return make


@pytest.fixture
def key(make_key) -> str:
    return make_key()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (answers 200 unless scripted)."""
    with Receiver() as receiver:
        yield receiver
