"""The plugin host: hooks, provider registration, the example third-party plugin."""

from __future__ import annotations

import ast
import inspect
import sys
import tomllib
from pathlib import Path

import falcon.testing
import pytest
from conftest import write_config
from testkit.drive import run_until_done

from flashfusion.core.app import create_app
from flashfusion.core.config import load_config
from flashfusion.core.errors import ConfigError
from flashfusion.core.gateway import Gateway
from flashfusion.core.plugin_manager import ProviderRegistry, get_plugin_manager, load_providers
from flashfusion.core.runs.longpoll import RunWatcher
from flashfusion.core.storage.db import database, open_database
from flashfusion.core.storage.models import Event
from flashfusion.plugins import Provider, hookimpl, hookspecs
from flashfusion.plugins.conformance import check_provider_class
from flashfusion.providers.local.provider import LocalProvider

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "example"))
import flashfusion_echo  # noqa: E402  (the example plugin, as if pip-installed)

HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "flashfusion_spec")]


def test_hooks_are_documented_where_declared_and_in_the_docs():
    readme = (REPO / "docs" / "extending.md").read_text()
    assert set(HOOKS) == {"register_providers", "run_finished", "startup", "check_quality_gate"}
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__) > 40, name
        assert f"`{name}{inspect.signature(fn)}`".replace("'", "") in readme.replace("'", ""), name


def test_every_hook_has_a_test():
    source = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for name in HOOKS:
        assert f"def test_hook_{name}" in source, f"hook {name} has no test named test_hook_{name}"


def test_builtin_providers_arrive_through_entry_points():
    pm = get_plugin_manager()
    assert "local" in {name for name, _ in pm.list_name_plugin()}
    registry = ProviderRegistry()
    pm.hook.register_providers(register=registry.register)
    assert registry.classes["local"] is LocalProvider


def test_disabled_plugins_are_not_loaded():
    pm = get_plugin_manager(disabled=["local"])
    registry = ProviderRegistry()
    pm.hook.register_providers(register=registry.register)
    assert "local" not in registry.classes


def test_hook_register_providers_rejects_duplicate_names():
    class Twin(LocalProvider):
        pass

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register(Twin)

    pm = get_plugin_manager(extra=[Plugin()])
    with pytest.raises(ValueError, match="'local' is registered twice"):
        pm.hook.register_providers(register=ProviderRegistry().register)


def test_misspelled_hooks_fail_at_start():
    class Typo:
        @hookimpl
        def register_provider(self, register):
            pass

    with pytest.raises(Exception, match="register_provider"):
        get_plugin_manager(extra=[Typo()])


def test_hook_startup_receives_the_app_and_config(tmp_path, db_url):
    seen = {}

    class Plugin:
        @hookimpl
        def startup(self, app, config):
            seen["config"] = config
            app.add_route("/plugin-hello", Hello())

    class Hello:
        auth = None

        def on_get(self, req, resp):
            resp.media = {"hello": "from a plugin"}

    gateway = _gateway(tmp_path, db_url, extra=[Plugin()])
    client = falcon.testing.TestClient(create_app(gateway))
    assert client.simulate_get("/plugin-hello").json == {"hello": "from a plugin"}
    assert seen["config"] is gateway.config


def test_hook_run_finished_suggestions_become_one_event(tmp_path, db_url):
    calls = []

    class Analyzer:
        @hookimpl
        def run_finished(self, run, history):
            calls.append((run["id"], len(history)))
            return [{"kind": "cache", "message": "cache the dependencies", "seconds": 42}]

    gateway = _gateway(tmp_path, db_url, extra=[Analyzer()])
    client = falcon.testing.TestClient(create_app(gateway))
    key = _key(gateway)
    first = _trigger(client, key, "demo").json["run_id"]
    run_until_done(gateway, first)
    second = _trigger(client, key, "demo").json["run_id"]
    run_until_done(gateway, second)
    assert calls == [(first, 0), (second, 1)]
    with database.connection_context():
        event = Event.get((Event.run_id == second) & (Event.event_type == "optimization.available"))
    assert event.payload["suggestions"][0]["seconds"] == 42


def test_providers_pass_the_conformance_kit():
    check_provider_class(LocalProvider)
    check_provider_class(flashfusion_echo.EchoProvider)

    class Lazy(Provider):
        name = "lazy"

    with pytest.raises(AssertionError, match="must implement dispatch"):
        check_provider_class(Lazy)


def test_providers_import_only_the_plugin_interface():
    for path in list((REPO / "providers").rglob("*.py")) + list((REPO / "plugins" / "example").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert not name.startswith("flashfusion.core"), f"{path} imports {name}"


def test_no_bare_top_level_modules_are_imported_and_every_package_is_listed():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    for top, prefix in (
        ("core", "flashfusion.core"),
        ("providers", "flashfusion.providers"),
        ("plugins", "flashfusion.plugins"),
    ):
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            if {"example", "jenkins"} & set(rel.parts):  # separately installed plugin packages
                continue
            package = ".".join([prefix, *rel.parts])
            assert package in listed, f"{package} is missing from pyproject.toml packages"
        assert project["package-dir"][prefix] == top
    for folder in (REPO / "core").rglob("*"):
        if folder.is_dir() and folder.name in ("templates", "static"):
            package = ".".join(["flashfusion.core", *folder.relative_to(REPO / "core").parts])
            assert package in listed, f"{package} (package data) is missing from pyproject.toml packages"
    for path in REPO.rglob("*.py"):
        if {".venv", "build"} & set(path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in ("core", "providers", "plugins"), f"{path}: bare import {name}"


# --- the remote-provider path of the core, through the example plugin ---------------------

ECHO = """
[pipelines.hello]
provider = "echo"
repository_name = "example/hello"
"""


def _gateway(tmp_path, db_url, extra=()) -> Gateway:
    config = load_config(str(write_config(tmp_path, db_url, ECHO)), env={})
    open_database(config.server.database_url)
    pm = get_plugin_manager(extra=[flashfusion_echo, *extra])
    return Gateway(config=config, pm=pm, providers=load_providers(pm, config), watcher=RunWatcher(2))


def _key(gateway) -> str:
    from flashfusion.core.access.apikeys import create_key

    with database.connection_context():
        return create_key("k", ["trigger_pipeline", "read_runs"], known_pipelines=gateway.config.pipelines)[
            "plaintext_key"
        ]


def _trigger(client, key, pipeline_id, **inputs):
    return client.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": pipeline_id, "inputs": inputs}, headers={"X-API-Key": key}
    )


@pytest.fixture
def echo(tmp_path, db_url):
    gateway = _gateway(tmp_path, db_url)
    yield gateway, falcon.testing.TestClient(create_app(gateway)), _key(gateway)
    database.close()


def test_remote_provider_dispatches_in_the_request_and_returns_upstream_ids(echo):
    gateway, client, key = echo
    body = _trigger(client, key, "hello", deploy_to="https://hello.example.test").json
    assert body["workflow_id"] == "echo.yml" and body["upstream_run_id"] == "1000"
    assert body["html_url"].endswith("/example/hello/runs/1000") and body["phase"] == "dispatching"
    run = run_until_done(gateway, body["run_id"])
    assert run.status == "success" and run.deployment_url == "https://hello.example.test"
    with database.connection_context():
        kinds = sorted(e.event_type for e in Event.select().where(Event.run_id == run.id))
    assert kinds == ["deployment.success", "run.completed", "run.started"]


@pytest.mark.parametrize(
    "failure, code, error",
    [
        ("rejected", 422, "Upstream rejected the request"),
        ("auth", 502, "Upstream authentication failed"),
        ("down", 502, "Upstream unavailable"),
        ("timeout", 504, "Upstream timeout"),
    ],
)
def test_upstream_failures_map_to_the_error_shape_and_leave_a_failed_run(echo, failure, code, error):
    gateway, client, key = echo
    answer = _trigger(client, key, "hello", echo_fail=failure)
    assert answer.status_code == code and answer.json["error"] == error and set(answer.json) == {"error", "message"}
    runs = client.simulate_get("/api/runs", params={"pipeline_id": "hello"}, headers={"X-API-Key": key}).json["runs"]
    assert len(runs) == 1
    assert (runs[0]["status"], runs[0]["conclusion"]) == ("failed", "dispatch_error")
    assert runs[0]["error"] == answer.json["message"]


def test_a_crashing_plugin_is_a_500_and_a_failed_run(echo):
    gateway, client, key = echo
    answer = _trigger(client, key, "hello", echo_fail="crash")
    assert answer.status_code == 500 and "bug" not in answer.text
    run = client.simulate_get("/api/runs", headers={"X-API-Key": key}).json["runs"][0]
    assert (run["status"], run["conclusion"]) == ("failed", "dispatch_error")


def test_one_poll_call_covers_all_active_runs_of_a_pipeline(echo):
    gateway, client, key = echo
    ids = [_trigger(client, key, "hello").json["run_id"] for _ in range(7)]
    from flashfusion.core.worker import Worker

    worker = Worker(gateway, worker_id="w")
    worker.tick()
    assert gateway.providers.get("echo").polls == [7]
    for run_id in ids:
        run_until_done(gateway, run_id, worker=worker)


def test_unknown_provider_in_a_pipeline_is_a_config_error(tmp_path, db_url):
    config = load_config(str(write_config(tmp_path, db_url, ECHO)), env={})
    with pytest.raises(ConfigError, match="'echo' is not installed"):
        load_providers(get_plugin_manager(), config)
