"""The OpenAPI document describes the live app; schemathesis holds the app to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_config
from testkit.server import cli, start_server


def test_every_route_is_described_with_the_spec_examples(client):
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    paths = set(doc["paths"])
    assert {"/api/trigger-pipeline", "/api/get-status", "/api/get-config", "/api/runs", "/api/cancel-run"} <= paths
    trigger = doc["paths"]["/api/trigger-pipeline"]["post"]
    assert trigger["requestBody"]["content"]["application/json"]["example"] == {"pipeline_id": "abc123"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path)
    try:
        key = json.loads(cli("keys", "create", "--name", "fuzz", "--permissions",
                             "trigger_pipeline,read_runs,read_config", "--json", config=config).stdout)["plaintext_key"]
        st = str(Path(sys.executable).with_name("st"))
        result = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "-H", f"X-API-Key: {key}",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance,response_headers_conformance,negative_data_rejection",
             "--max-examples", "30", "--seed", "1", "--workers", "1", "--no-color",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "20"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    finally:
        server.process.stop()
