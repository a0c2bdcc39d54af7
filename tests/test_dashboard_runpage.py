"""The run page without a browser (falcon's TestClient and the HTML it sends): who started the
run, the commit and branch linked to the provider's web host (and only there), inputs with
secret-looking values masked (never sent), relative times with the UTC time on hover, the
failed step's log open, GitLab stages grouped, and the runs page's trends with labelled axes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from test_dashboard import WEBHOOKS, Browser, make_run, make_user

from flashfusion.core.dashboard import runfacts
from flashfusion.core.dashboard.timefmt import ago, fmt_ago, time_tag, took
from flashfusion.core.storage.db import database, to_db_time
from flashfusion.core.storage.models import Run
from flashfusion.plugins import Pipeline, RepositoryLinks
from flashfusion.providers.github.settings import Settings as GitHubSettings
from flashfusion.providers.gitlab.provider import GitLabProvider, GitLabSettings

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
SECRET = "glpat-s3cr3t-VALUE-never-shown"
WEB_PIPELINE = """
[pipelines.web]
provider = "github"
repository_name = "acme/web"
workflow = "deploy.yml"
"""
SHOP_PIPELINE = """
[pipelines.shop]
provider = "gitlab"
repository_name = "acme/shop"
"""
PROVIDERS = (
    WEBHOOKS
    + """
[providers.github]
base_url = "https://ghe.example.com/api/v3"
token_env = "FF_RUNPAGE_GH_TOKEN"

[providers.gitlab]
url = "https://gitlab.example.com"
token_env = "FF_RUNPAGE_GL_TOKEN"

"""
    + WEB_PIPELINE
    + SHOP_PIPELINE
)


EXTRA_CONFIG = PROVIDERS  # added to the test configuration by conftest's config_path


@pytest.fixture
def admin(client, gateway):
    """An administrator logged in to the dashboard."""
    return Browser(client, make_user(gateway, "root", admin=True).username)


class Elements(HTMLParser):
    """Every element's tag, attributes and text (its own and its children's)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict] = []
        self.open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in ("dt", "dd", "div", "td", "th", "li", "p"):
            self.handle_data(" ")  # a block's text does not run into its neighbour's
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.found.append(element)
        if tag not in ("input", "br", "meta", "link", "img", "rect", "line", "circle", "polyline"):
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.found.append({"tag": tag, "attrs": dict(attrs), "text": ""})

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self.open:
            element["text"] += data

    def select(self, tag: str, **attrs) -> list[dict]:
        return [
            e
            for e in self.found
            if e["tag"] == tag and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, **attrs) -> dict:
        found = self.select(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]


def text_of(element: dict) -> str:
    return " ".join(element["text"].split())


# --- the rules, on their own --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "DEPLOY_TOKEN",
        "GITHUBTOKEN",
        "db_password",
        "Passwd",
        "api-key",
        "apiKey",
        "SSH_KEY",
        "aws_secret_access_key",
        "credentials_json",
        "AUTH",
        "sentry_dsn",
        "PRIVATE_KEY_PEM",
        "gitlab_pat",
    ],
)
def test_secret_looking_input_names_are_masked(name):
    assert runfacts.is_secret_name(name)
    shown = runfacts.shown_inputs({name: "hunter2"})
    assert shown == [{"name": name, "value": runfacts.MASK, "masked": True}]


@pytest.mark.parametrize("name", ["GREETING", "TARGET", "MONKEY", "KEYBOARD_LAYOUT", "author", "path", "region"])
def test_ordinary_input_names_are_shown(name):
    assert not runfacts.is_secret_name(name)
    assert runfacts.shown_inputs({name: "x"})[0]["value"] == "x"


def test_relative_times_read_like_a_ci_page():
    assert [ago(s) for s in (-30, 0, 9.9, 42, 60, 3599, 3600, 86399, 86400 * 12)] == [
        "just now",
        "just now",
        "just now",
        "42 s ago",
        "1 min ago",
        "59 min ago",
        "1 h ago",
        "23 h ago",
        "12 d ago",
    ]
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert fmt_ago("2026-03-01T11:57:00Z", now) == "3 min ago"
    assert fmt_ago(now - timedelta(days=90), now) == "2025-12-01"  # old: the date itself
    assert fmt_ago(None, now) == "—"
    tag = str(time_tag("2026-03-01T11:57:00Z", now))
    assert tag == '<time datetime="2026-03-01T11:57:00Z" title="2026-03-01 11:57:00 UTC" data-ago>3 min ago</time>'
    assert took(72) == "took 1m 12s" and took(0.24) == "took 240 ms" and took(4, running=True) == "running for 4.0s"


def test_links_go_only_to_the_repository_on_the_providers_web_host():
    github = RepositoryLinks("https://github.com/acme/web")
    gitlab = RepositoryLinks("https://gitlab.example.com/acme/shop", commit_path="-/commit", tree_path="-/tree")
    assert runfacts.commit_link(github, SHA) == runfacts.Link(SHA[:12], f"https://github.com/acme/web/commit/{SHA}")
    assert runfacts.commit_link(gitlab, SHA).href == f"https://gitlab.example.com/acme/shop/-/commit/{SHA}"
    assert (
        runfacts.branch_link(gitlab, "release/1.0 rc#2").href
        == "https://gitlab.example.com/acme/shop/-/tree/release/1.0%20rc%232"
    )
    # not a SHA, no provider address, or an address that is not http(s): plain text
    assert runfacts.commit_link(github, "javascript:alert(1)") == runfacts.Link("javascript:a")
    assert runfacts.commit_link(None, SHA) == runfacts.Link(SHA[:12])
    assert runfacts.branch_link(RepositoryLinks("javascript:alert(1)//"), "main") == runfacts.Link("main")
    assert runfacts.branch_link(RepositoryLinks("https://x.example/r?q=1"), "main") == runfacts.Link("main")
    assert runfacts.commit_link(github, None) is None


def test_providers_name_their_web_host():
    assert GitHubSettings().web_url == "https://github.com"
    assert GitHubSettings(base_url="https://ghe.example.com/api/v3/").web_url == "https://ghe.example.com"
    assert GitHubSettings(base_url="https://proxy.example.com/github").web_url is None
    gitlab = GitLabProvider(GitLabSettings(url="https://gitlab.example.com/"), env={})
    assert gitlab.repository_links(
        Pipeline(id="p", name="p", provider="gitlab", repository_name="g/sub/p")
    ) == RepositoryLinks("https://gitlab.example.com/g/sub/p", "-/commit", "-/tree")
    assert gitlab.repository_links(Pipeline(id="p", name="p", provider="gitlab", repository_name="1234")) is None


# --- the pages ----------------------------------------------------------------------------

GITLAB_STEPS = [
    {
        "name": "compile",
        "stage": "build",
        "status": "success",
        "started_at": "2026-03-01T10:00:00Z",
        "completed_at": "2026-03-01T10:00:30Z",
        "log_tail": "compiled 12 files",
    },
    {
        "name": "unit",
        "stage": "test",
        "status": "failed",
        "started_at": "2026-03-01T10:00:30Z",
        "completed_at": "2026-03-01T10:01:10Z",
        "exit_code": 1,
        "log_tail": "FAILED test_cart.py::test_total",
    },
    {
        "name": "lint",
        "stage": "test",
        "status": "success",
        "started_at": "2026-03-01T10:00:30Z",
        "completed_at": "2026-03-01T10:00:40Z",
        "log_tail": "all clean",
    },
    {"name": "ship", "stage": "deploy", "status": "skipped", "started_at": None, "completed_at": None},
]


def test_a_pushed_gitlab_run_shows_pusher_commit_stages_and_the_failed_log_open(admin):
    run = make_run("shop", status="failed", steps=GITLAB_STEPS, seconds=72)
    with database.connection_context():
        Run.update(
            provider="gitlab",
            ref='feature/<b>&"x"',
            trigger={"kind": "push", "commit": SHA, "pusher": "Mallory <script>", "branch": "feature/x"},
            inputs={"TARGET": "staging", "DEPLOY_TOKEN": SECRET},
        ).where(Run.id == run.id).execute()
    html = admin.get(f"/dashboard/runs/{run.id}").text
    page = Elements(html)

    started = page.one("dd", data_trigger="push")
    assert text_of(started) == f"push by Mallory <script> of {SHA[:12]} to feature/x"
    assert "<script>" not in html and "Mallory &lt;script&gt;" in html
    commit = page.one("dd", id="run-commit")
    links = [e for e in page.select("a") if e["attrs"]["href"].endswith(SHA)]
    assert {a["attrs"]["href"] for a in links} == {f"https://gitlab.example.com/acme/shop/-/commit/{SHA}"}
    assert text_of(commit) == SHA[:12]
    branch = page.one("dd", id="run-branch")
    assert text_of(branch) == 'feature/<b>&"x"'
    assert [a["attrs"]["href"] for a in page.select("a") if "/-/tree/" in a["attrs"]["href"]] == [
        "https://gitlab.example.com/acme/shop/-/tree/feature/%3Cb%3E%26%22x%22"
    ]

    # stages in the order they ran, each with its steps and the worst status
    stages = [
        (e["attrs"]["data-stage"], text_of(e)) for e in page.select("div") if "tl-stage" in e["attrs"].get("class", "")
    ]
    assert stages == [("build", "build success"), ("test", "test failed"), ("deploy", "deploy skipped")]
    rows = [
        (e["attrs"]["data-stage"], e["attrs"]["data-step"]) for e in page.select("div") if "data-step" in e["attrs"]
    ]
    assert rows == [("build", "compile"), ("test", "unit"), ("test", "lint"), ("deploy", "ship")]

    # the failed step's log is open, the others closed
    logs = {e["attrs"]["data-log"]: "open" in e["attrs"] for e in page.select("details")}
    assert logs == {"compile": False, "unit": True, "lint": False}

    # the inputs: the secret is masked and never in the page, not even in "Run again"
    assert text_of(page.one("div", data_input="TARGET")) == "TARGET staging"
    assert text_of(page.one("div", data_input="DEPLOY_TOKEN")) == f"DEPLOY_TOKEN {runfacts.MASK}"
    assert SECRET not in html
    assert page.one("input", name="inputs")["attrs"]["value"] == "TARGET=staging\n"

    # relative times, the absolute UTC time on hover
    created = page.one("p", id="run-summary")
    assert text_of(created) == "Created 1 min ago · took 1m 12s"  # make_run: created 77 s ago
    stamp = next(t for t in page.select("time") if "data-ago" in t["attrs"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", stamp["attrs"]["title"])


def test_run_again_keeps_the_masked_inputs_on_the_server(admin):
    first = admin.post("/dashboard/pipelines/demo/trigger", {"inputs": f"GREETING=hi\nAPI_KEY={SECRET}"})
    first_id = first.headers["location"].rsplit("/", 1)[1]
    with database.connection_context():
        Run.update(phase="completed", status="success").where(Run.id == first_id).execute()
    page = Elements(admin.get(f"/dashboard/runs/{first_id}").text)
    fields = {e["attrs"]["name"]: e["attrs"]["value"] for e in page.select("input") if "name" in e["attrs"]}
    assert fields["inputs"] == "GREETING=hi\n" and fields["rerun_of"] == first_id
    again = admin.post("/dashboard/pipelines/demo/trigger", fields)
    assert again.status_code == 303, again.text
    with database.connection_context():
        copy = Run.get_by_id(again.headers["location"].rsplit("/", 1)[1])
    assert copy.id != first_id and copy.inputs == {"GREETING": "hi", "API_KEY": SECRET}


def test_who_started_each_kind_of_run(admin):
    cases = [
        ({"kind": "api", "key_name": "deploy bot", "key_preview": "ffai_AbCd…"}, "deploy bot ffai_AbCd… (API key)"),
        ({"kind": "dashboard", "user": "alice"}, "alice (dashboard)"),
        (
            {"kind": "schedule", "cron": "0 3 * * 1-5", "due": "2026-03-01T03:00:00Z"},
            "schedule 0 3 * * 1-5, due 2026-03-01",
        ),
        ({"kind": "upstream", "upstream_run_id": "99", "commit": SHA}, "started upstream (run 99)"),
    ]
    for i, (trigger, expected) in enumerate(cases):
        run = make_run("web", seconds=i + 1)
        with database.connection_context():
            Run.update(provider="github", trigger=trigger).where(Run.id == run.id).execute()
        page = Elements(admin.get(f"/dashboard/runs/{run.id}").text)
        assert text_of(page.one("dd", data_trigger=trigger["kind"])) == expected
        commit = [a["attrs"]["href"] for a in page.select("a") if "/commit/" in a["attrs"]["href"]]
        assert commit == ([f"https://ghe.example.com/acme/web/commit/{SHA}"] if "commit" in trigger else [])


def test_a_local_run_links_nowhere(admin):
    run = make_run("demo", status="success")
    html = admin.get(f"/dashboard/runs/{run.id}").text
    page = Elements(html)
    assert (
        text_of(page.one("dd", id="run-branch")) == "main" and text_of(page.one("dd", id="run-commit")) == "not known"
    )
    assert not [a for a in page.select("a") if a["attrs"]["href"].startswith("http")]


def test_runs_page_shows_trends_with_labelled_axes(admin):
    for i, status in enumerate(["success", "failed", "success", "success"]):
        make_run("demo", status=status, seconds=10 + i * 10)
    with database.connection_context():  # spread them over time, oldest first
        for i, run in enumerate(Run.select().order_by(Run.id)):
            Run.update(created_at=to_db_time(datetime(2026, 3, 1, 9, i, tzinfo=UTC))).where(Run.id == run.id).execute()
    page = Elements(admin.get("/dashboard/runs").text)
    trend = page.one("div", data_pipeline="demo")
    assert "75%" in text_of(trend)
    charts = [e for e in page.select("svg") if "chart" in e["attrs"].get("class", "")]
    assert [c["attrs"]["class"] for c in charts] == ["chart durations", "chart success"]
    durations, success = (text_of(c).split() for c in charts)
    assert durations[:4] == ["0", "s", "20s", "40s"]  # the seconds axis: 0, half, the longest
    assert "01 Mar 09:00" in text_of(charts[0]) and "01 Mar 09:03" in text_of(charts[0])  # the time axis
    assert success[:6] == ["0", "%", "50", "%", "100", "%"]
    pipelines = Elements(admin.get("/dashboard/pipelines").text)
    assert "40s" in text_of(next(e for e in pipelines.select("svg") if "durations" in e["attrs"].get("class", "")))
