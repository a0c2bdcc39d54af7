"""Request bodies the gateway cannot store or parse are the client's error (400 in the spec's
shape), never a 500 with a traceback in the log; the same for query parameters and forms."""

from __future__ import annotations

import logging

import pytest

from flashfusion.core.access.users import create_user
from flashfusion.core.storage.db import database

PASSWORD = "correct horse battery staple"
HUGE_INT = "1" * 4301  # one digit past Python's int/str conversion limit
LONE_SURROGATE = '"\\ud800x"'


def assert_invalid_json(answer, contains: str | None = None):
    assert answer.status_code == 400, answer.text
    assert set(answer.json) == {"error", "message"}
    assert answer.json["error"] == "Invalid JSON"
    if contains is not None:
        assert contains in answer.json["message"], answer.json["message"]


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.INFO)
    yield caplog
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage() for r in problems]


@pytest.fixture
def session(client, gateway) -> dict:
    with database.connection_context():
        create_user(gateway.passwords, "alice", PASSWORD, admin=True)
    answer = client.simulate_post("/functions/login", json={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 200
    return {
        "Cookie": f"ff_session={answer.cookies['ff_session'].value}",
        "X-CSRF-Token": answer.json["csrf_token"],
        "Content-Type": "application/json",
    }


def post_raw(client, path: str, body: str, headers: dict) -> object:
    return client.simulate_post(
        path, body=body.encode("utf-8"), headers={"Content-Type": "application/json", **headers}
    )


def test_a_huge_integer_is_invalid_json_even_before_login(client, logged):
    answer = post_raw(client, "/functions/login", f'{{"username": "a", "password": {HUGE_INT}}}', {})
    assert_invalid_json(answer, "more than 100 digits")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/trigger-pipeline", f'{{"pipeline_id": "demo", "inputs": {{"n": {HUGE_INT}}}}}'),
        ("/functions/sendWebhook", f'{{"event": "x", "payload": {{"n": {HUGE_INT}}}}}'),
        ("/api/cancel-run", f'{{"run_id": {HUGE_INT}}}'),
    ],
)
def test_a_huge_integer_on_key_endpoints(client, key, logged, path, body):
    assert_invalid_json(post_raw(client, path, body, {"X-API-Key": key}), "digits")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/trigger-pipeline", f'{{"pipeline_id": "demo", "inputs": {{"name": {LONE_SURROGATE}}}}}'),
        ("/api/trigger-pipeline", f'{{"pipeline_id": "demo", "inputs": {{{LONE_SURROGATE}: "x"}}}}'),
        ("/functions/sendWebhook", f'{{"event": "run.completed", "payload": {{"text": {LONE_SURROGATE}}}}}'),
        ("/functions/createWebhook", '{"url": "http://127.0.0.1:9/\\udc00", "events": ["run.completed"]}'),
        ("/functions/createWebhook", f'{{"url": "http://127.0.0.1:9/", "description": {LONE_SURROGATE}}}'),
    ],
)
def test_a_lone_surrogate_on_key_endpoints(client, key, logged, path, body):
    assert_invalid_json(post_raw(client, path, body, {"X-API-Key": key}), "lone surrogates")


def test_a_lone_surrogate_in_an_api_key_name(client, session, logged):
    body = f'{{"name": {LONE_SURROGATE}, "permissions": ["read_runs"]}}'
    assert_invalid_json(post_raw(client, "/functions/createAPIKey", body, session), "lone surrogates")


@pytest.mark.parametrize(
    "body, contains",
    [
        ('{"pipeline_id": }', "Expecting value at line 1, column 17"),
        ('{"pipeline_id": "demo",\n "inputs": [}', "at line 2, column 13"),
        ('{"pipeline_id": "demo", "n": NaN}', "NaN is not a JSON value"),
        ('{"pipeline_id": "demo", "n": 1e999}', "out of range"),
    ],
)
def test_syntax_errors_name_line_and_column_not_an_exception(client, key, logged, body, contains):
    answer = post_raw(client, "/api/trigger-pipeline", body, {"X-API-Key": key})
    assert_invalid_json(answer, contains)
    assert "Error" not in answer.json["message"]


def test_a_body_that_is_not_utf8_is_invalid_json(client, key, logged):
    answer = client.simulate_post(
        "/api/trigger-pipeline",
        body=b'{"pipeline_id": "\xed\xa0\x80"}',
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert_invalid_json(answer, "not valid UTF-8")


def test_a_form_percent_encoding_a_surrogate_is_refused(client, session, logged):
    headers = {**session, "Content-Type": "application/x-www-form-urlencoded"}
    answer = client.simulate_post(
        "/dashboard/keys", body=b"name=%ED%A0%80&csrf_token=" + session["X-CSRF-Token"].encode(), headers=headers
    )
    assert answer.status_code == 400, answer.text
    assert "not UTF-8" in answer.text


@pytest.mark.parametrize("value", ["\u0663", "1_0", " 3", "+3", "3.0", "abc"])
def test_integer_query_parameters_take_ascii_digits_only(client, key, logged, value):
    run_id = client.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": key}
    ).json["run_id"]
    answer = client.simulate_get(
        "/api/get-status", params={"run_id": run_id, "wait": value}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json == {"error": "Invalid parameter", "message": "Query parameter 'wait' must be an integer"}


def test_get_status_checks_version_without_wait(client, key, logged):
    run_id = client.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": key}
    ).json["run_id"]
    answer = client.simulate_get(
        "/api/get-status", params={"run_id": run_id, "version": "abc"}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json["message"] == "Query parameter 'version' must be an integer"
    fine = client.simulate_get("/api/get-status", params={"run_id": run_id, "version": "0"}, headers={"X-API-Key": key})
    assert fine.status_code == 200
