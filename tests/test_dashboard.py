"""The dashboard without a browser (falcon's TestClient): security headers and CSP on every
page, CSRF on every form, the login redirect, and who sees what."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from flashfusion.core.access import sessions, users
from flashfusion.core.dashboard.pages import CSP
from flashfusion.core.storage.db import database, to_db_time
from flashfusion.core.storage.models import ApiKey, Run, Session, WebhookDelivery

PASSWORD = "correct horse battery staple"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WEBHOOKS = """
[webhooks]
allow_http = true
allow_private_networks = true
"""


EXTRA_CONFIG = WEBHOOKS  # added to the test configuration by conftest's config_path


class Browser:
    """A logged-in person: the session cookie and the page's CSRF token."""

    def __init__(self, client, username: str, password: str = PASSWORD) -> None:
        self.client = client
        page = client.simulate_get("/login")
        assert page.status_code == 200
        nonce = page.cookies["ff_login"].value
        assert f'name="login_token" value="{nonce}"' in page.text
        answer = client.simulate_post(
            "/login",
            body=urlencode({"login_token": nonce, "username": username, "password": password}),
            headers=FORM,
            cookies={"ff_login": nonce},
        )
        assert answer.status_code == 303, answer.text
        self.token = answer.cookies["ff_session"].value
        self.csrf = sessions.csrf_for(self.token)

    def get(self, path, **params):
        return self.client.simulate_get(path, params=params, cookies={"ff_session": self.token})

    def post(self, path, fields=None, csrf=True, headers=None, **kw):
        fields = dict(fields or {})
        if csrf:
            fields.setdefault("csrf_token", self.csrf)
        return self.client.simulate_post(
            path,
            body=urlencode(fields, doseq=True),
            headers={**FORM, **(headers or {})},
            cookies={"ff_session": self.token},
            **kw,
        )


def make_user(gateway, name: str, admin: bool = False):
    with database.connection_context():
        return users.create_user(gateway.passwords, name, PASSWORD, admin=admin)


def make_run(pipeline_id: str, status: str = "success", steps=None, seconds: int = 3):
    start = datetime.now(UTC) - timedelta(seconds=seconds + 5)
    end = start + timedelta(seconds=seconds)
    with database.connection_context():
        return Run.create(
            id=f"run_{pipeline_id}_{status}_{seconds}",
            pipeline_id=pipeline_id,
            provider="local",
            ref="main",
            inputs={},
            status=status,
            phase="completed" if status != "running" else "in_progress",
            conclusion=None if status == "running" else ("success" if status == "success" else "failure"),
            steps=steps or [],
            state={},
            created_at=to_db_time(start),
            updated_at=to_db_time(end),
            started_at=to_db_time(start),
            finished_at=None if status == "running" else to_db_time(end),
        )


@pytest.fixture
def admin(client, gateway):
    make_user(gateway, "root", admin=True)
    return Browser(client, "root")


@pytest.fixture
def bob(client, gateway):
    make_user(gateway, "bob")
    return Browser(client, "bob")


PAGES = [
    "/dashboard/pipelines",
    "/dashboard/runs",
    "/dashboard/keys",
    "/dashboard/webhooks",
    "/dashboard/audit",
    "/dashboard/account",
    "/dashboard/users",
]


def assert_page_headers(response):
    h = response.headers
    assert h["content-security-policy"] == CSP
    for part in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert part in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"


def assert_no_inline_code(html: str):
    """CSP forbids inline script and style: the pages must not need them."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_every_page_sends_security_headers_csp_and_no_inline_code(admin, client):
    run = make_run("demo", steps=[{"name": "lint", "status": "success"}])
    created = admin.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["run.completed"]})
    hook_id = re.search(r"/dashboard/webhooks/(wh_[A-Za-z0-9]+)", created.text).group(1)
    for path in PAGES + [f"/dashboard/runs/{run.id}", f"/dashboard/webhooks/{hook_id}"]:
        answer = admin.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        assert_page_headers(answer)
        assert_no_inline_code(answer.text)
        # every form that changes something carries the CSRF token
        for form in re.findall(r'<form method="post".*?</form>', answer.text, re.S):
            assert f'name="csrf_token" value="{admin.csrf}"' in form, (path, form[:80])
    for path in ("/login", "/static/dashboard/dashboard.css", "/static/dashboard/dashboard.js", "/dashboard/nope"):
        answer = client.simulate_get(path)
        assert_page_headers(answer)
    assert client.simulate_get("/static/dashboard/../app.py").status_code == 404
    logged_out = client.simulate_get("/dashboard/keys")
    assert_page_headers(logged_out)


def test_live_pages_answer_their_changing_part_alone_for_the_poller(admin):
    """dashboard.js replaces a ``.live`` block with what its ``data-live`` address answers: that
    answer must be the block alone (no page around it), and the full page must hold the same block."""
    run = make_run("demo", steps=[{"name": "lint", "status": "success"}])
    created = admin.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["run.completed"]})
    hook_id = re.search(r"/dashboard/webhooks/(wh_[A-Za-z0-9]+)", created.text).group(1)
    for path, block in (
        ("/dashboard/runs", "runs"),
        (f"/dashboard/runs/{run.id}", "run"),
        (f"/dashboard/webhooks/{hook_id}", "deliveries"),
    ):
        page = admin.get(path)
        live = re.search(rf'<div id="{block}" class="live" data-live="([^"]+)"', page.text)
        assert page.status_code == 200 and live, path
        fragment = admin.get(live.group(1).replace("&amp;", "&").split("?")[0], fragment="1")
        assert fragment.status_code == 200, path
        assert fragment.text.lstrip().startswith(f'<div id="{block}" class="live"'), (path, fragment.text[:80])
        assert "<html" not in fragment.text and "<nav" not in fragment.text, path
    assert run.id in admin.get(f"/dashboard/runs/{run.id}", fragment="1").text


def test_pages_send_people_who_are_not_logged_in_to_the_login_page(client):
    for path in PAGES:
        answer = client.simulate_get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?" + urlencode({"next": path})
    answer = client.simulate_post("/dashboard/keys", body="name=x", headers=FORM)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.simulate_get("/").headers["location"] == "/dashboard/pipelines"
    # the API keeps answering JSON
    api = client.simulate_get("/functions/listAPIKeys")
    assert api.status_code == 401 and api.json["error"] == "Not logged in"


def test_forms_need_the_sessions_csrf_token(admin, client, gateway):
    fields = {"name": "ci", "permissions": ["read_runs"], "expires_in_days": "30"}

    def count():
        with database.connection_context():
            return ApiKey.select().count()

    assert admin.post("/dashboard/keys", fields, csrf=False).status_code == 403
    assert admin.post("/dashboard/keys", {**fields, "csrf_token": "0" * 64}, csrf=False).status_code == 403
    other = Browser(client, "root")  # a second session of the same person has its own token
    assert admin.post("/dashboard/keys", {**fields, "csrf_token": other.csrf}, csrf=False).status_code == 403
    assert admin.post("/dashboard/keys", fields, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert count() == 0
    # the header works too, as for the management API
    assert admin.post("/dashboard/keys", fields, csrf=False, headers={"X-CSRF-Token": admin.csrf}).status_code == 200
    created = admin.post("/dashboard/keys", fields)
    assert created.status_code == 200 and count() == 2
    plaintext = re.search(r'<code id="new-key" class="plaintext">(ffai_\w+)</code>', created.text).group(1)
    assert "only shown once" in created.text
    assert plaintext not in admin.get("/dashboard/keys").text
    # a form field never stands in for the header on the JSON API
    api = client.simulate_post(
        "/functions/createAPIKey",
        json={"name": "x", "permissions": ["read_runs"], "csrf_token": admin.csrf},
        cookies={"ff_session": admin.token},
    )
    assert api.status_code == 403
    for path in ("/logout", "/dashboard/account", "/dashboard/users", "/dashboard/pipelines/demo/trigger"):
        assert admin.post(path, {"x": "1"}, csrf=False).status_code == 403, path
    assert admin.get("/dashboard/keys").status_code == 200  # still logged in


def test_login_form(client, gateway):
    make_user(gateway, "carol")
    page = client.simulate_get("/login")
    nonce = page.cookies["ff_login"].value
    cookie = page.cookies["ff_login"]
    assert cookie.http_only and cookie.same_site.lower() == "strict"

    def attempt(password, token=nonce, next_="", cookies=None):
        return client.simulate_post(
            "/login",
            body=urlencode({"login_token": token, "username": "carol", "password": password, "next": next_}),
            headers=FORM,
            cookies={"ff_login": nonce} if cookies is None else cookies,
        )

    wrong = attempt("not the password at all")
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert "ff_session" not in wrong.cookies
    assert attempt(PASSWORD, token="forged").status_code == 403
    assert attempt(PASSWORD, cookies={}).status_code == 403
    ok = attempt(PASSWORD, next_="//evil.example/x")
    assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"
    session = ok.cookies["ff_session"]
    assert session.http_only and session.same_site.lower() == "lax"
    back = attempt(PASSWORD, next_="/dashboard/runs?status=failed")
    assert back.headers["location"] == "/dashboard/runs?status=failed"
    out = client.simulate_post(
        "/logout",
        body=urlencode({"csrf_token": sessions.csrf_for(session.value)}),
        headers=FORM,
        cookies={"ff_session": session.value},
    )
    assert out.status_code == 303 and out.headers["location"] == "/login?done=logout"
    assert client.simulate_get("/dashboard/keys", cookies={"ff_session": session.value}).status_code == 303


def test_people_see_what_their_own_keys_allow(admin, bob, client, gateway):
    demo = make_run("demo")
    broken = make_run("broken", status="failed")
    hook = admin.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/admin-hook"})
    hook_id = re.search(r"/dashboard/webhooks/(wh_[A-Za-z0-9]+)", hook.text).group(1)
    admin_key = admin.post("/dashboard/keys", {"name": "admin key", "permissions": ["read_runs"]})
    admin_key_id = re.search(r'data-key="(key_[A-Za-z0-9]+)"', admin_key.text).group(1)

    # no key: nothing to see
    assert "You see no pipeline yet" in bob.get("/dashboard/pipelines").text
    assert demo.id not in bob.get("/dashboard/runs").text
    assert bob.get(f"/dashboard/runs/{demo.id}").status_code == 404
    assert bob.post("/dashboard/pipelines/demo/trigger", {"branch": "main"}).status_code == 404
    # read_runs on demo only
    assert (
        bob.post(
            "/dashboard/keys", {"name": "bob reads demo", "permissions": ["read_runs"], "pipelines": ["demo"]}
        ).status_code
        == 200
    )
    runs_page = bob.get("/dashboard/runs").text
    assert demo.id in runs_page and broken.id not in runs_page
    assert bob.get(f"/dashboard/runs/{demo.id}").status_code == 200
    assert bob.get(f"/dashboard/runs/{broken.id}").status_code == 404
    assert bob.get("/dashboard/runs", pipeline="broken").status_code == 404
    pipelines = bob.get("/dashboard/pipelines").text
    assert 'id="pipeline-demo"' in pipelines and 'id="pipeline-broken"' not in pipelines
    assert "Trigger a run" not in pipelines and "local/demo" not in pipelines  # no trigger, no read_config
    assert bob.post("/dashboard/pipelines/demo/trigger", {}).status_code == 404
    assert bob.post(f"/dashboard/runs/{demo.id}/cancel", {}).status_code == 403
    # keys and webhooks: his own only
    keys_page = bob.get("/dashboard/keys").text
    assert "bob reads demo" in keys_page and "admin key" not in keys_page
    assert bob.post(f"/dashboard/keys/{admin_key_id}/revoke").status_code == 404
    assert bob.post(f"/dashboard/keys/{admin_key_id}/rotate").status_code == 404
    assert "admin-hook" not in bob.get("/dashboard/webhooks").text
    assert bob.get(f"/dashboard/webhooks/{hook_id}").status_code == 404
    for action in ("test", "rotate", "disable", "delete"):
        assert bob.post(f"/dashboard/webhooks/{hook_id}/{action}").status_code == 404
    # he may subscribe only to pipelines he sees
    assert bob.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/b", "pipelines": ["broken"]}).status_code == 404
    mine = bob.post("/dashboard/webhooks", {"url": "http://127.0.0.1:9/bob-hook"})
    assert mine.status_code == 200
    assert "bob-hook" in admin.get("/dashboard/webhooks").text  # administrators see all
    # administrators only
    assert bob.get("/dashboard/audit").status_code == 403
    assert bob.get("/dashboard/users").status_code == 403
    assert (
        bob.post(
            "/dashboard/users", {"username": "mallory", "password": PASSWORD, "password_again": PASSWORD}
        ).status_code
        == 403
    )
    assert 'href="/dashboard/audit"' not in bob.get("/dashboard/keys").text
    admin_keys = admin.get("/dashboard/keys").text
    assert "bob reads demo" in admin_keys and "admin key" in admin_keys
    # a revoked key no longer grants anything
    with database.connection_context():
        ApiKey.update(revoked_at=to_db_time(datetime.now(UTC))).where(ApiKey.name == "bob reads demo").execute()
    assert bob.get(f"/dashboard/runs/{demo.id}").status_code == 404


def test_trigger_cancel_and_the_run_page(admin, gateway):
    answer = admin.post("/dashboard/pipelines/demo/trigger", {"branch": "feature/x", "inputs": "GREETING=hi there"})
    assert answer.status_code == 303
    run_id = answer.headers["location"].rsplit("/", 1)[1]
    with database.connection_context():
        run = Run.get_by_id(run_id)
    assert (run.pipeline_id, run.ref, run.inputs, run.status) == (
        "demo",
        "feature/x",
        {"GREETING": "hi there"},
        "running",
    )
    page = admin.get(f"/dashboard/runs/{run_id}").text
    assert 'data-active="1"' in page and "Cancel run" in page
    assert admin.post("/dashboard/pipelines/demo/trigger", {"branch": "../etc"}).status_code == 400
    assert admin.post("/dashboard/pipelines/demo/trigger", {"inputs": "not an input"}).status_code == 400
    assert admin.post(f"/dashboard/runs/{run_id}/cancel").status_code == 303
    with database.connection_context():
        assert Run.get_by_id(run_id).cancel_requested
    # the timeline: bars on one axis, coloured by status
    steps = [
        {
            "name": "lint",
            "status": "success",
            "started_at": "2025-01-01T10:00:00Z",
            "completed_at": "2025-01-01T10:00:02Z",
            "duration_seconds": 2.0,
        },
        {
            "name": "test",
            "status": "failed",
            "started_at": "2025-01-01T10:00:02Z",
            "completed_at": "2025-01-01T10:00:04Z",
            "duration_seconds": 2.0,
        },
        {"name": "deploy", "status": "skipped", "started_at": None, "completed_at": None},
    ]
    with database.connection_context():
        Run.update(
            steps=steps,
            phase="completed",
            status="failed",
            started_at=datetime(2025, 1, 1, 10, 0, 0),
            finished_at=datetime(2025, 1, 1, 10, 0, 4),
        ).where(Run.id == run_id).execute()
    page = admin.get(f"/dashboard/runs/{run_id}").text
    bars = re.findall(r'<rect class="bar st-(\w+)" x="([\d.]+)" y="2" width="([\d.]+)"', page)
    assert bars == [("success", "0.0", "500.0"), ("failed", "500.0", "500.0")]
    assert 'data-active="0"' in page and "Cancel run" not in page
    again = re.search(r'name="inputs" value="([^"]*)"', page).group(1)
    rerun = admin.post(
        "/dashboard/pipelines/demo/trigger", {"branch": "feature/x", "inputs": again.replace("&#10;", "\n")}
    )
    with database.connection_context():
        copy = Run.get_by_id(rerun.headers["location"].rsplit("/", 1)[1])
    assert copy.id != run_id and (copy.ref, copy.inputs) == ("feature/x", {"GREETING": "hi there"})
    stats = admin.get("/dashboard/pipelines").text
    assert re.search(r'<rect class="bar st-failed"', stats)


def test_keys_webhooks_and_users_pages(admin, client, gateway):
    created = admin.post(
        "/dashboard/keys",
        {
            "name": "deploy",
            "permissions": ["trigger_pipeline", "read_runs"],
            "pipelines": ["demo"],
            "expires_in_days": "7",
        },
    )
    plaintext = re.search(r"(ffai_\w+)</code>", created.text).group(1)
    key_id = re.search(r'data-key="(key_[A-Za-z0-9]+)"', created.text).group(1)
    with database.connection_context():
        row = ApiKey.get_by_id(key_id)
    assert row.permissions == ["read_runs", "trigger_pipeline"] and row.pipeline_ids == ["demo"]
    assert client.simulate_get("/api/runs", headers={"X-API-Key": plaintext}).status_code == 200
    bad = admin.post("/dashboard/keys", {"name": "x", "permissions": ["read_runs"], "expires_in_days": "999"})
    assert bad.status_code == 400 and "expires_in_days" in bad.text
    rotated = admin.post(f"/dashboard/keys/{key_id}/rotate")
    new_plaintext = re.search(r"(ffai_\w+)</code>", rotated.text).group(1)
    assert new_plaintext != plaintext and "old secret keeps working" in rotated.text
    assert admin.post(f"/dashboard/keys/{key_id}/revoke").headers["location"] == "/dashboard/keys?done=revoked"
    assert client.simulate_get("/api/runs", headers={"X-API-Key": new_plaintext}).status_code == 401

    hook = admin.post(
        "/dashboard/webhooks",
        {"url": "http://127.0.0.1:9/h", "events": ["run.completed", "run.failed"], "pipelines": ["demo"]},
    )
    assert hook.status_code == 200 and "only shown once" in hook.text
    hook_id = re.search(r"/dashboard/webhooks/(wh_[A-Za-z0-9]+)", hook.text).group(1)
    assert admin.post("/dashboard/webhooks", {"url": "ftp://x"}).status_code == 400
    assert admin.post(f"/dashboard/webhooks/{hook_id}/test").status_code == 303
    log = admin.get(f"/dashboard/webhooks/{hook_id}").text
    assert 'data-event="ping"' in log and 'data-active="1"' in log
    with database.connection_context():
        delivery = WebhookDelivery.get(WebhookDelivery.endpoint_id == hook_id)
        WebhookDelivery.update(status="failed", last_status_code=500, last_latency_ms=12, attempts=1).where(
            WebhookDelivery.id == delivery.id
        ).execute()
    log = admin.get(f"/dashboard/webhooks/{hook_id}").text
    assert "12 ms" in log and ">500" in log and "Redeliver" in log
    assert admin.post(f"/dashboard/webhooks/{hook_id}/redeliver", {"delivery_id": delivery.id}).status_code == 303
    with database.connection_context():
        assert WebhookDelivery.select().where(WebhookDelivery.endpoint_id == hook_id).count() == 2
    rotated = admin.post(f"/dashboard/webhooks/{hook_id}/rotate")
    assert rotated.status_code == 200 and "New signing secret" in rotated.text
    assert admin.post(f"/dashboard/webhooks/{hook_id}/disable").status_code == 303
    assert "disabled" in admin.get(f"/dashboard/webhooks/{hook_id}").text

    made = admin.post("/dashboard/users", {"username": "dave", "password": PASSWORD, "password_again": PASSWORD})
    assert made.status_code == 303
    assert (
        admin.post("/dashboard/users", {"username": "eve", "password": "short", "password_again": "short"}).status_code
        == 400
    )
    dave = Browser(client, "dave")
    assert admin.post("/dashboard/users/dave/disable").status_code == 303
    assert dave.get("/dashboard/keys").status_code == 303
    assert admin.post("/dashboard/users/root/disable").status_code == 400
    audit_page = admin.get("/dashboard/audit").text
    for action in ("key.created", "key.rotated", "key.revoked", "webhook.created", "user.created", "user.disabled"):
        assert action in audit_page


def test_change_own_password_ends_every_session(admin, client, gateway):
    other = Browser(client, "root")
    wrong = admin.post(
        "/dashboard/account",
        {"current_password": "nope nope nope", "new_password": "x" * 12, "new_password_again": "x" * 12},
    )
    assert wrong.status_code == 401 and "Wrong current password" in wrong.text
    differ = admin.post(
        "/dashboard/account", {"current_password": PASSWORD, "new_password": "a" * 12, "new_password_again": "b" * 12}
    )
    assert differ.status_code == 400
    new = "a brand new passphrase"
    done = admin.post(
        "/dashboard/account", {"current_password": PASSWORD, "new_password": new, "new_password_again": new}
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?done=password"
    assert other.get("/dashboard/keys").status_code == 303
    with database.connection_context():
        assert Session.select().count() == 0
    Browser(client, "root", new)


def test_bad_forms_are_refused_not_crashed(admin):
    """NUL cannot be stored by PostgreSQL and too many fields is a denial of service: both
    answer 400 on every backend instead of a 500."""
    with database.connection_context():
        before = ApiKey.select().count()
    nul = admin.post("/dashboard/keys", {"name": "ci\x00", "permissions": ["read_runs"], "expires_in_days": "30"})
    assert nul.status_code == 400 and "NUL" in nul.text
    crowded = admin.post("/dashboard/keys", {f"f{i}": "x" for i in range(600)})
    assert crowded.status_code == 400 and "too many fields" in crowded.text
    with database.connection_context():
        assert ApiKey.select().count() == before


def test_run_page_shows_quality_gates_outputs_and_artifacts(admin):
    run = make_run("demo", status="failed")
    gates = [
        {
            "name": "outputs.coverage",
            "expected": ">= 80",
            "actual": "70",
            "passed": False,
            "reason": "coverage = 70, not >= 80",
        },
        {"name": "required_steps.build", "expected": "success", "actual": "success", "passed": True},
    ]
    with database.connection_context():
        Run.update(
            quality_gates=gates,
            outputs={"coverage": "70"},
            conclusion="quality_gate_failed",
            artifacts=[{"name": "report.txt", "size": 12, "expires_at": None, "locator": "report.txt"}],
        ).where(Run.id == run.id).execute()
    html = admin.get(f"/dashboard/runs/{run.id}").text
    assert 'data-gate="outputs.coverage" data-passed="0"' in html and "coverage = 70, not &gt;= 80" in html
    assert 'data-gate="required_steps.build" data-passed="1"' in html
    assert "<code>coverage</code>" in html and "<code>report.txt</code>" in html
    assert "locator" not in html
