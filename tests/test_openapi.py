"""The OpenAPI document describes the live app; schemathesis holds the app to it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import falcon.inspect
import httpx
import pytest
from conftest import write_config
from testkit.server import cli, cli_key, start_server

from flashfusion.core.web import openapi
from flashfusion.core.web.openapi import NOT_DESCRIBED

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,negative_data_rejection"
)
# negative_data_rejection's default list, plus 413: a negative body may be over the 64 KiB limit.
ST_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""
# High enough that a fuzzing run of a few thousand requests reaches the logic behind the rate
# limit (429 itself is documented and tested elsewhere); webhooks to loopback are allowed so
# createWebhook can succeed and its links lead somewhere.
FUZZ_CONFIG = """
[rate_limits]
api_requests_per_hour = 1000000
webhook_events_per_minute = 100000

[webhooks]
allow_http = true
allow_private_networks = true
"""


def served_routes(app: falcon.App) -> set[tuple[str, str]]:
    """(path, METHOD) for every responder a resource defines (not Falcon's default 405s)."""
    return {
        (route.path, m.method)
        for route in falcon.inspect.inspect_app(app).routes
        for m in route.methods
        if not m.internal
    }


def described_routes(doc: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items() for method in item}


def test_every_route_is_described_or_deliberately_left_out(client):
    doc = client.simulate_get("/openapi.json").json
    served = served_routes(client.app)
    described = described_routes(doc)
    left_out = {(path, method) for path, methods in NOT_DESCRIBED.items() for method in methods}
    assert served - described - left_out == set(), "routes served but neither described nor in NOT_DESCRIBED"
    assert described - served == set(), "described routes the app does not serve"
    assert left_out - served == set(), "NOT_DESCRIBED names routes the app does not serve"
    assert described & left_out == set()
    # every left-out route is part of the dashboard or the page rendering this document, and the document says so
    assert all(
        path == "/" or path.startswith(("/login", "/logout", "/dashboard", "/static/dashboard/", "/docs"))
        for path in NOT_DESCRIBED
    )
    assert "dashboard" in doc["info"]["description"] and "/static/dashboard/" in doc["info"]["description"]
    assert "/docs and its assets /docs/{name}" in doc["info"]["description"]


def test_the_route_check_notices_an_undescribed_route(client):
    client.app.add_route("/functions/brandNew", type("BrandNew", (), {"on_get": lambda *a: None})())
    doc = client.simulate_get("/openapi.json").json
    assert ("/functions/brandNew", "GET") in served_routes(client.app) - described_routes(doc)


def test_the_spec_examples_schemes_and_error_shape(client):
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    paths = doc["paths"]
    trigger = paths["/api/trigger-pipeline"]["post"]
    assert trigger["requestBody"]["content"]["application/json"]["example"] == {"pipeline_id": "abc123"}
    create_key = paths["/functions/createAPIKey"]["post"]
    assert create_key["requestBody"]["content"]["application/json"]["example"] == {
        "name": "Production Deploy Key",
        "permissions": ["trigger_pipeline", "read_runs"],
        "pipeline_ids": ["id1", "id2"],
        "expires_in_days": 90,
    }
    assert create_key["responses"]["200"]["content"]["application/json"]["example"] == {
        "success": True,
        "id": "key_id",
        "name": "Production Deploy Key",
        "plaintext_key": "ffai_...",
        "key_preview": "...abc123",
    }
    assert create_key["security"] == [{"SessionCookie": [], "CsrfToken": []}]
    send = paths["/functions/sendWebhook"]["post"]
    assert send["requestBody"]["content"]["application/json"]["example"] == {
        "event_type": "run.completed",
        "pipeline_id": "abc123",
        "payload": {"run_id": "string", "status": "success", "duration": "2m 30s"},
    }
    assert send["security"] == [{"ApiKey": []}, {"SessionCookie": [], "CsrfToken": []}]
    assert doc["components"]["schemas"]["WebhookPayload"]["example"]["event"] == "run.completed"
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["SessionCookie"]["in"] == "cookie" and schemes["SessionCookie"]["name"] == "ff_session"
    assert schemes["CsrfToken"]["in"] == "header" and schemes["CsrfToken"]["name"] == "X-CSRF-Token"
    for path, item in paths.items():
        for method, op in item.items():
            for code, answer in op["responses"].items():
                assert "X-Request-ID" in answer["headers"], (path, method, code)
                if code == "429":
                    assert "Retry-After" in answer["headers"], (path, method)
                if int(code) >= 400 and path != "/readyz":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            if op["security"] and op["operationId"] != "logout":
                assert "401" in op["responses"], (path, method)


def test_readyz_answers_the_shape_the_document_gives(client, gateway):
    import jsonschema_rs  # schemathesis' validator
    from test_health import login

    doc = client.simulate_get("/openapi.json").json
    anonymous = client.simulate_get("/readyz")
    assert anonymous.status_code == 200
    jsonschema_rs.validate(doc["components"]["schemas"]["Readiness"], anonymous.json)
    answer = client.simulate_get("/readyz", cookies=login(client, gateway, "root", admin=True))
    jsonschema_rs.validate(doc["components"]["schemas"]["Readiness"], answer.json)
    assert set(answer.json["pipelines"]) == {"demo", "broken", "slow"}
    assert {p["status"] for p in answer.json["pipelines"].values()} <= {"ok", "degraded", "checking"}


def test_the_document_is_built_once_and_is_json(client):
    assert json.loads(json.dumps(openapi.document())) == client.simulate_get("/openapi.json").json


def _st(server_url: str, tmp_path: Path, credentials: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run schemathesis with ``credentials`` (security scheme name: value) given as its auth
    config, so that it knows which parameter is the credential and does not count a request
    whose credential it meant to leave out as "invalid data accepted"."""
    st = str(Path(sys.executable).with_name("st"))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        ST_CONFIG
        + "".join(f'\n[auth.openapi.{scheme}]\napi_key = "{value}"\n' for scheme, value in credentials.items())
    )
    return subprocess.run(
        [
            st,
            "--config-file",
            str(config),
            "run",
            f"{server_url}/openapi.json",
            "--checks",
            CHECKS,
            "--seed",
            "1",
            "--workers",
            "1",
            "--no-color",
            "--request-timeout",
            "20",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


def _summary(result: subprocess.CompletedProcess) -> str:
    # failures carry whole request bodies (up to 64 KiB): keep the report readable
    return "\n".join(line[:2000] for line in result.stdout.splitlines())[-8000:] + result.stderr[-2000:]


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(tmp_path, db_url):
    """Every operation with an API key holding every permission (webhook included): the
    session endpoints answer 401 to it, which the document allows. Then the session
    endpoints and the webhook endpoints again, with an administrator's session and its CSRF
    token instead of a key."""
    config = write_config(tmp_path, db_url, extra=FUZZ_CONFIG)
    server = start_server(config, tmp_path)
    try:
        key = cli_key(config, "trigger_pipeline,read_runs,read_config,webhook", name="fuzz")
        started = time.monotonic()
        result = _st(
            server.url,
            tmp_path,
            {"ApiKey": key},
            "--max-examples",
            "30",
            "--phases",
            "examples,coverage,fuzzing,stateful",
        )
        assert result.returncode == 0, _summary(result)
        assert "401 Unauthorized" in result.stdout  # the session endpoints were called, and refused
        cli(
            "users",
            "create",
            "fuzzadmin",
            "--admin",
            "--password-stdin",
            config=config,
            input="fuzz-password-1234\nfuzz-password-1234\n",
        )
        login = httpx.post(
            f"{server.url}/functions/login", json={"username": "fuzzadmin", "password": "fuzz-password-1234"}
        )
        assert login.status_code == 200, login.text
        credentials = {"SessionCookie": login.cookies["ff_session"], "CsrfToken": login.json()["csrf_token"]}
        # logout would end the session the run uses; login was fuzzed above
        result = _st(
            server.url,
            tmp_path,
            credentials,
            "--max-examples",
            "15",
            "--include-path-regex",
            "^/functions/",
            "--exclude-operation-id",
            "logout",
            "--exclude-operation-id",
            "login",
            "--phases",
            "examples,coverage,fuzzing,stateful",
        )
        assert result.returncode == 0, _summary(result)
        print(f"schemathesis: {time.monotonic() - started:.1f} s")
    finally:
        server.process.stop()


BEFORE = Path(__file__).parent / "fixtures" / "openapi-before.json"
WORDING = ("description", "example")


def missing_from(old, new, root: dict, where: str = "$") -> list[str]:
    """Key paths of ``old`` that ``new`` lacks, or where a leaf's value differs.

    A ``$ref`` in ``new`` where ``old`` has the schema inline is followed (a request body's
    schema may now be a named component). A list of scalars (``required``, ``enum``, a type
    list) must hold every old item; in a list of objects an item with a ``name`` (a
    parameter, a tag) is matched by name and place (``in``), any other by position. Only the
    wording of a ``description`` or ``example`` may differ: those must exist, not be equal."""
    if isinstance(new, dict) and "$ref" in new and not (isinstance(old, dict) and "$ref" in old):
        new = resolve(root, new["$ref"])
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where}: was an object, now {new!r:.80}"]
        out = []
        for key, value in old.items():
            if key not in new:
                out.append(f"{where}.{key}: missing")
            elif key not in WORDING:
                out.extend(missing_from(value, new[key], root, f"{where}.{key}"))
        return out
    if isinstance(old, list):
        if not isinstance(new, list):
            return [f"{where}: was a list, now {new!r:.80}"]
        if all(not isinstance(item, (dict, list)) for item in old):
            return [f"{where}: {item!r} missing" for item in old if item not in new]
        out = []
        for index, item in enumerate(old):
            if isinstance(item, dict) and "name" in item:
                match = [
                    n
                    for n in new
                    if isinstance(n, dict) and (n.get("name"), n.get("in")) == (item["name"], item.get("in"))
                ]
                if not match:
                    out.append(f"{where}[name={item['name']}]: missing")
                    continue
                out.extend(missing_from(item, match[0], root, f"{where}[name={item['name']}]"))
            elif index >= len(new):
                out.append(f"{where}[{index}]: missing")
            else:
                out.extend(missing_from(item, new[index], root, f"{where}[{index}]"))
        return out
    if old != new:
        return [f"{where}: was {old!r:.80}, now {new!r:.80}"]
    return []


def resolve(root: dict, ref: str):
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_document_keeps_everything_it_described_before(client):
    """Every path, operation, parameter, response code, schema property, enum value and
    security requirement of the document as it was before the schemas were declared once
    (tests/fixtures/openapi-before.json) is still there with the same value; descriptions
    and examples may be worded differently."""
    before = json.loads(BEFORE.read_text())
    now = client.simulate_get("/openapi.json").json
    assert missing_from(before, now, now) == []


def test_the_superset_check_notices_a_lost_property_or_enum_value(client):
    before = json.loads(BEFORE.read_text())
    now = client.simulate_get("/openapi.json").json
    now["components"]["schemas"]["Step"]["properties"]["status"]["enum"].remove("skipped")
    del now["paths"]["/api/runs"]["get"]["parameters"][0]["schema"]
    lost = missing_from(before, now, now)
    assert any("Step.properties.status.enum: 'skipped' missing" in line for line in lost), lost
    assert any("parameters[name=pipeline_id].schema: missing" in line for line in lost), lost


def test_request_bodies_are_refused_by_the_rules_the_document_gives(client, key):
    """The document's request schemas and the API's checks are one declaration: a value one
    past a documented limit is refused, naming the field, and a documented alias works."""
    doc = client.simulate_get("/openapi.json").json
    schemas = doc["components"]["schemas"]
    headers = {"X-API-Key": key}
    longest = schemas["TriggerPipelineRequest"]["properties"]["pipeline_id"]["maxLength"]
    answer = client.simulate_post("/api/trigger-pipeline", headers=headers, json={"pipeline_id": "p" * (longest + 1)})
    assert answer.status_code == 400 and answer.json == {
        "error": "Invalid parameter",
        "message": f"'pipeline_id' is longer than {longest} characters",
    }
    most = schemas["TriggerPipelineRequest"]["properties"]["inputs"]["maxProperties"]
    answer = client.simulate_post(
        "/api/trigger-pipeline",
        headers=headers,
        json={"pipeline_id": "demo", "inputs": {f"i{n}": "v" for n in range(most + 1)}},
    )
    assert answer.status_code == 400 and f"at most {most}" in answer.json["message"]
    assert "delivery_id" in schemas["RedeliverRequest"]["required"]
    answer = client.simulate_post("/functions/redeliver", headers=headers, json={"id": "dlv_nope"})
    assert answer.status_code == 404 and answer.json["error"] == "Delivery not found"
    answer = client.simulate_post("/functions/redeliver", headers=headers, json={})
    assert answer.status_code == 400 and answer.json == {
        "error": "Missing parameter",
        "message": "'delivery_id' is required",
    }
