"""The dashboard end to end in headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real ``flashfusion serve``: log in, create a key and copy it, use the key over
HTTP, create a webhook, trigger the demo pipeline from the page, watch the run page reach
success with its timeline, see the delivery in the log, revoke the key and see it refused.

Set ``FLASHFUSION_SCREENSHOTS=DIR`` to also save a screenshot of every page at desktop
(1280 px) and phone (390 px) width (``docs/screenshots`` is made that way).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from conftest import write_config
from testkit.receiver import Receiver
from testkit.server import cli, start_server, wait_for

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"
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
            self.phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                             is_mobile=True, has_touch=True, base_url=base_url,
                                             storage_state=storage_state)

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
                    extra_runs.append(api.post("/api/trigger-pipeline", json={"pipeline_id": pipeline_id,
                                                                              "branch": "main"}).json()["run_id"])

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
        receiver.wait_for(lambda rx: any(r.json.get("event") == "run.completed" and r.json["data"]["run_id"] == run_id
                                         for r in rx.snapshot()), timeout=30)
        delivered = next(r for r in receiver.snapshot() if r.json.get("event") == "run.completed"
                         and r.json["data"]["run_id"] == run_id)
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
        wait_for(lambda: sum(1 for r in receiver.snapshot() if r.json.get("event") == "run.completed"
                             and r.json["data"]["run_id"] == run_id) >= 2, timeout=20, what="the redelivery")
        shots.take(page, "webhook-deliveries")

        if extra_runs:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": plaintext}, timeout=60) as api:
                for extra in extra_runs:
                    wait_for(lambda: api.get("/api/get-status", params={"run_id": extra, "wait": 5}
                                             ).json()["run"]["status"] != "running", timeout=30, what=extra)
            page.goto(f"/dashboard/runs/{extra_runs[0]}")
            shots.take(page, "run-failed")
        for name, path in (("pipelines", "/dashboard/pipelines"), ("runs", "/dashboard/runs"),
                           ("audit", "/dashboard/audit"), ("users", "/dashboard/users"),
                           ("account", "/dashboard/account")):
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
