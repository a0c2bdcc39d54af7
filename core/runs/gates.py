"""Quality gates: the checks a pipeline's ``quality_gates`` table asks of every finished run.

Built-in kinds: ``required_steps`` (each named step succeeded), ``max_duration_seconds`` and
``outputs`` (comparisons such as ``coverage = ">= 80"``). Plugins add kinds through the
``check_quality_gate`` hook. A gate whose input is missing fails and says so: a gate never
passes for want of something to check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

#: ``check_quality_gate(kind, expected, run)`` of the plugins (first answer wins).
PluginCheck = Callable[..., Any]

COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(.*?)\s*$")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def gate(name: str, expected: Any, actual: Any, passed: bool, reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "expected": expected, "actual": actual, "passed": passed}
    if reason:
        out["reason"] = reason
    return out


def evaluate(
    gates: Mapping[str, Any], run: Mapping[str, Any], plugin_check: PluginCheck | None = None
) -> list[dict[str, Any]]:
    """The result of every gate in ``gates`` for ``run`` (``steps``, ``duration_seconds``,
    ``outputs`` as get-status shows them)."""
    results: list[dict[str, Any]] = []
    for kind, expected in gates.items():
        if kind == "required_steps":
            results.extend(_required_steps(expected, run.get("steps") or []))
        elif kind == "max_duration_seconds":
            results.append(_max_duration(expected, run.get("duration_seconds")))
        elif kind == "outputs":
            results.extend(_outputs(expected, run.get("outputs") or {}))
        else:
            results.append(_by_plugin(kind, expected, run, plugin_check))
    return results


def failed(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if not r["passed"]]


def _required_steps(expected: Any, steps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = [expected] if isinstance(expected, str) else list(expected or [])
    by_name = {s.get("name"): s.get("status") for s in steps}
    out = []
    for name in names:
        status = by_name.get(name)
        if status is None:
            out.append(gate(f"required_steps.{name}", "success", None, False, f"step {name!r} did not run"))
        else:
            out.append(
                gate(
                    f"required_steps.{name}",
                    "success",
                    status,
                    status == "success",
                    None if status == "success" else f"step {name!r} ended {status}",
                )
            )
    return out


def _max_duration(expected: Any, duration: Any) -> dict[str, Any]:
    want = f"<= {expected}"
    if duration is None:
        return gate("max_duration_seconds", want, None, False, "the run's duration is unknown")
    passed = isinstance(expected, (int, float)) and duration <= expected
    return gate(
        "max_duration_seconds",
        want,
        duration,
        passed,
        None if passed else f"the run took {duration} s, more than {expected} s",
    )


def _outputs(expected: Any, outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for name, condition in dict(expected or {}).items():
        label = f"outputs.{name}"
        match = COMPARISON.match(str(condition))
        if match is None:
            out.append(
                gate(label, condition, outputs.get(name), False, 'not a comparison: write e.g. ">= 80" or "== 0"')
            )
            continue
        op, operand = match.groups()
        actual = outputs.get(name)
        if actual is None:
            out.append(gate(label, condition, None, False, f"output {name!r} is missing"))
            continue
        passed = compare(actual, op, operand)
        out.append(gate(label, condition, actual, passed, None if passed else f"{name} = {actual}, not {condition}"))
    return out


def compare(actual: str, op: str, operand: str) -> bool:
    """Numbers compare as numbers; anything else only with ``==`` and ``!=``, as text."""
    a, b = _number(actual), _number(operand)
    if a is not None and b is not None:
        return OPERATORS[op](a, b)
    if op in ("==", "!="):
        return OPERATORS[op](actual.strip(), operand)
    return False


def _number(text: str) -> float | None:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _by_plugin(kind: str, expected: Any, run: Mapping[str, Any], plugin_check: PluginCheck | None) -> dict[str, Any]:
    answer = plugin_check(kind=kind, expected=expected, run=dict(run)) if plugin_check else None
    if not answer:
        return gate(kind, expected, None, False, f"no installed plugin checks gates of kind {kind!r}")
    passed = bool(answer.get("passed"))
    return gate(kind, answer.get("expected", expected), answer.get("actual"), passed, answer.get("reason"))
