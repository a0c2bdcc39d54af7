"""The dashboard end to end in headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real ``flashfusion serve``: log in, create a key and copy it, use the key over
HTTP, create a webhook, trigger the demo pipeline from the page, watch the run page reach
success with its timeline, see the delivery in the log, revoke the key and see it refused.

Set ``FLASHFUSION_SCREENSHOTS=DIR`` to also save a screenshot of every page at desktop
(1280 px) and phone (390 px) width (``docs/screenshots`` is made that way).

The run page's own test (who started the run, the commit, the open failed log, a masked
input) always keeps its screenshots: in ``FLASHFUSION_SCREENSHOTS`` when set, else in
``tests/artifacts/screenshots`` (ignored by git; CI may upload it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import write_config
from test_dashboard_runpage import SHOP_PIPELINE
from testkit.db import database_url, fresh_database
from testkit.receiver import Receiver
from testkit.server import cli, free_port, start_server, wait_for

from flashfusion.core.storage.db import database, to_db_time, utcnow
from flashfusion.core.storage.models import Run

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"
WEBHOOKS = """
[webhooks]
allow_http = true
allow_private_networks = true
tick_seconds = 0.05
"""

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - .ci/run installs it with the test extra
    sync_playwright = None

if sync_playwright is None or not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser tests need the playwright package and {CHROMIUM} (.ci/run installs both)")
    pytest.skip(f"needs the playwright package and {CHROMIUM}", allow_module_level=True)


@pytest.fixture
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Shots:
    """Screenshots at two widths when FLASHFUSION_SCREENSHOTS names a folder."""

    def __init__(self, browser, base_url: str, storage_state) -> None:
        self.folder = os.environ.get("FLASHFUSION_SCREENSHOTS")
        self.phone = None
        if self.folder:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            self.phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=1,
                is_mobile=True,
                has_touch=True,
                base_url=base_url,
                storage_state=storage_state,
            )

    def take(self, page, name: str) -> None:
        if not self.folder:
            return
        page.screenshot(path=f"{self.folder}/{name}-desktop.png", full_page=True)
        phone = self.phone.new_page()
        phone.goto(page.url)
        phone.screenshot(path=f"{self.folder}/{name}-phone.png", full_page=True)
        phone.close()


def test_dashboard_end_to_end_in_chromium(tmp_path, db_url, browser):
    started = time.monotonic()
    config = write_config(tmp_path, db_url, extra=WEBHOOKS)
    server = start_server(config, tmp_path)
    receiver = Receiver().start()
    try:
        cli("users", "create", "alice", "--admin", "--password-stdin", config=config, input=PASSWORD + "\n")
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

        # log in (a page behind the login sends us there first)
        page.goto("/dashboard/keys")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fdashboard%2Fkeys$"))
        login_shot = os.environ.get("FLASHFUSION_SCREENSHOTS")
        if login_shot:
            page.screenshot(path=f"{login_shot}/login-desktop.png")
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, base_url=server.url)
            phone_page = phone.new_page()
            phone_page.goto("/login")
            phone_page.screenshot(path=f"{login_shot}/login-phone.png")
            phone.close()
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        expect(page).to_have_url(re.compile(r"/dashboard/keys$"))
        shots = Shots(browser, server.url, context.storage_state())

        # API -> Create API Key, then copy it
        page.fill("input[name=name]", "Production Deploy Key")
        page.check("input[name=permissions][value=read_config]")
        page.fill("input[name=expires_in_days]", "30")
        page.click("button:has-text('Create API key')")
        secret = page.locator("#new-key")
        expect(secret).to_have_text(re.compile(r"^ffai_[A-Za-z0-9]{36}$"))
        expect(page.locator(".secret")).to_contain_text("only shown once")
        plaintext = secret.inner_text().strip()
        page.click("button[data-copy=new-key]")
        expect(page.locator("[data-copied-for=new-key]")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == plaintext
        shots.take(page, "keys-created")

        # the copied key works with curl-equivalent requests
        with httpx.Client(base_url=server.url, headers={"X-API-Key": plaintext}, timeout=30) as api:
            config_answer = api.get("/api/get-config", params={"pipeline_id": "demo"})
            assert config_answer.status_code == 200 and config_answer.json()["config"]["id"] == "demo"
            assert api.get("/api/runs").status_code == 200
            assert api.post("/api/trigger-pipeline", json={"pipeline_id": "demo"}).status_code == 200
            extra_runs = []
            if shots.folder:  # some history for the pictures: failures too
                for pipeline_id in ("broken", "demo", "broken", "demo"):
                    extra_runs.append(
                        api.post("/api/trigger-pipeline", json={"pipeline_id": pipeline_id, "branch": "main"}).json()[
                            "run_id"
                        ]
                    )

        # API -> Webhooks -> Create
        page.click("nav >> text=Webhooks")
        page.fill("input[name=url]", receiver.url("/hook"))
        page.fill("input[name=description]", "build notifications")
        page.check("input[name=events][value='run.completed']")
        page.check("input[name=events][value='run.started']")
        page.check("input[name=pipelines][value=demo]")
        page.click("button:has-text('Create webhook')")
        expect(page.locator(".secret")).to_contain_text("only shown once")
        signing_secret = page.locator("#new-secret").inner_text().strip()
        assert signing_secret
        shots.take(page, "webhooks")

        # trigger the demo pipeline from the UI and watch the run page reach success
        page.click("nav >> text=Pipelines")
        card = page.locator("#pipeline-demo")
        if not card.locator("details.trigger").get_attribute("open") == "":
            card.locator("details.trigger summary").click()
        card.locator("input[name=branch]").fill("main")
        card.locator("textarea[name=inputs]").fill("GREETING=hello")
        card.locator("button:has-text('Trigger demo')").click()
        expect(page).to_have_url(re.compile(r"/dashboard/runs/run_\w+$"))
        run_id = page.url.rsplit("/", 1)[1]
        expect(page.locator("#run h1 .badge")).to_have_text("success", timeout=30_000)  # refreshed in place
        rows = page.locator(".timeline .tl-row[data-step]")
        expect(rows).to_have_count(2)
        assert [rows.nth(i).get_attribute("data-step") for i in range(2)] == ["lint", "test"]
        expect(page.locator(".timeline rect.bar.st-success")).to_have_count(2)
        bars = page.locator(".timeline rect.bar")
        xs = [float(bars.nth(i).get_attribute("x")) for i in range(2)]
        assert xs[0] <= xs[1]  # one time axis: the second step starts after the first
        expect(page.locator("text=run.completed").first).to_be_visible(timeout=10_000)
        page.goto(f"/dashboard/runs/{run_id}")
        shots.take(page, "run")

        # the delivery in the endpoint's log, with status code and latency
        receiver.wait_for(
            lambda rx: any(
                r.json.get("event") == "run.completed" and r.json["data"]["run_id"] == run_id for r in rx.snapshot()
            ),
            timeout=30,
        )
        delivered = next(
            r
            for r in receiver.snapshot()
            if r.json.get("event") == "run.completed" and r.json["data"]["run_id"] == run_id
        )
        expected = hmac.new(signing_secret.encode(), delivered.body, hashlib.sha256).hexdigest()
        assert delivered.headers["x-flashfusion-signature"] == expected
        page.click("nav >> text=Webhooks")
        page.click(f"a:has-text('{receiver.url('/hook')}')")
        row = page.locator("tr[data-event='run.completed']").first

        def delivered_row() -> bool:
            if row.count() and "succeeded" in row.inner_text():
                return True
            page.reload()
            return False

        wait_for(delivered_row, timeout=20, interval=0.5, what="run.completed in the delivery log")
        expect(row.locator("td.code")).to_contain_text("200")
        expect(row.locator("td.latency")).to_contain_text(re.compile(r"\d+ ms"))
        page.click("button:has-text('Send test ping')")
        expect(page.locator("tr[data-event=ping] td.code")).to_contain_text("200", timeout=15_000)
        row.locator("button:has-text('Redeliver')").click()
        wait_for(
            lambda: (
                sum(
                    1
                    for r in receiver.snapshot()
                    if r.json.get("event") == "run.completed" and r.json["data"]["run_id"] == run_id
                )
                >= 2
            ),
            timeout=20,
            what="the redelivery",
        )
        shots.take(page, "webhook-deliveries")

        if extra_runs:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": plaintext}, timeout=60) as api:
                for extra in extra_runs:
                    wait_for(
                        lambda: (
                            api.get("/api/get-status", params={"run_id": extra, "wait": 5}).json()["run"]["status"]
                            != "running"
                        ),
                        timeout=30,
                        what=extra,
                    )
            page.goto(f"/dashboard/runs/{extra_runs[0]}")
            shots.take(page, "run-failed")
        for name, path in (
            ("pipelines", "/dashboard/pipelines"),
            ("runs", "/dashboard/runs"),
            ("audit", "/dashboard/audit"),
            ("users", "/dashboard/users"),
            ("account", "/dashboard/account"),
        ):
            page.goto(path)
            shots.take(page, name)

        # revoke the key: refused at once
        page.click("nav >> text=API keys")
        shots.take(page, "keys")
        page.locator("tr", has_text="Production Deploy Key").locator("button:has-text('Revoke')").click()
        expect(page.locator(".flash.ok")).to_contain_text("revoked")
        expect(page.locator("tr", has_text="Production Deploy Key")).to_contain_text("revoked")
        refused = httpx.get(f"{server.url}/api/runs", headers={"X-API-Key": plaintext}, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"] == "Invalid API key"

        # log out
        page.click("button:has-text('Log out')")
        expect(page).to_have_url(re.compile(r"/login\?done=logout$"))
        page.goto("/dashboard/runs")
        expect(page).to_have_url(re.compile(r"/login"))
        assert not [e for e in console_errors if "Content Security Policy" in e or "Refused" in e], console_errors
        context.close()
        if shots.phone:
            shots.phone.close()
    finally:
        receiver.stop()
        server.process.stop()
    print(f"dashboard browser test took {time.monotonic() - started:.1f} s")


# GitLab at an address where nothing listens: the run below is finished, so it is never asked.
GITLAB = (
    WEBHOOKS
    + """
[providers.gitlab]
url = "http://127.0.0.1:{port}"
token_env = "FF_BROWSER_GL_TOKEN"
"""
    + SHOP_PIPELINE
)
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
SECRET = "glpat-browser-s3cr3t"


def pushed_gitlab_run(started) -> str:
    """A finished run of ``shop`` as a push to GitLab leaves it: stages, a failed job's log."""
    times = [started + timedelta(seconds=s) for s in (0, 20, 75)]
    at = [to_db_time(t) for t in times]
    iso = [t.isoformat().replace("+00:00", "Z") for t in times]
    steps = [
        {
            "name": "compile",
            "stage": "build",
            "status": "success",
            "started_at": iso[0],
            "completed_at": iso[1],
            "log_tail": "built",
        },
        {
            "name": "rspec",
            "stage": "test",
            "status": "failed",
            "started_at": iso[1],
            "completed_at": iso[2],
            "exit_code": 1,
            "log_tail": "1 example, 1 failure: cart total",
        },
    ]
    with database.connection_context():
        return Run.create(
            id="run_pushed_shop",
            pipeline_id="shop",
            provider="gitlab",
            ref="main",
            inputs={"TARGET": "prod"},
            status="failed",
            phase="completed",
            conclusion="failure",
            steps=steps,
            state={},
            created_at=at[0],
            updated_at=at[2],
            started_at=at[0],
            finished_at=at[2],
            upstream_id="812",
            trigger={"kind": "push", "commit": SHA, "pusher": "Grace Hopper", "branch": "main"},
        ).id


def test_run_page_shows_who_started_it_the_commit_and_the_open_failed_log(tmp_path, browser):
    """On SQLite only (the suite's time budget): what the page reads from the database is
    checked on both databases by tests/test_dashboard_runpage.py."""
    db_url = database_url("sqlite", tmp_path)
    fresh_database(db_url)
    folder = Path(os.environ.get("FLASHFUSION_SCREENSHOTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    gitlab_port = free_port()
    config = write_config(tmp_path, db_url, extra=GITLAB.format(port=gitlab_port))
    server = start_server(config, tmp_path)
    try:
        cli("users", "create", "alice", "--admin", "--password-stdin", config=config, input=PASSWORD + "\n")
        key = json.loads(
            cli(
                "keys",
                "create",
                "--name",
                "Nightly deploy",
                "--permissions",
                "trigger_pipeline,read_runs",
                "--json",
                config=config,
            ).stdout
        )
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key["plaintext_key"]}, timeout=60) as api:
            run_id = api.post(
                "/api/trigger-pipeline",
                json={"pipeline_id": "broken", "inputs": {"TARGET": "staging", "DEPLOY_TOKEN": SECRET}},
            ).json()["run_id"]
            wait_for(
                lambda: (
                    api.get("/api/get-status", params={"run_id": run_id, "wait": 5}).json()["run"]["status"] == "failed"
                ),
                timeout=30,
                what="the broken run",
            )
        pushed = pushed_gitlab_run(utcnow() - timedelta(minutes=5))

        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
        page = context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto("/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Log in')")
        expect(page).to_have_url(re.compile(r"/dashboard"))

        # a run started with an API key: the key's name and preview, the failed step's log open
        page.goto(f"/dashboard/runs/{run_id}")
        started_by = page.locator("dd[data-trigger=api]")
        expect(started_by).to_contain_text("Nightly deploy")
        expect(started_by).to_contain_text(key["key_preview"])
        expect(page.locator("details[data-log=unit-tests]")).to_have_attribute("open", "")
        expect(page.locator("details[data-log=unit-tests] pre")).to_contain_text("AssertionError: 2 != 3")
        expect(page.locator("details[data-log=compile] pre")).to_be_hidden()
        expect(page.locator("[data-input=TARGET] dd")).to_have_text("staging")
        expect(page.locator("[data-input=DEPLOY_TOKEN] dd")).to_have_text("••••••")
        assert SECRET not in page.content()
        created = page.locator("#run-summary time")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", created.get_attribute("title"))
        expect(created).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
        page.screenshot(path=str(folder / "run-started-by-key.png"), full_page=True)

        # a run a push started on GitLab: pusher, commit linked to the project, stages, the failed job open
        page.goto(f"/dashboard/runs/{pushed}")
        expect(page.locator("dd[data-trigger=push]")).to_contain_text("push by Grace Hopper")
        commit = page.locator("#run-commit a")
        expect(commit).to_have_text(SHA[:12])
        assert commit.get_attribute("href") == f"http://127.0.0.1:{gitlab_port}/acme/shop/-/commit/{SHA}"
        expect(page.locator(".tl-stage")).to_have_text([re.compile("^build"), re.compile("^test")])
        expect(page.locator("details[data-log=rspec] pre")).to_be_visible()
        expect(page.locator("details[data-log=compile] pre")).to_be_hidden()
        expect(page.locator("#run-summary")).to_contain_text("5 min ago")
        page.screenshot(path=str(folder / "run-pushed-gitlab.png"), full_page=True)

        page.goto("/dashboard/runs")
        expect(page.locator("#trends .trend")).to_have_count(2)
        expect(page.locator("#trends svg.chart.durations").first).to_be_visible()
        page.screenshot(path=str(folder / "runs-trends.png"), full_page=True)
        assert not console_errors, console_errors
        context.close()
    finally:
        server.process.stop()
    print(f"run page screenshots in {folder}")
