"""The body is serialized once so that JavaScript's JSON.stringify(JSON.parse(body))
gives back the same bytes (what the spec's Node.js verifier signs); the run analyzer;
the retry schedule setting; the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import write_config
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit.db import require_tool
from testkit.server import cli

from flashfusion.core.config import parse_config
from flashfusion.core.errors import ConfigError
from flashfusion.core.runs import analyzer
from flashfusion.core.webhooks import payload
from flashfusion.core.webhooks.schedule import parse_schedule

TRICKY = [
    {"b": 1, "a": 2, "10": "x", "9": "y", "01": "z", "-1": "n"},
    {"text": 'café ☃ 𝄞 \u2028 \u2029 \x00 \x1f " \\ / \t\n', "emoji": "🚀"},
    {"float": 1.0, "half": 0.5, "neg": -0.0, "small": 0.000123, "big": 123456789.125, "int": 2**53 - 1},
    {"nested": [{"z": None, "0": True}, [], {}], "4294967294": 1, "4294967295": 2},
]


def test_javascript_reserializes_the_exact_bytes(tmp_path):
    require_tool(bool(shutil.which("node")), "node")
    bodies = [payload.build_body("run.completed", "2025-11-21T10:30:00Z", "abc123", d).decode() for d in TRICKY]
    script = tmp_path / "roundtrip.js"
    script.write_text(
        "const fs=require('fs');const bodies=JSON.parse(fs.readFileSync(process.argv[2],'utf8'));"
        "process.stdout.write(JSON.stringify(bodies.map(b=>JSON.stringify(JSON.parse(b))===b)));"
    )
    data = tmp_path / "bodies.json"
    data.write_text(json.dumps(bodies))
    out = subprocess.run(["node", str(script), str(data)], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == [True] * len(bodies)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=12,
    )
)
def test_serialization_is_compact_and_parses_back(value):
    text = payload.dumps({"data": value})
    assert json.loads(text)["data"] == json.loads(json.dumps(value))
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def test_unsendable_numbers_are_refused():
    for bad in (float("nan"), float("inf"), 2**60, 1e300):
        with pytest.raises(payload.PayloadError):
            payload.dumps({"x": bad})


def test_retry_schedule_setting():
    assert parse_schedule("0s,5s,5m,30m,2h,5h,10h,10h") == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    config = parse_config({"webhooks": {"retry_schedule": "1s, 1m"}}, env={})
    assert parse_schedule(config.webhooks.retry_schedule) == (1, 60)
    with pytest.raises(ConfigError, match="webhooks.retry_schedule"):
        parse_config({"webhooks": {"retry_schedule": "soon"}}, env={})


# --- the run analyzer ---------------------------------------------------------------------


def run(duration, steps=(), status="success", branch="main", rid="run_x"):
    return {
        "id": rid,
        "status": status,
        "branch": branch,
        "duration_seconds": duration,
        "steps": [{"name": n, "status": s, "duration_seconds": d} for n, s, d in steps],
    }


def test_a_run_far_slower_than_the_median_names_the_step_that_grew():
    history = [run(100, [("build", "success", 40), ("test", "success", 60)]) for _ in range(8)]
    slow = run(400, [("build", "success", 45), ("test", "success", 355)])
    (s,) = [x for x in analyzer.analyze(slow, history) if x["kind"] == "slow_run"]
    assert s["median_seconds"] == 100 and s["ratio"] == 4.0 and s["sample_size"] == 8
    assert s["step"] == "test" and s["step_seconds"] == 355 and s["step_median_seconds"] == 60
    assert "4.0x" in s["message"]
    assert analyzer.analyze(run(150), history) == []  # within normal variation
    assert analyzer.analyze(slow, history[:3]) == []  # too little history to judge


def test_a_dominant_dependency_install_step_suggests_caching_once_per_streak():
    steps = [("npm-install", "success", 180), ("test", "success", 40)]
    current = run(220, steps)
    (s,) = analyzer.analyze(current, [])
    assert s["kind"] == "cache_dependencies" and s["step"] == "npm-install" and s["share"] == 0.82
    assert analyzer.analyze(current, [run(220, steps)]) == []  # already suggested
    assert analyzer.analyze(current, [run(220, steps)] * 10)[0]["consecutive_runs"] == 11
    by_log = {
        "id": "r",
        "status": "success",
        "branch": "main",
        "duration_seconds": 100,
        "steps": [
            {"name": "prepare", "status": "success", "duration_seconds": 70, "log_tail": "added 1342 packages in 61s"}
        ],
    }
    assert analyzer.analyze(by_log, [])[0]["step"] == "prepare"
    assert analyzer.analyze(run(220, [("compile", "success", 180)]), []) == []  # long, but not installing


def test_a_step_that_fails_then_passes_repeatedly_is_flaky():
    flip = [("unit", "success", 10)], [("unit", "failed", 10)]
    history = [run(10, flip[(i + 1) % 2], status="success" if i % 2 else "failed") for i in range(6)]  # newest first
    current = run(10, [("unit", "success", 10)])
    (s,) = analyzer.analyze(current, history)
    assert s["kind"] == "flaky_step" and s["step"] == "unit" and s["failures"] == 3 and s["runs"] == 7
    assert s["passed_after_failure"] == 3 and s["failure_rate"] == 0.43
    once = [run(10, flip[1], status="failed")] + [run(10, flip[0])] * 5
    assert analyzer.analyze(current, once) == []  # fixed once is not flaky
    other_branch = [dict(r, branch="dev") for r in history]
    assert analyzer.analyze(current, other_branch) == []


def test_the_analyzer_is_registered_as_a_default_plugin():
    from flashfusion.core.plugin_manager import get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    assert pm.get_plugin("flashfusion.core.runs.analyzer") is analyzer
    assert (
        pm.hook.run_finished(run=run(220, [("pip install", "success", 200)]), history=[])[0][0]["kind"]
        == "cache_dependencies"
    )


def test_cli_creates_lists_and_sends(tmp_path, db_url):
    config = write_config(tmp_path, db_url, "\n[webhooks]\nallow_http = true\nallow_private_networks = true\n")
    made = cli("webhooks", "create", "--url", "http://127.0.0.1:9/hook", "--events", "run.failed", config=config)
    assert "secret (shown once): whsec_" in made.stdout
    listed = json.loads(cli("webhooks", "list", "--json", config=config).stdout)
    assert listed["webhooks"][0]["events"] == ["run.failed"] and "whsec_" not in json.dumps(listed)
    sent = json.loads(
        cli(
            "webhooks",
            "send",
            "--event",
            "run.failed",
            "--pipeline",
            "demo",
            "--payload",
            '{"run_id": "r1"}',
            config=config,
        ).stdout
    )
    assert sent["success"] is True and len(sent["deliveries"]) == 1
    refused = cli("webhooks", "create", "--url", "https://169.254.169.254/x", config=config, check=False)
    assert refused.returncode == 2 and "not allowed" in refused.stderr
