"""The layering rule, read from the source's imports (function-level imports included):

    web (HTTP resources), dashboard, cli  ->  services  ->  storage
    providers                             ->  flashfusion.plugins only
    worker                                ->  never HTTP code, not even indirectly
    webhook delivery (dispatcher, sender, ...) ->  never webhook management nor HTTP code

Services are the feature packages that hold the rules: access, runs, webhooks, and the
top-level modules they share (config, errors, gateway, ...). The CI client talks HTTP to a
gateway and imports nothing but itself, httpx and the standard library.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOPS = {"core": "flashfusion.core", "providers": "flashfusion.providers", "plugins": "flashfusion.plugins"}
HTTP = ("flashfusion.core.web", "flashfusion.core.dashboard", "flashfusion.core.cli", "flashfusion.core.app")
SERVICES = (
    "flashfusion.core.access",
    "flashfusion.core.runs",
    "flashfusion.core.webhooks",
    "flashfusion.core.storage",
    "flashfusion.core.checks",
    "flashfusion.core.housekeeping",
    "flashfusion.core.gateway",
    "flashfusion.core.config",
    "flashfusion.core.plugin_manager",
    "flashfusion.core.errors",
    "flashfusion.core.hooks",
    "flashfusion.core.observability",
)


def module_files() -> dict[str, Path]:
    found = {}
    for top, prefix in TOPS.items():
        for path in (REPO / top).rglob("*.py"):
            rel = path.relative_to(REPO / top).with_suffix("")
            if "example" in rel.parts:
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = module_files()


def imports_of(path: Path) -> set[str]:
    """Every flashfusion module a file imports; ``from package import name`` counts as the
    submodule when ``name`` is one."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("flashfusion"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flashfusion"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                out.add(candidate if candidate in MODULES else node.module)
    return out


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_import_graph_is_read():
    assert "flashfusion.core.runs.transitions" in GRAPH["flashfusion.core.worker"]
    assert any(under(m, ("flashfusion.core.access",)) for m in GRAPH["flashfusion.core.web.resources.access"])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if under(n, SERVICES)))
def test_services_do_not_import_http_code(name):
    bad = sorted(m for m in GRAPH[name] if under(m, HTTP))
    assert not bad, f"{name} (a service) imports HTTP/CLI code: {bad}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if under(n, ("flashfusion.core.storage",))))
def test_storage_imports_no_feature(name):
    bad = sorted(
        m
        for m in GRAPH[name]
        if under(m, SERVICES + HTTP) and not under(m, ("flashfusion.core.storage", "flashfusion.core.errors"))
    )
    assert not bad, f"{name} (storage) imports {bad}"


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if under(n, ("flashfusion.providers", "flashfusion.plugins")))
)
def test_providers_and_the_plugin_api_import_no_core(name):
    bad = sorted(m for m in GRAPH[name] if under(m, ("flashfusion.core",)))
    assert not bad, f"{name} imports {bad}: providers see only flashfusion.plugins"


def reachable(start: str) -> dict[str, str]:
    """Modules reachable from ``start``, each with the module that first imported it."""
    seen, todo = {start: ""}, [start]
    while todo:
        current = todo.pop()
        for dep in GRAPH.get(current, ()):
            if dep in MODULES and dep not in seen:
                seen[dep] = current
                todo.append(dep)
    return seen


def test_the_worker_never_reaches_http_code():
    seen = reachable("flashfusion.core.worker")
    bad = {m: via for m, via in seen.items() if under(m, HTTP)}
    assert not bad, f"the worker reaches HTTP code: {bad}"


WEBHOOK_DELIVERY = tuple(
    f"flashfusion.core.webhooks.{name}"
    for name in ("dispatcher", "sender", "signing", "crypto", "ssrf", "payload", "schedule", "outbox", "limits")
)
WEBHOOK_MANAGEMENT = ("flashfusion.core.webhooks.management", "flashfusion.core.webhooks.views")


@pytest.mark.parametrize("name", WEBHOOK_DELIVERY)
def test_webhook_delivery_never_reaches_management_or_http(name):
    assert name in MODULES
    seen = reachable(name)
    bad = {m: via for m, via in seen.items() if under(m, WEBHOOK_MANAGEMENT + HTTP)}
    assert not bad, f"{name} (webhook delivery) reaches management or HTTP code: {bad}"


def client_imports(path: Path) -> tuple[set[str], set[int]]:
    """A client module's absolute imports (top-level names) and the levels of its relative ones."""
    absolute, levels = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                levels.add(node.level)
            else:
                absolute.add((node.module or "").split(".")[0])
    return absolute, levels


@pytest.mark.parametrize("path", sorted((REPO / "core" / "client").glob("*.py")), ids=lambda p: p.name)
def test_the_ci_client_imports_only_itself_httpx_and_the_standard_library(path):
    """The same files are the server's flashfusion.core.client and the light distribution's
    flashfusion.client (clients/python): they reach each other by relative imports only, and
    nothing else but httpx and the standard library is installed beside them."""
    absolute, levels = client_imports(path)
    bad = sorted(name for name in absolute if name != "httpx" and name not in sys.stdlib_module_names)
    assert not bad, f"core/client/{path.name} imports {bad}"
    assert levels <= {1}, f"core/client/{path.name} imports from outside its package (relative level {levels})"


def test_a_client_import_of_the_server_is_caught(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("from flashfusion.core.durations import x\nfrom .. import errors\n")
    assert client_imports(sample) == ({"flashfusion"}, {2})


def test_a_violation_is_caught(tmp_path):
    """The rule's reader sees a function-level import of HTTP code in a service."""
    sample = tmp_path / "svc.py"
    sample.write_text("def f():\n    from flashfusion.core.web import parsing\n    return parsing\n")
    assert any(under(m, HTTP) for m in imports_of(sample))
