"""Every error answers with the right code and the spec's {"error", "message"} body."""

from __future__ import annotations

import pytest

from flashfusion.core.access import keyformat as keys
from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import ApiKey


def assert_error(answer, code: int, error: str | None = None, contains: str | None = None):
    assert answer.status_code == code, answer.text
    assert set(answer.json) == {"error", "message"}, answer.json
    assert answer.headers.get("X-Request-ID")
    if error is not None:
        assert answer.json["error"] == error
    if contains is not None:
        assert contains in answer.json["message"]


def post(client, path, key, payload=None, *, raw: bytes | None = None, content_type: str = "application/json"):
    headers = {"X-API-Key": key, "Content-Type": content_type}
    if raw is not None:
        return client.simulate_post(path, headers=headers, body=raw)
    return client.simulate_post(path, headers=headers, json=payload)


def test_wrong_prefix_answers_the_spec_error(client):
    answer = client.simulate_get("/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": "sk_live_abc"})
    assert_error(answer, 401)
    assert answer.json == {"error": "Invalid API key format", "message": "API keys must start with ffai_"}


def test_missing_key(client):
    assert_error(client.simulate_get("/api/get-status", params={"run_id": "x"}), 401, "Missing API key")


def test_mistyped_key_is_refused_without_a_key_lookup(client, key, monkeypatch):
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    statements = []
    real = type(database.obj).execute_sql

    def traced(self, sql, params=None, *args, **kwargs):
        statements.append(sql)
        return real(self, sql, params, *args, **kwargs)

    monkeypatch.setattr(type(database.obj), "execute_sql", traced)
    answer = client.simulate_get("/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": typo})
    assert_error(answer, 401, "Invalid API key format", "checksum")
    assert statements and not [s for s in statements if "api_key" in s]


def test_unknown_revoked_and_expired_keys_get_the_same_answer(client, make_key):
    unknown = keys.generate().plaintext
    revoked, expired = make_key(), make_key()
    with database.connection_context():
        ApiKey.update(revoked_at=ApiKey.created_at).where(ApiKey.key_hash == keys.hash_key(revoked)).execute()
        ApiKey.update(expires_at=ApiKey.created_at).where(ApiKey.key_hash == keys.hash_key(expired)).execute()
    answers = [
        client.simulate_get("/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": k})
        for k in (unknown, revoked, expired)
    ]
    for answer in answers:
        assert_error(answer, 401)
    assert len({a.text for a in answers}) == 1


def test_missing_permission_is_403_naming_it(client, make_key):
    reader = make_key(permissions=["read_runs"])
    assert_error(
        post(client, "/api/trigger-pipeline", reader, {"pipeline_id": "demo"}), 403, contains="trigger_pipeline"
    )
    assert_error(
        client.simulate_get("/api/get-config", params={"pipeline_id": "demo"}, headers={"X-API-Key": reader}),
        403,
        contains="read_config",
    )


def test_scoped_key_cannot_learn_of_other_pipelines_or_their_runs(client, make_key, key):
    scoped = make_key(pipelines=["broken"])
    other_run = post(client, "/api/trigger-pipeline", key, {"pipeline_id": "demo"}).json["run_id"]
    not_there = post(client, "/api/trigger-pipeline", scoped, {"pipeline_id": "no-such-pipeline"})
    hidden = post(client, "/api/trigger-pipeline", scoped, {"pipeline_id": "demo"})
    assert_error(hidden, 404)
    assert hidden.json == not_there.json
    assert_error(
        client.simulate_get("/api/get-status", params={"run_id": other_run}, headers={"X-API-Key": scoped}), 404
    )
    assert_error(
        client.simulate_get("/api/get-config", params={"pipeline_id": "demo"}, headers={"X-API-Key": scoped}), 404
    )
    listed = client.simulate_get("/api/runs", headers={"X-API-Key": scoped}).json["runs"]
    assert other_run not in [r["id"] for r in listed]
    assert post(client, "/api/trigger-pipeline", scoped, {"pipeline_id": "broken"}).status_code == 200


@pytest.mark.parametrize(
    "body, contains",
    [
        ({}, "'pipeline_id' is required"),
        ({"pipeline_id": 42}, "'pipeline_id' must be a string"),
        ({"pipeline_id": "demo", "branch": ["main"]}, "'branch' must be a string"),
        ({"pipeline_id": "demo", "branch": "../../etc"}, "'branch'"),
        ({"pipeline_id": "demo", "inputs": "x=1"}, "'inputs'"),
        ({"pipeline_id": "demo", "inputs": {"a b": "1"}}, "input name"),
        ({"pipeline_id": "demo", "inputs": {"n": 1}}, "must be a string"),
        ({"pipeline_id": "demo", "inputs": {f"i{n}": "v" for n in range(26)}}, "at most 25"),
    ],
)
def test_bad_fields_are_400_and_named(client, key, body, contains):
    assert_error(post(client, "/api/trigger-pipeline", key, body), 400, contains=contains)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_bad_json_is_400(client, key, raw):
    answer = post(client, "/api/trigger-pipeline", key, raw=raw)
    assert_error(answer, 400, "Invalid JSON")


def test_missing_query_parameter_is_400(client, key):
    assert_error(client.simulate_get("/api/get-status", headers={"X-API-Key": key}), 400, contains="run_id")
    assert_error(
        client.simulate_get("/api/get-status", params={"run_id": "r", "wait": "61"}, headers={"X-API-Key": key}),
        400,
        contains="wait",
    )


def test_unknown_run_pipeline_and_route_are_404(client, key):
    assert_error(
        client.simulate_get("/api/get-status", params={"run_id": "run_nope"}, headers={"X-API-Key": key}),
        404,
        "Run not found",
    )
    assert_error(post(client, "/api/trigger-pipeline", key, {"pipeline_id": "nope"}), 404, "Pipeline not found")
    assert_error(client.simulate_get("/api/nothing-here", headers={"X-API-Key": key}), 404)


def test_wrong_method_is_405(client, key):
    assert_error(client.simulate_get("/api/trigger-pipeline", headers={"X-API-Key": key}), 405)
    assert_error(client.simulate_delete("/api/get-status", headers={"X-API-Key": key}), 405)


def test_body_over_64_kib_is_413(client, key):
    big = b'{"pipeline_id": "demo", "pad": "' + b"x" * 70000 + b'"}'
    assert_error(post(client, "/api/trigger-pipeline", key, raw=big), 413)


def test_other_media_types_are_415(client, key):
    answer = post(client, "/api/trigger-pipeline", key, raw=b"<xml/>", content_type="application/xml")
    assert_error(answer, 415)


def test_curl_default_form_content_type_with_json_body_is_accepted(client, key):
    answer = post(
        client,
        "/api/trigger-pipeline",
        key,
        raw=b'{"pipeline_id": "demo"}',
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200 and answer.json["success"] is True


def test_internal_errors_are_500_without_internals(client, gateway, key, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr("flashfusion.core.web.resources.pipelines.run_view", explode)
    run_id = post(client, "/api/trigger-pipeline", key, {"pipeline_id": "demo"}).json["run_id"]
    answer = client.simulate_get("/api/get-status", params={"run_id": run_id}, headers={"X-API-Key": key})
    assert_error(answer, 500, "Internal Server Error")
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert answer.headers["X-Request-ID"] in answer.json["message"]


def test_request_id_is_echoed_when_sane(client):
    assert client.simulate_get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert client.simulate_get("/healthz", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"] != "x" * 500


# Found by schemathesis (tests/test_openapi.py): a NUL character reached PostgreSQL, which
# refuses it in text and jsonb (psycopg raises ValueError), and the answer was a 500.
@pytest.mark.parametrize(
    "path, payload",
    [
        ("/functions/replayWebhooks", {"webhook_id": "wh_\u0000", "since": "2025-11-21T10:30:00Z"}),
        (
            "/functions/sendWebhook",
            {"event_type": "run.completed", "pipeline_id": "demo", "payload": {"note": "a\u0000b"}},
        ),
        ("/api/trigger-pipeline", {"pipeline_id": "demo", "inputs": {"GREETING": "\u0000"}}),
        ("/api/cancel-run", {"run_id": "run_\u0000"}),
    ],
)
def test_nul_in_a_body_string_is_400_on_every_database(client, key, path, payload):
    assert_error(post(client, path, key, payload), 400, "Invalid JSON", "NUL")


def test_nul_in_a_query_parameter_is_400_on_every_database(client, key):
    headers = {"X-API-Key": key}
    assert_error(
        client.simulate_get("/api/get-status", query_string="run_id=run_%00", headers=headers),
        400,
        "Invalid parameter",
        "NUL",
    )
    assert_error(
        client.simulate_get("/functions/listDeliveries", query_string="webhook_id=wh_%00", headers=headers),
        400,
        "Invalid parameter",
        "NUL",
    )


# Found by schemathesis: json.loads raises RecursionError (not JSONDecodeError) on deep nesting.
@pytest.mark.parametrize("depth", [990, 5000])
def test_deeply_nested_json_is_400_not_500(client, key, depth):
    raw = ('{"pipeline_id": "demo", "inputs": ' + "[" * depth + "]" * depth + "}").encode()
    answer = post(client, "/api/trigger-pipeline", key, raw=raw)
    assert answer.status_code == 400, answer.text
    assert answer.json["error"] in {"Invalid JSON", "Invalid parameter"}  # too deep, or not an object
