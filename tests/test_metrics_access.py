"""Who ``GET /metrics`` answers: loopback clients without a token, Bearer holders with one."""

from __future__ import annotations

import falcon.testing
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flashfusion.core.app import build_gateway, create_app
from flashfusion.core.config import load_config

TOKEN = "s3cret-metrics-token"


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_without_a_token_only_direct_loopback_clients_are_answered(client):
    local = client.simulate_get("/metrics", remote_addr="127.0.0.1")
    assert local.status_code == 200 and local.headers["content-type"].startswith("text/plain")
    assert {"flashfusion_http_requests", "flashfusion_runs", "flashfusion_queue_depth"} <= families(local.text)
    assert client.simulate_get("/metrics", remote_addr="::1").status_code == 200
    remote = client.simulate_get("/metrics", remote_addr="192.0.2.7")
    assert remote.status_code == 403 and "token_env" in remote.json["message"]
    proxied = client.simulate_get("/metrics", remote_addr="127.0.0.1", headers={"X-Forwarded-For": "192.0.2.7"})
    assert proxied.status_code == 403


@pytest.fixture
def token_client(config_path):
    config_path.write_text(config_path.read_text() + '\n[metrics]\ntoken_env = "FF_METRICS"\n')
    gateway = build_gateway(load_config(str(config_path), env={"FF_METRICS": TOKEN}))
    yield falcon.testing.TestClient(create_app(gateway))
    gateway.providers.close()


def test_with_a_token_any_client_with_the_bearer_token_is_answered(token_client):
    for auth in (None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
        headers = {"Authorization": auth} if auth else {}
        answer = token_client.simulate_get("/metrics", remote_addr="127.0.0.1", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert set(answer.json) == {"error", "message"}
    good = token_client.simulate_get("/metrics", remote_addr="192.0.2.7", headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200 and "flashfusion_runs" in families(good.text)


def test_requests_are_counted_by_route_template(client, key):
    def counted() -> dict:
        text = client.simulate_get("/metrics").text
        return {
            tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "flashfusion_http_requests_total"
        }

    not_found = (("method", "GET"), ("route", "/api/get-status"), ("status", "404"))
    before = counted().get(not_found, 0)
    for run_id in ("run_a", "run_b"):
        client.simulate_get("/api/get-status", params={"run_id": run_id}, headers={"X-API-Key": key})
    after = counted()
    assert after[not_found] - before == 2
    assert not any("run_a" in label for labels in after for _, label in labels)
