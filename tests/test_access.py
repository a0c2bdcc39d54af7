"""Users, sessions, the key lifecycle over the management API, permissions and limits."""

from __future__ import annotations

import threading
from datetime import timedelta

import falcon.testing
import pytest

from flashfusion.core.access import keycheck as auth
from flashfusion.core.access import ratelimit
from flashfusion.core.access.users import create_user
from flashfusion.core.app import build_gateway, create_app
from flashfusion.core.config import load_config
from flashfusion.core.storage.db import database, utcnow
from flashfusion.core.storage.models import ApiKey, AuditEvent, RateLimit, Session, User

PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self):
        return utcnow() + self.offset


@pytest.fixture
def clock(gateway):
    gateway.clock = Clock()
    return gateway.clock


@pytest.fixture
def app(gateway, clock):
    return falcon.testing.TestClient(create_app(gateway))


@pytest.fixture
def users(gateway):
    with database.connection_context():
        create_user(gateway.passwords, "alice", PASSWORD)
        create_user(gateway.passwords, "bob", PASSWORD)
        create_user(gateway.passwords, "root", PASSWORD, admin=True)


class Browser:
    """Keeps the session cookie and the CSRF token like a browser page would."""

    def __init__(self, client) -> None:
        self.client = client
        self.cookie = None
        self.csrf = None

    def login(self, username, password=PASSWORD, remote_addr=None, **headers):
        answer = self.client.simulate_post(
            "/functions/login",
            json={"username": username, "password": password},
            headers=headers,
            remote_addr=remote_addr,
        )
        if answer.status_code == 200:
            self.cookie = answer.cookies["ff_session"].value
            self.csrf = answer.json["csrf_token"]
        return answer

    def headers(self, csrf=True, **extra):
        out = {"Cookie": f"ff_session={self.cookie}"} if self.cookie else {}
        if csrf and self.csrf:
            out["X-CSRF-Token"] = self.csrf
        out.update(extra)
        return out

    def post(self, path, body=None, csrf=True, **extra):
        return self.client.simulate_post(path, json=body or {}, headers=self.headers(csrf, **extra))

    def get(self, path, **params):
        return self.client.simulate_get(path, params=params, headers=self.headers(False))


@pytest.fixture
def alice(app, users):
    browser = Browser(app)
    assert browser.login("alice").status_code == 200
    return browser


def api(app, key, path="/api/get-config", **params):
    return app.simulate_get(path, params=params or {"pipeline_id": "demo"}, headers={"X-API-Key": key})


# --- login and sessions --------------------------------------------------------------------


def test_login_sets_a_hardened_cookie_and_returns_a_csrf_token(app, users):
    answer = Browser(app).login("alice")
    assert answer.status_code == 200 and answer.json["user"]["username"] == "alice"
    cookie = answer.cookies["ff_session"]
    assert cookie.http_only and cookie.same_site.lower() == "lax" and cookie.path == "/"
    assert not cookie.secure  # the test config binds the default 127.0.0.1 over plain HTTP
    assert len(answer.json["csrf_token"]) == 64
    with database.connection_context():
        stored = Session.get()
    assert stored.token_hash != cookie.value and cookie.value not in stored.token_hash


def test_cookie_is_secure_off_localhost(gateway, users):
    from dataclasses import replace

    gateway.config = replace(gateway.config, server=replace(gateway.config.server, bind="0.0.0.0:8080"))
    answer = Browser(falcon.testing.TestClient(create_app(gateway))).login("alice")
    assert answer.cookies["ff_session"].secure


def test_every_login_gets_a_new_session(app, users):
    first, second = Browser(app), Browser(app)
    first.login("alice")
    second.login("alice")
    assert first.cookie != second.cookie and first.csrf != second.csrf


def test_unknown_user_and_wrong_password_answer_identically(app, users):
    wrong = Browser(app).login("alice", "not the password at all")
    unknown = Browser(app).login("mallory", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json == {"error": "Invalid credentials", "message": "Wrong username or password"}


def test_unknown_user_still_pays_for_a_hash(gateway, monkeypatch):
    calls = []
    real = gateway.passwords.context.verify
    monkeypatch.setattr(gateway.passwords.context, "verify", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert gateway.passwords.verify("whatever-password", None) == (False, None)
    assert calls == [1]


def test_state_changing_requests_need_the_csrf_token(alice):
    refused = alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_runs"]}, csrf=False)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json["message"]
    forged = alice.client.simulate_post(
        "/functions/createAPIKey",
        json={"name": "k", "permissions": ["read_runs"]},
        headers={**alice.headers(False), "X-CSRF-Token": "0" * 64},
    )
    assert forged.status_code == 403
    assert alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_runs"]}).status_code == 200


def test_cross_site_requests_are_refused(app, alice):
    answer = alice.post(
        "/functions/createAPIKey", {"name": "k", "permissions": ["read_runs"]}, **{"Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 403 and answer.json["error"] == "Cross-site request"
    assert Browser(app).login("alice", **{"Sec-Fetch-Site": "cross-site"}).status_code == 401


def test_sessions_expire_when_idle_and_absolutely(alice, clock):
    clock.offset = timedelta(minutes=29)
    assert alice.get("/functions/listAPIKeys").status_code == 200  # activity moves the idle deadline
    clock.offset = timedelta(minutes=58)
    assert alice.get("/functions/listAPIKeys").status_code == 200
    clock.offset = timedelta(minutes=58 + 31)
    assert alice.get("/functions/listAPIKeys").status_code == 401
    alice.login("alice")
    for minutes in range(0, 12 * 60, 25):
        clock.offset = timedelta(minutes=58 + 31 + minutes)
        alice.get("/functions/listAPIKeys")
    clock.offset = timedelta(minutes=58 + 31 + 12 * 60 + 1)
    assert alice.get("/functions/listAPIKeys").status_code == 401


def test_logout_ends_the_session(alice):
    assert alice.post("/functions/logout").status_code == 200
    assert alice.get("/functions/listAPIKeys").status_code == 401


ATTACKER = "198.51.100.9"
OWNER = "203.0.113.5"


def test_login_throttling_per_account_and_address_and_never_permanent(app, users):
    attacker = Browser(app)
    for _ in range(5):
        assert attacker.login("alice", "wrong wrong wrong", remote_addr=ATTACKER).status_code == 401
    throttled = attacker.login("alice", remote_addr=ATTACKER)  # from there even the right password waits
    wait = int(throttled.headers["Retry-After"])
    assert throttled.status_code == 429 and 0 < wait <= 15 * 60 / 5
    assert set(throttled.json) == {"error", "message"}
    assert f"try again in {wait} s" in throttled.json["message"]
    assert attacker.login("bob", remote_addr=ATTACKER).status_code == 200  # other accounts are unaffected
    assert Browser(app).login("alice", remote_addr=OWNER).status_code == 200  # the owner, elsewhere, is too
    with database.connection_context():  # time passes: the bucket drains by itself
        RateLimit.update(tat=RateLimit.tat - wait).where(RateLimit.bucket.startswith("login:user:alice:")).execute()
    assert attacker.login("alice", remote_addr=ATTACKER).status_code == 200


def test_login_throttling_per_client_address(app, users):
    browser = Browser(app)
    names = [f"nobody{i}" for i in range(20)]
    for name in names:
        assert browser.login(name, "wrong wrong wrong", remote_addr=ATTACKER).status_code == 401
    throttled = browser.login("alice", remote_addr=ATTACKER)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert f"try again in {throttled.headers['Retry-After']} s" in throttled.json["message"]
    assert browser.login("alice", remote_addr=OWNER).status_code == 200


@pytest.fixture
def behind_proxy(config_path):
    """The gateway behind a reverse proxy at 10.0.0.5 (and an inner one at 192.168.1.1)."""
    gw = build_gateway(load_config(str(config_path), env={"FLASHFUSION_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.1"}))
    with database.connection_context():
        create_user(gw.passwords, "alice", PASSWORD)
    yield falcon.testing.TestClient(create_app(gw))
    gw.providers.close()
    database.close()


def login_failures(client, forwarded_for: str, count: int, remote_addr: str = "10.0.0.5") -> None:
    for i in range(count):
        answer = Browser(client).login(
            f"nobody{i}", "wrong wrong wrong", remote_addr=remote_addr, **{"X-Forwarded-For": forwarded_for}
        )
        assert answer.status_code == 401, answer.text


def last_failure_address() -> str:
    with database.connection_context():
        event = AuditEvent.select().where(AuditEvent.action == "login.failed").order_by(AuditEvent.at.desc()).get()
    return event.client_addr


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_throttle(behind_proxy):
    login_failures(behind_proxy, "203.0.113.7", 20)
    assert last_failure_address() == "203.0.113.7"

    def alice(forwarded_for: str, remote_addr: str = "10.0.0.5"):
        return Browser(behind_proxy).login("alice", remote_addr=remote_addr, **{"X-Forwarded-For": forwarded_for})

    assert alice("203.0.113.7").status_code == 429
    # the client cannot choose its address by sending X-Forwarded-For itself: proxies append
    assert alice("198.51.100.1, 203.0.113.7").status_code == 429
    assert alice("203.0.113.7, 192.168.1.1").status_code == 429  # through both proxies
    assert alice("203.0.113.8").status_code == 200  # another client behind the same proxy
    assert alice("203.0.113.7", remote_addr="198.51.100.20").status_code == 200  # not a proxy: its own address


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app, users):
    for i in range(20):
        spoofed = Browser(app).login(
            f"nobody{i}", "wrong wrong wrong", remote_addr=ATTACKER, **{"X-Forwarded-For": f"192.0.2.{i}"}
        )
        assert spoofed.status_code == 401
    assert last_failure_address() == ATTACKER
    assert Browser(app).login("alice", remote_addr=ATTACKER, **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429


def test_long_passwords_work_without_truncation(app, gateway):
    long_a = "a" * 72 + "x" * 4000
    long_b = "a" * 72 + "y" * 4000
    with database.connection_context():
        create_user(gateway.passwords, "long", long_a)
    assert Browser(app).login("long", long_b).status_code == 401
    assert Browser(app).login("long", long_a).status_code == 200
    too_long = Browser(app).login("long", "z" * 4097)
    assert too_long.status_code == 400 and "4096" in too_long.json["message"]


def test_old_password_hashes_are_upgraded_at_login(app, gateway):
    from passlib.context import CryptContext

    weak = CryptContext(schemes=["argon2"], argon2__memory_cost=8192, argon2__rounds=1, argon2__parallelism=1)
    with database.connection_context():
        user = create_user(gateway.passwords, "legacy", PASSWORD)
        User.update(password_hash=weak.hash(PASSWORD)).where(User.id == user.id).execute()
    assert Browser(app).login("legacy").status_code == 200
    with database.connection_context():
        upgraded = User.get_by_id(user.id).password_hash
    assert "m=19456,t=2" in upgraded


def test_disabled_users_lose_sessions_and_keys(alice, gateway, app):
    key = alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_config"]}).json["plaintext_key"]
    assert api(app, key).status_code == 200
    from flashfusion.core.access.users import disable_user

    with database.connection_context():
        disable_user("alice")
    assert alice.get("/functions/listAPIKeys").status_code == 401
    assert api(app, key).status_code == 401


# --- createAPIKey and the lifecycle --------------------------------------------------------


def test_create_api_key_answers_exactly_the_spec(alice, app):
    answer = alice.post(
        "/functions/createAPIKey",
        {
            "name": "Production Deploy Key",
            "permissions": ["trigger_pipeline", "read_runs"],
            "pipeline_ids": ["demo"],
            "expires_in_days": 90,
        },
    )
    assert answer.status_code == 200
    body = answer.json
    assert set(body) == {"success", "id", "name", "plaintext_key", "key_preview"}
    assert body["success"] is True and body["name"] == "Production Deploy Key"
    assert body["plaintext_key"].startswith("ffai_") and body["key_preview"] == "..." + body["plaintext_key"][-6:]
    trig = app.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": body["plaintext_key"]}
    )
    assert trig.status_code == 200
    other = app.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "broken"}, headers={"X-API-Key": body["plaintext_key"]}
    )
    assert other.status_code == 404
    assert api(app, body["plaintext_key"]).status_code == 403


def test_create_api_key_needs_a_session_not_an_api_key(app, key):
    answer = app.simulate_post(
        "/functions/createAPIKey", json={"name": "k", "permissions": ["read_runs"]}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 401 and answer.json["error"] == "Not logged in"


@pytest.mark.parametrize(
    "body, contains",
    [
        ({"permissions": ["read_runs"]}, "'name'"),
        ({"name": "k"}, "'permissions'"),
        ({"name": "k", "permissions": ["admin"]}, "unknown permission"),
        ({"name": "k", "permissions": ["read_runs"], "pipeline_ids": ["nope"]}, "unknown pipeline 'nope'"),
        ({"name": "k", "permissions": ["read_runs"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "k", "permissions": ["read_runs"], "expires_in_days": 366}, "expires_in_days"),
        ({"name": "k", "permissions": ["read_runs"], "expires_in_days": "30"}, "expires_in_days"),
    ],
)
def test_create_api_key_validation(alice, body, contains):
    answer = alice.post("/functions/createAPIKey", body)
    assert answer.status_code == 400 and contains in answer.json["message"]


def test_list_shows_own_keys_without_secrets_and_admins_see_all(app, alice):
    made = alice.post("/functions/createAPIKey", {"name": "mine", "permissions": ["read_runs"]}).json
    bob = Browser(app)
    bob.login("bob")
    bob.post("/functions/createAPIKey", {"name": "bobs", "permissions": ["read_runs"]})
    listed = alice.get("/functions/listAPIKeys").json["keys"]
    assert [k["name"] for k in listed] == ["mine"]
    entry = listed[0]
    assert set(entry) >= {
        "id",
        "name",
        "key_preview",
        "permissions",
        "pipeline_ids",
        "created_at",
        "expires_at",
        "last_used",
        "usage_count",
        "revoked",
    }
    assert made["plaintext_key"] not in str(listed) and "hash" not in str(listed)
    root = Browser(app)
    root.login("root")
    assert sorted(k["name"] for k in root.get("/functions/listAPIKeys").json["keys"]) == ["bobs", "mine"]


def test_revoke_is_immediate_and_only_for_the_owner(app, alice):
    made = alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_config"]}).json
    bob = Browser(app)
    bob.login("bob")
    assert bob.post("/functions/revokeAPIKey", {"id": made["id"]}).status_code == 404
    assert api(app, made["plaintext_key"]).status_code == 200
    assert alice.post("/functions/revokeAPIKey", {"id": made["id"]}).json["key"]["revoked"] is True
    assert api(app, made["plaintext_key"]).status_code == 401


def test_rotate_keeps_the_old_secret_for_the_grace_period(app, alice, clock):
    made = alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_config"]}).json
    rotated = alice.post("/functions/rotateAPIKey", {"id": made["id"]}).json
    assert rotated["id"] == made["id"] and rotated["plaintext_key"] != made["plaintext_key"]
    assert api(app, rotated["plaintext_key"]).status_code == 200
    assert api(app, made["plaintext_key"]).status_code == 200
    clock.offset = timedelta(hours=24, seconds=1)
    old = api(app, made["plaintext_key"])
    assert old.status_code == 401 and old.json["error"] == "Invalid API key"
    assert api(app, rotated["plaintext_key"]).status_code == 200


def test_expired_keys_get_the_same_401(app, alice, clock):
    made = alice.post(
        "/functions/createAPIKey", {"name": "k", "permissions": ["read_config"], "expires_in_days": 1}
    ).json
    assert api(app, made["plaintext_key"]).status_code == 200
    clock.offset = timedelta(days=1, seconds=1)
    expired = api(app, made["plaintext_key"])
    from flashfusion.core.access import keyformat as keys

    unknown = api(app, keys.generate().plaintext)
    assert expired.status_code == unknown.status_code == 401 and expired.json == unknown.json


def test_usage_is_counted_and_prune_disables_unused_keys(app, alice, clock, gateway):
    used = alice.post("/functions/createAPIKey", {"name": "used", "permissions": ["read_config"]}).json
    alice.post("/functions/createAPIKey", {"name": "idle", "permissions": ["read_config"]}).json
    for _ in range(3):
        api(app, used["plaintext_key"])
    listed = {k["name"]: k for k in alice.get("/functions/listAPIKeys").json["keys"]}
    assert listed["used"]["usage_count"] == 3 and listed["used"]["last_used"] is not None
    assert listed["idle"]["usage_count"] == 0 and listed["idle"]["last_used"] is None
    from flashfusion.core.access.apikeys import prune_keys

    with database.connection_context():
        pruned = prune_keys(30, now=utcnow() + timedelta(days=31))
        assert sorted(k.name for k in pruned) == ["idle", "used"]
        assert prune_keys(30) == []


# --- rate limits -------------------------------------------------------------------------


def test_every_api_response_carries_rate_limit_headers(app, key):
    answer = api(app, key)
    assert answer.headers["X-RateLimit-Limit"] == "1000"
    assert answer.headers["X-RateLimit-Remaining"] == "999"
    assert int(answer.headers["X-RateLimit-Reset"]) > int(utcnow().timestamp())
    assert answer.headers["RateLimit-Policy"] == '"default";q=1000;w=3600'
    assert answer.headers["RateLimit"].startswith('"default";r=999;t=')
    missing = app.simulate_get("/api/get-status", params={"run_id": "nope"}, headers={"X-API-Key": key})
    assert missing.status_code == 404 and missing.headers["X-RateLimit-Remaining"] == "998"


def test_exhausted_key_gets_429_with_retry_after(app, key):
    with database.connection_context():
        far = ratelimit.hit("probe", 1, 1.0).now + 3600
        ApiKey.update(rl_tat=far).execute()
    answer = api(app, key)
    assert answer.status_code == 429 and set(answer.json) == {"error", "message"}
    assert int(answer.headers["Retry-After"]) >= 1 and answer.headers["X-RateLimit-Remaining"] == "0"


def test_concurrent_requests_of_one_process_are_decided_exactly(gateway, key):
    """Threads of one process take cells from its slice or wait for its next lease
    (keyleases.py): each gets its own decision and remaining count, and after a flush the
    count is exact."""
    limit, callers = 10, 24
    start = threading.Barrier(callers)
    decisions: list = []

    def call() -> None:
        with database.connection_context():
            start.wait()
            decisions.append(auth.authenticate(key, limit=limit, now=utcnow())[1])

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(decisions) == callers
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == limit  # the bucket frees one request only every 360 s
    assert sorted(d.remaining for d in allowed) == list(range(limit))
    assert all(d.remaining == 0 and d.retry_after >= 1 for d in decisions if not d.allowed)
    with database.connection_context():
        auth.flush()
        assert ApiKey.get().usage_count == limit


def test_malformed_and_unknown_keys_are_limited_per_client_address(app):
    with database.connection_context():
        far = ratelimit.hit("probe", 1, 1.0).now + 3600
        RateLimit.delete().where(RateLimit.bucket == "addr:127.0.0.1").execute()
        RateLimit.insert(bucket="addr:127.0.0.1", tat=far).execute()
    answer = app.simulate_get(
        "/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": "ffai_nonsense"}, remote_addr="127.0.0.1"
    )
    assert answer.status_code == 429 and "client address" in answer.json["message"]
    elsewhere = app.simulate_get(
        "/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": "ffai_nonsense"}, remote_addr="10.1.2.3"
    )
    assert elsewhere.status_code == 401


# --- audit --------------------------------------------------------------------------------


def test_audit_log_records_the_lifecycle_and_repeated_failures(app, alice):
    made = alice.post("/functions/createAPIKey", {"name": "k", "permissions": ["read_runs"]}).json
    alice.post("/functions/rotateAPIKey", {"id": made["id"]})
    alice.post("/functions/revokeAPIKey", {"id": made["id"]})
    for _ in range(5):
        app.simulate_get("/api/get-status", params={"run_id": "x"}, headers={"X-API-Key": "ffai_bogus"})
    assert alice.get("/functions/listAuditEvents").status_code == 403
    root = Browser(app)
    root.login("root")
    events = root.get("/functions/listAuditEvents").json["events"]
    actions = [e["action"] for e in events]
    assert {"key.created", "key.rotated", "key.revoked"} <= set(actions)
    assert actions.count("auth.failed") == 1  # five failures in a minute: one entry
    created = next(e for e in events if e["action"] == "key.created")
    assert created["actor"] == "alice" and created["client_addr"] and created["key_preview"] == made["key_preview"]
    assert created["at"]
