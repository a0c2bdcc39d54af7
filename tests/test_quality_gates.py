"""Quality gates judged on a finished run's facts, and the plugin hook that adds gate kinds."""

from __future__ import annotations

from flashfusion.core.plugin_manager import get_plugin_manager
from flashfusion.core.runs import gates
from flashfusion.plugins import hookimpl
from flashfusion.plugins.outputs import parse_output_lines, parse_outputs_file

RUN = {
    "steps": [{"name": "build", "status": "success"}, {"name": "test", "status": "failed"}],
    "duration_seconds": 30,
    "outputs": {"coverage": "79.5", "failed_tests": "0", "channel": "beta"},
}


def verdicts(table, run=RUN, check=None):
    return {g["name"]: (g["passed"], g.get("reason")) for g in gates.evaluate(table, run, check)}


def test_builtin_gates_pass_and_fail_with_reasons():
    got = verdicts(
        {
            "required_steps": ["build", "test", "deploy"],
            "max_duration_seconds": 10,
            "outputs": {"coverage": ">= 80", "failed_tests": "== 0", "channel": "== beta", "size": "< 5"},
        }
    )
    assert got == {
        "required_steps.build": (True, None),
        "required_steps.test": (False, "step 'test' ended failed"),
        "required_steps.deploy": (False, "step 'deploy' did not run"),
        "max_duration_seconds": (False, "the run took 30 s, more than 10 s"),
        "outputs.coverage": (False, "coverage = 79.5, not >= 80"),
        "outputs.failed_tests": (True, None),
        "outputs.channel": (True, None),
        "outputs.size": (False, "output 'size' is missing"),
    }


def test_a_gate_without_its_input_or_with_a_bad_condition_fails():
    got = verdicts(
        {"max_duration_seconds": 10, "outputs": {"coverage": "about 80"}},
        {"steps": [], "duration_seconds": None, "outputs": {"coverage": "90"}},
    )
    assert got["max_duration_seconds"] == (False, "the run's duration is unknown")
    assert got["outputs.coverage"][0] is False and "not a comparison" in got["outputs.coverage"][1]
    assert verdicts({"outputs": {"channel": ">= beta"}})["outputs.channel"][0] is False


class LicenseGate:
    @hookimpl
    def check_quality_gate(self, kind, expected, run):
        if kind != "licenses":
            return None
        actual = run["outputs"].get("licenses", "")
        return {"passed": actual in expected, "actual": actual or None}


def test_hook_check_quality_gate():
    pm = get_plugin_manager(load_entrypoints=False, extra=[LicenseGate()])
    run = {**RUN, "outputs": {"licenses": "MIT"}}
    got = gates.evaluate({"licenses": ["MIT", "BSD"], "sbom": True}, run, pm.hook.check_quality_gate)
    assert got[0] == {"name": "licenses", "expected": ["MIT", "BSD"], "actual": "MIT", "passed": True}
    assert got[1]["passed"] is False and got[1]["reason"] == "no installed plugin checks gates of kind 'sbom'"


def test_outputs_files_in_the_forms_ci_systems_write():
    text = (
        "# comment\ncoverage=91\nexport NAME='quoted value'\nNOTES<<EOF\na=b\n\nlast\nEOF\nnot an assignment\nX=1=2\n"
    )
    assert parse_output_lines(text) == {"coverage": "91", "NAME": "quoted value", "NOTES": "a=b\n\nlast", "X": "1=2"}
    assert parse_outputs_file("outputs.json", b'{"coverage": 91.5, "ok": true, "name": "x", "nested": {}}') == {
        "coverage": "91.5",
        "ok": "true",
        "name": "x",
    }
