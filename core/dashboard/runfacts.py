"""What the run page says about a run beyond its status: its inputs (secret-looking values
masked), the links to its commit and branch on the provider's web host, and its steps grouped
by stage with the failed step's log opened."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from flashfusion.plugins import RepositoryLinks

MASK = "••••••"

#: Words that make an input's name look secret. A name is cut into words at ``_``, ``-``,
#: ``.``, spaces and lower-to-upper case changes; ``key`` counts only as a whole word (so
#: ``DEPLOY_KEY`` and ``apiKey`` are masked, ``MONKEY`` and ``KEYBOARD_LAYOUT`` are not),
#: the others anywhere in the name (``GITHUBTOKEN``, ``DB_PASSWORD``).
SECRET_WORDS = ("token", "secret", "passw", "passphrase", "credential", "apikey", "privatekey", "signature")
SECRET_WHOLE_WORDS = frozenset({"key", "pwd", "auth", "pat", "otp", "dsn", "cert", "private", "cookie"})
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def is_secret_name(name: str) -> bool:
    """Whether an input called ``name`` probably holds a secret: the one rule the dashboard
    masks input values by (and keeps them out of the "Run again" form)."""
    words = [w.lower() for w in _WORD_SPLIT.split(name) if w]
    if any(w in SECRET_WHOLE_WORDS for w in words):
        return True
    joined = "".join(words)
    return any(part in joined for part in SECRET_WORDS)


def shown_inputs(inputs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The run's inputs in name order, each ``{"name", "value", "masked"}``; a masked input's
    value is replaced, never sent to the browser."""
    rows = []
    for name, value in sorted((inputs or {}).items()):
        masked = is_secret_name(name)
        rows.append({"name": name, "value": MASK if masked else str(value), "masked": masked})
    return rows


def rerun_inputs(inputs: Mapping[str, Any] | None) -> str:
    """The "Run again" form's ``NAME=value`` lines: only the inputs that are not masked (the
    masked ones are copied from the earlier run on the server, see ``with_secret_inputs``)."""
    return "".join(f"{k}={v}\n" for k, v in (inputs or {}).items() if not is_secret_name(k))


def with_secret_inputs(inputs: dict[str, str], earlier: Mapping[str, Any] | None) -> dict[str, str]:
    """``inputs`` from the "Run again" form plus the masked inputs of the earlier run it repeats
    (a value typed into the form wins)."""
    kept = {k: str(v) for k, v in (earlier or {}).items() if is_secret_name(k) and k not in inputs}
    return {**inputs, **kept}


# --- links to the provider's web host ------------------------------------------------------


@dataclass(frozen=True)
class Link:
    text: str
    href: str = ""  # empty: plain text


def _base(links: RepositoryLinks | None) -> str:
    if links is None:
        return ""
    parts = urlsplit(links.web_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return ""
    return links.web_url.rstrip("/")


def commit_link(links: RepositoryLinks | None, sha: Any) -> Link | None:
    """The commit, shortened to 12 characters; linked only when it is a hex SHA and the
    provider named its repository's web address."""
    if not isinstance(sha, str) or not sha:
        return None
    base = _base(links)
    if not base or not SHA.match(sha):
        return Link(sha[:12])
    assert links is not None
    return Link(sha[:12], f"{base}/{quote(links.commit_path, safe='/-')}/{sha.lower()}")


def branch_link(links: RepositoryLinks | None, ref: str) -> Link:
    """The branch (or tag), linked to its tree on the provider's web host when known."""
    base = _base(links)
    if not base or not ref:
        return Link(ref)
    assert links is not None
    return Link(ref, f"{base}/{quote(links.tree_path, safe='/-')}/{quote(ref, safe='/')}")


def repository_link(links: RepositoryLinks | None, name: str) -> Link:
    base = _base(links)
    return Link(name, base) if base else Link(name)


def run_commit(trigger: Mapping[str, Any]) -> Any:
    """The commit a run is known to be for: a push's, or an upstream-started run's."""
    return trigger.get("commit")


# --- steps --------------------------------------------------------------------------------


def first_failed(steps: Sequence[Mapping[str, Any]]) -> str | None:
    return next((s.get("name") for s in steps if s.get("status") == "failed"), None)


def stage_groups(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Timeline rows grouped by their step's ``stage`` (GitLab's stages), in the order the
    stages first appear; one group without a name when no step has a stage."""
    groups: dict[str | None, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["step"].get("stage") or None, []).append(row)
    if list(groups) == [None]:
        return [{"stage": None, "rows": list(rows), "status": None}]
    return [
        {"stage": stage, "rows": members, "status": _stage_status([r["step"] for r in members])}
        for stage, members in groups.items()
    ]


def _stage_status(steps: Sequence[Mapping[str, Any]]) -> str:
    statuses = {s.get("status") for s in steps}
    for status in ("failed", "running", "pending", "cancelled"):
        if status in statuses:
            return status
    return "skipped" if statuses == {"skipped"} else "success"
