"""Webhooks end to end in one process: endpoints through the API, events from real local
runs, signed deliveries to a receiver on 127.0.0.1 checked by the spec's Node.js verifier,
the standardwebhooks package and docs/webhooks.md's raw-body verifier; sendWebhook, rotation,
the delivery log, scopes and errors. Retries run under an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest
from conftest import write_config
from standardwebhooks.webhooks import Webhook
from testkit.drive import run_until_done
from testkit.receiver import (
    SPEC,
    WEBHOOK_CONFIG,
    Clock,
    db_dump,
    dispatcher,
    docs_verifier,
    get,
    node_verify,
    post,
    spec_block,
)

from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import WebhookDelivery, WebhookEndpoint

EXTRA_CONFIG = WEBHOOK_CONFIG.format(per_minute=100)  # added by conftest's config_path


def create(client, key, url, **fields):
    answer = post(client, "/functions/createWebhook", {"url": url, **fields}, key)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_local_runs_reach_the_receiver_signed_and_every_verifier_accepts(client, gateway, key, rx, tmp_path):
    made = create(client, key, rx.url(), description="ci")
    assert set(made) >= {"success", "id", "secret"} and made["success"] is True
    secret = made["secret"]
    assert secret.startswith("whsec_")
    good = post(client, "/api/trigger-pipeline", {"pipeline_id": "demo"}, key).json["run_id"]
    bad = post(client, "/api/trigger-pipeline", {"pipeline_id": "broken"}, key).json["run_id"]
    run_until_done(gateway, good)
    run_until_done(gateway, bad)
    dispatcher(gateway).drain()

    got = rx.snapshot()
    by_run = {}
    for r in got:
        by_run.setdefault(r.json["data"]["run_id"], []).append(r.json["event"])
    assert sorted(by_run[good]) == ["run.completed", "run.started"]
    assert sorted(by_run[bad]) == ["run.failed", "run.started"]
    assert len(got) == 4 and len(rx.ids()) == 4  # exactly once each

    completed = next(r for r in got if r.json["event"] == "run.completed")
    body = completed.json
    assert list(body) == ["event", "timestamp", "pipeline_id", "data"]
    assert body["pipeline_id"] == "demo" and body["timestamp"].endswith("Z")
    assert body["data"]["status"] == "success" and isinstance(body["data"]["duration_seconds"], int)
    assert body["data"]["duration"].endswith("s")
    assert completed.body == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    failed = next(r for r in got if r.json["event"] == "run.failed")
    assert failed.json["data"]["failed_step"] == "unit-tests"
    for r in got:
        assert r.headers["x-flashfusion-event"] == r.json["event"]
        assert r.headers["x-flashfusion-signature"] == hmac.new(secret.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["webhook-id"].startswith("evt_")

    # the spec's Node.js verifier, verbatim, run by node
    assert node_verify(got, secret, tmp_path) == [True] * 4
    assert node_verify(got, secret.replace("A", "B", 1) + "x", tmp_path) == [False] * 4
    # the standardwebhooks package
    for r in got:
        assert Webhook(secret).verify(r.body, r.headers)["event"] == r.json["event"]
    # docs/webhooks.md's raw-body verifiers
    docs = docs_verifier()
    for r in got:
        assert docs["verify_flashfusion_signature"](r.body, r.headers, secret)
        assert docs["verify_standard_webhook"](r.body, r.headers, secret)
        assert not docs["verify_flashfusion_signature"](r.body + b" ", r.headers, secret)
        assert not docs["verify_standard_webhook"](r.body.replace(b"run_", b"ruN_"), r.headers, secret)


def test_the_spec_python_snippet_cannot_verify_a_compact_body(client, gateway, key, rx):
    """What docs/webhooks.md explains: json.dumps of the parsed body is not the body."""
    secret = create(client, key, rx.url())["secret"]
    post(
        client,
        "/functions/sendWebhook",
        {
            "event_type": "run.completed",
            "pipeline_id": "demo",
            "payload": {"run_id": "run_456", "status": "success", "duration": "2m 30s", "note": "café"},
        },
        key,
    )
    dispatcher(gateway).drain()
    (r,) = rx.snapshot()
    namespace: dict = {}
    if SPEC.exists():
        exec(spec_block("python"), namespace)

        class Request:
            headers = r.headers | {"X-FlashFusion-Signature": r.headers["x-flashfusion-signature"]}
            json = json.loads(r.body)

        assert namespace["verify_webhook"](Request, secret) is False
    assert json.dumps(json.loads(r.body)).encode() != r.body
    assert docs_verifier()["verify_flashfusion_signature"](r.body, r.headers, secret)


def test_send_webhook_as_the_spec_and_its_rate_limit(client, gateway, make_key, rx, tmp_path):
    key = make_key(["webhook"])
    create(client, key, rx.url("/all"))
    create(client, key, rx.url("/demo-only"), pipeline_ids=["demo"], events=["run.completed"])
    create(client, key, rx.url("/broken-only"), pipeline_ids=["broken"])
    spec_body = {
        "event_type": "run.completed",
        "pipeline_id": "demo",
        "payload": {"run_id": "string", "status": "success", "duration": "2m 30s"},
    }
    answer = post(client, "/functions/sendWebhook", spec_body, key)
    assert answer.status_code == 200
    assert set(answer.json) == {"success", "event_id", "deliveries"} and answer.json["success"] is True
    assert len(answer.json["deliveries"]) == 2
    dispatcher(gateway).drain()
    assert sorted(r.path for r in rx.snapshot()) == ["/all", "/demo-only"]
    body = rx.snapshot()[0].json
    assert body["data"] == spec_body["payload"] and body["event"] == "run.completed"

    # errors, in the spec's shape
    for bad, status in (
        ({**spec_body, "event_type": "run.exploded"}, 400),
        ({k: v for k, v in spec_body.items() if k != "pipeline_id"}, 400),
        ({**spec_body, "payload": "text"}, 400),
        ({**spec_body, "pipeline_id": "nope"}, 404),
    ):
        answer = post(client, "/functions/sendWebhook", bad, key)
        assert answer.status_code == status and set(answer.json) == {"error", "message"}
    no_perm = make_key(["read_runs"])
    answer = post(client, "/functions/sendWebhook", spec_body, no_perm)
    assert answer.status_code == 403 and set(answer.json) == {"error", "message"}
    assert post(client, "/functions/sendWebhook", spec_body).status_code == 401


def test_send_webhook_past_an_endpoints_budget_answers_429_and_enqueues_nothing(tmp_path, db_url, rx):
    import falcon.testing

    from flashfusion.core.access import apikeys
    from flashfusion.core.app import build_gateway, create_app
    from flashfusion.core.config import load_config

    config = write_config(tmp_path, db_url, WEBHOOK_CONFIG.format(per_minute=3))
    gateway = build_gateway(load_config(str(config), env={}))
    client = falcon.testing.TestClient(create_app(gateway))
    with database.connection_context():
        key = apikeys.create_key("k", ["webhook"], [], 30, known_pipelines=gateway.config.pipelines)["plaintext_key"]
    create(client, key, rx.url("/a"), pipeline_ids=["demo"])
    create(client, key, rx.url("/b"), pipeline_ids=["broken"])
    body = {"event_type": "run.started", "pipeline_id": "demo", "payload": {"run_id": "r"}}
    for _ in range(3):
        assert post(client, "/functions/sendWebhook", body, key).status_code == 200
    with database.connection_context():
        before = WebhookDelivery.select().count()
    answer = post(client, "/functions/sendWebhook", body, key)
    assert answer.status_code == 429 and set(answer.json) == {"error", "message"}
    assert 1 <= int(answer.headers["Retry-After"]) <= 20
    with database.connection_context():
        assert WebhookDelivery.select().count() == before == 3
    # another endpoint's budget is untouched
    assert post(client, "/functions/sendWebhook", {**body, "pipeline_id": "broken"}, key).status_code == 200
    database.close()


def test_management_endpoints_rotation_test_ping_log_redeliver_replay(client, gateway, key, rx, tmp_path):
    clock = Clock()
    gateway.clock = clock
    made = create(client, key, rx.url("/one"), events=["run.completed", "run.failed"], description="first")
    wid, old_secret = made["id"], made["secret"]
    listed = get(client, "/functions/listWebhooks", key).json
    assert listed["success"] is True and [w["id"] for w in listed["webhooks"]] == [wid]
    assert "secret" not in json.dumps(listed).replace("previous_secret_expires_at", "")
    assert listed["webhooks"][0]["events"] == ["run.completed", "run.failed"]

    updated = post(client, "/functions/updateWebhook", {"id": wid, "description": "renamed", "events": []}, key).json
    assert updated["webhook"]["description"] == "renamed" and len(updated["webhook"]["events"]) == 6

    ping = post(client, "/functions/testWebhook", {"id": wid}, key).json
    assert ping["success"] is True and ping["delivery_id"].startswith("dlv_")
    d = dispatcher(gateway, clock)
    d.drain()
    (first,) = rx.snapshot()
    assert first.json["event"] == "ping" and first.json["data"]["webhook_id"] == wid
    assert Webhook(old_secret).verify(first.body, first.headers)

    rotated = post(client, "/functions/rotateWebhookSecret", {"id": wid}, key).json
    new_secret = rotated["secret"]
    assert new_secret != old_secret and rotated["previous_secret_expires_at"]
    post(client, "/functions/testWebhook", {"id": wid}, key)
    d.drain()
    second = rx.snapshot()[-1]
    assert len(second.headers["webhook-signature"].split()) == 2
    docs = docs_verifier()
    for s in (old_secret, new_secret):  # both sign during the grace period
        assert Webhook(s).verify(second.body, second.headers)
        assert docs["verify_flashfusion_signature"](second.body, second.headers, s)
    assert node_verify([second], new_secret, tmp_path) == [True]
    clock.advance(24 * 3600 + 1)
    post(client, "/functions/testWebhook", {"id": wid}, key)
    d.drain()
    third = rx.snapshot()[-1]
    assert len(third.headers["webhook-signature"].split()) == 1
    assert "x-flashfusion-signature-previous" not in third.headers
    assert not docs["verify_flashfusion_signature"](third.body, third.headers, old_secret)
    assert docs["verify_flashfusion_signature"](third.body, third.headers, new_secret)

    log = get(client, "/functions/listDeliveries", key, webhook_id=wid).json
    assert log["success"] is True and len(log["deliveries"]) == 3
    entry = log["deliveries"][0]
    for field in ("event", "attempt", "status_code", "latency_ms", "error", "response_excerpt", "next_attempt_at"):
        assert field in entry
    assert entry["status"] == "succeeded" and entry["status_code"] == 200 and entry["response_excerpt"] == "ok"
    assert entry["attempts"][0]["status_code"] == 200
    page = get(client, "/functions/listDeliveries", key, webhook_id=wid, limit=2).json
    assert len(page["deliveries"]) == 2 and page["next_cursor"]
    rest = get(client, "/functions/listDeliveries", key, webhook_id=wid, limit=2, cursor=page["next_cursor"]).json
    assert len(rest["deliveries"]) == 1 and rest["next_cursor"] is None

    again = post(client, "/functions/redeliver", {"delivery_id": entry["id"]}, key).json
    assert again["success"] is True
    d.drain()
    assert rx.snapshot()[-1].headers["webhook-id"] == entry["event_id"]  # stable id: receivers de-duplicate
    since = (clock().replace(year=clock().year - 1)).isoformat().replace("+00:00", "Z")
    replay = post(client, "/functions/replayWebhooks", {"webhook_id": wid, "since": since}, key).json
    assert replay["success"] is True and replay["deliveries"] == 3
    before = len(rx.snapshot())
    d.drain()
    assert len(rx.snapshot()) == before + 3

    assert post(client, "/functions/deleteWebhook", {"id": wid}, key).json["success"] is True
    assert get(client, "/functions/listWebhooks", key).json["webhooks"] == []
    for path, body in (
        ("/functions/updateWebhook", {"id": wid}),
        ("/functions/rotateWebhookSecret", {"id": wid}),
        ("/functions/testWebhook", {"id": wid}),
        ("/functions/deleteWebhook", {"id": wid}),
        ("/functions/redeliver", {"delivery_id": entry["id"]}),
    ):
        answer = post(client, path, body, key)
        assert answer.status_code == 404 and set(answer.json) == {"error", "message"}, path
    answer = get(client, "/functions/listDeliveries", key, webhook_id=wid)
    assert answer.status_code == 404 and set(answer.json) == {"error", "message"}


def test_errors_are_in_the_spec_shape_and_urls_are_checked_at_save(client, key, rx):
    cases = [
        ({}, 400),
        ({"url": "ftp://example.com/x"}, 400),
        ({"url": rx.url(), "events": ["run.exploded"]}, 400),
        ({"url": rx.url(), "pipeline_ids": ["no-such-pipeline"]}, 404),
        ({"url": "http://user:pw@127.0.0.1/x"}, 400),
    ]
    for body, status in cases:
        answer = post(client, "/functions/createWebhook", body, key)
        assert answer.status_code == status and set(answer.json) == {"error", "message"}, body
    answer = client.simulate_post(
        "/functions/createWebhook", body="not json", headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400 and set(answer.json) == {"error", "message"}
    assert post(client, "/functions/replayWebhooks", {"webhook_id": "wh_x", "since": "x"}, key).status_code == 404


def test_an_api_keys_pipeline_scope_limits_what_it_sees_and_subscribes(client, make_key, rx):
    everything = make_key(["webhook"])
    demo_only = make_key(["webhook"], pipelines=["demo"])
    wide = create(client, everything, rx.url("/wide"))["id"]
    broken = create(client, everything, rx.url("/broken"), pipeline_ids=["broken"])["id"]
    mine = create(client, demo_only, rx.url("/mine"))
    assert mine["webhook"]["pipeline_ids"] == ["demo"]  # defaults to the key's scope
    assert [w["id"] for w in get(client, "/functions/listWebhooks", demo_only).json["webhooks"]] == [mine["id"]]
    assert {w["id"] for w in get(client, "/functions/listWebhooks", everything).json["webhooks"]} == {
        wide,
        broken,
        mine["id"],
    }
    for wid in (wide, broken):
        assert post(client, "/functions/rotateWebhookSecret", {"id": wid}, demo_only).status_code == 404
    answer = post(client, "/functions/createWebhook", {"url": rx.url(), "pipeline_ids": ["broken"]}, demo_only)
    assert answer.status_code == 404
    answer = post(client, "/functions/updateWebhook", {"id": mine["id"], "pipeline_ids": ["demo", "broken"]}, demo_only)
    assert answer.status_code == 404
    answer = post(
        client,
        "/functions/sendWebhook",
        {"event_type": "run.started", "pipeline_id": "broken", "payload": {}},
        demo_only,
    )
    assert answer.status_code == 404 and set(answer.json) == {"error", "message"}


def test_sessions_manage_webhooks_and_people_see_their_own(client, gateway, rx):
    from flashfusion.core.access.users import create_user

    with database.connection_context():
        create_user(gateway.passwords, "alice", "correct horse battery")
        create_user(gateway.passwords, "bob", "correct horse battery")

    def login(name):
        answer = client.simulate_post("/functions/login", json={"username": name, "password": "correct horse battery"})
        return {"Cookie": f"ff_session={answer.cookies['ff_session'].value}", "X-CSRF-Token": answer.json["csrf_token"]}

    alice, bob = login("alice"), login("bob")
    made = post(client, "/functions/createWebhook", {"url": rx.url()}, headers=alice)
    assert made.status_code == 200 and made.json["secret"].startswith("whsec_")
    assert len(client.simulate_get("/functions/listWebhooks", headers=alice).json["webhooks"]) == 1
    assert client.simulate_get("/functions/listWebhooks", headers=bob).json["webhooks"] == []
    assert post(client, "/functions/deleteWebhook", {"id": made.json["id"]}, headers=bob).status_code == 404


def test_no_secret_in_the_database_in_plaintext_nor_in_logs(client, gateway, key, rx, caplog):
    caplog.set_level(logging.DEBUG)
    made = create(client, key, rx.url())
    rotated = post(client, "/functions/rotateWebhookSecret", {"id": made["id"]}, key).json
    post(client, "/functions/testWebhook", {"id": made["id"]}, key)
    dispatcher(gateway).drain()
    assert len(rx.snapshot()) == 1
    with database.connection_context():
        dump = db_dump()
        stored = WebhookEndpoint.get_by_id(made["id"])
    assert made["id"] in dump  # the dump does see the endpoint row
    for secret in (made["secret"], rotated["secret"]):
        raw = base64.b64decode(secret.removeprefix("whsec_"))
        for form in (secret, secret.removeprefix("whsec_"), raw.hex(), base64.urlsafe_b64encode(raw).decode()):
            assert form not in dump
            assert form not in caplog.text
    assert stored.secret_enc.startswith("ffenc1:") and stored.previous_secret_enc.startswith("ffenc1:")
    # a ciphertext moved to another endpoint does not decrypt (bound to the id)
    from flashfusion.core.webhooks.crypto import SecretKeyError, box_for

    box = box_for(gateway.config)
    assert box.decrypt(stored.secret_enc, made["id"]) == rotated["secret"]
    with pytest.raises(SecretKeyError):
        box.decrypt(stored.secret_enc, "wh_other")


def test_the_generated_key_file_is_private_and_the_env_key_wins(tmp_path, gateway):
    from flashfusion.core.webhooks.crypto import SecretBox, box_for

    box = box_for(gateway.config)
    token = box.encrypt("whsec_x", "wh_1")
    key_file = tmp_path / "flashfusion.secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert box_for(gateway.config).decrypt(token, "wh_1") == "whsec_x"  # the same file, the same key
    env_box = SecretBox.from_env({"FLASHFUSION_SECRET_KEY": "n" * 40 + "," + key_file.read_text().strip()}, key_file)
    assert env_box.decrypt(token, "wh_1") == "whsec_x"  # old key still listed: still readable
    assert env_box.encrypt("a", "b").split(":")[1] != token.split(":")[1]  # the first key encrypts
