"""``flashfusion hooks show`` / ``register`` against the fakes, and what ``doctor`` says."""

from __future__ import annotations

from testkit.fake_github import FakeGitHub
from testkit.fake_gitlab import FakeGitLab
from testkit.gateway import write_gateway_config

from flashfusion.core.cli import main

GH_TOKEN, GL_TOKEN = "ghp_setupTestToken0123456789abcdefABCDEF", "glpat-setupTestToken-0123456789"


def test_show_register_and_doctor(tmp_path, db_url, monkeypatch, capsys):
    with FakeGitHub(token=GH_TOKEN) as gh, FakeGitLab(token=GL_TOKEN) as gl:
        gh.add_repo("acme/app")
        gh.add_workflow("acme/app", "deploy.yml")
        gl.add_project("acme/backend")
        config = write_gateway_config(
            tmp_path,
            db_url,
            f"""
[providers.github]
base_url = "{gh.url}"
token_env = "FF_SETUP_GH"
webhook_secret_env = "FF_SETUP_SECRET"

[providers.gitlab]
url = "{gl.url}"
token_env = "FF_SETUP_GL"
webhook_secret_env = "FF_SETUP_SECRET"

[pipelines.gh]
provider = "github"
repository_name = "acme/app"
workflow = "deploy.yml"

[pipelines.gl]
provider = "gitlab"
repository_name = "acme/backend"
""",
        )
        for name, value in (("FF_SETUP_GH", GH_TOKEN), ("FF_SETUP_GL", GL_TOKEN), ("FF_SETUP_SECRET", "s3cret-value")):
            monkeypatch.setenv(name, value)
        base = ["--config", str(config)]
        assert main([*base, "hooks", "show", "github", "--url", "https://ci.example"]) == 0
        out = capsys.readouterr().out
        assert "URL:    https://ci.example/hooks/github" in out and "Workflow runs" in out
        assert "$FF_SETUP_SECRET" in out and "s3cret-value" not in out

        assert main([*base, "hooks", "register", "gh", "--url", "http://127.0.0.1:9/"]) == 0
        assert main([*base, "hooks", "register", "gl", "--url", "http://127.0.0.1:9/"]) == 0
        assert "s3cret-value" not in capsys.readouterr().out
        (gh_hook,), (gl_hook,) = gh.hook_configs, gl.hook_configs
        assert gh_hook["config"] == {
            "url": "http://127.0.0.1:9/hooks/github",
            "content_type": "json",
            "secret": "s3cret-value",
            "insecure_ssl": "0",
        }
        assert set(gh_hook["events"]) == {"workflow_run", "workflow_job", "deployment_status", "push"}
        assert gl_hook["url"] == "http://127.0.0.1:9/hooks/gitlab" and gl_hook["token"] == "s3cret-value"
        assert gl_hook["pipeline_events"] and gl_hook["job_events"] and gl_hook["push_events"]

        main([*base, "doctor"])
        lines = capsys.readouterr().out.splitlines()
        assert "hooks github: last received never (silent: polling at poll_interval_seconds)" in lines
        assert "hooks gitlab: last received never (silent: polling at poll_interval_seconds)" in lines
