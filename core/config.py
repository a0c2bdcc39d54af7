"""Load ``flashfusion.toml``: the schema, ``FLASHFUSION_*`` overrides, one-line errors.

Secrets never live in the file: a provider table names the environment variable that holds
a token (``token_env = "GITHUB_TOKEN"``), and ``FLASHFUSION_SECRET_KEY`` is read from the
environment only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from flashfusion.core.errors import ConfigError
from flashfusion.plugins import Pipeline, PipelineConfigError, PipelineStep
from flashfusion.plugins.provider import convert_table

DEFAULT_CONFIG_PATH = "flashfusion.toml"
PIPELINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECRET_KEY_NAMES = re.compile(r"(^|_)(token|secret|password|private_key|api_key)$")
PIPELINE_CORE_KEYS = {
    "name",
    "provider",
    "project_type",
    "repository_name",
    "branch",
    "build_command",
    "steps",
    "triggers",
    "quality_gates",
    "timeout_seconds",
}


@dataclass(frozen=True)
class ServerConfig:
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    threads: int = 16
    database_url: str = "sqlite:///flashfusion.db"
    max_body_bytes: int = 65536
    long_poll_max_waiters: int = 4
    run_cache_seconds: float = (
        1.0  # how long a process may answer get-status of an unchanged run from memory (0: never)
    )
    embedded_worker: bool = True
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks); see clientaddr.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateLimitConfig:
    api_requests_per_hour: int = 1000
    webhook_events_per_minute: int = 100


@dataclass(frozen=True)
class WebhookConfig:
    allow_http: bool = False
    allow_private_networks: bool = False
    timeout_seconds: float = 15.0
    retry_schedule: str = "0s,5s,5m,30m,2h,5h,10h,10h"  # delay before each attempt (Svix's schedule)
    disable_after_hours: int = 120  # an endpoint failing this long is disabled
    lease_seconds: float = 60.0  # a claimed delivery is retried elsewhere after this (at least 1.5 x timeout + 1 s)
    concurrency: int = 8  # deliveries in flight per worker
    batch_size: int = 50
    tick_seconds: float = 0.2
    secret_key_file: str = "flashfusion.secret"  # used when FLASHFUSION_SECRET_KEY is unset; relative to the config


@dataclass(frozen=True)
class WorkerConfig:
    lease_seconds: float = 30.0
    tick_seconds: float = 0.5
    batch_size: int = 100


@dataclass(frozen=True)
class AuthConfig:
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    cookie_secure: str = "auto"  # "auto": Secure unless server.bind is a loopback address
    rotation_grace_hours: int = 24
    argon2_memory_kib: int = 19456  # OWASP minimum for argon2id: 19 MiB, 2 iterations, 1 lane
    argon2_time_cost: int = 2
    login_attempts_per_account: int = 5
    login_attempts_per_address: int = 20
    login_window_minutes: int = 15
    key_cache_seconds: float = 1.0  # how long a process trusts a key check (0: check every request)
    usage_flush_seconds: float = 1.0  # how often a process writes usage counts and returns unused rate-limit cells


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"  # "text" or "json"; see observability.logs
    level: str = "info"  # debug, info, warning, error; `flashfusion --log-level` overrides it
    access_flush_seconds: float = 0.2  # how long access lines may wait to be written together (0: each at once)


@dataclass(frozen=True)
class MetricsConfig:
    # The variable holding the Bearer token GET /metrics asks for; unset: loopback peers only.
    token_env: str = ""


@dataclass(frozen=True)
class TracingConfig:
    # Send OpenTelemetry traces (needs the tracing extra: pip install 'flashfusion[tracing]').
    enabled: bool = False
    # The OTLP/HTTP (protobuf) traces URL of a collector.
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "flashfusion"  # the spans' service.name
    # The input that carries the W3C traceparent to dispatches of the pipelines listed below.
    dispatch_input: str = "traceparent"
    # Pipelines whose workflow or CI file declares dispatch_input (upstream refuses undeclared inputs).
    dispatch_input_pipelines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: str
    server: ServerConfig = field(default_factory=ServerConfig)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pipelines: Mapping[str, Pipeline] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        return self.pipelines.get(pipeline_id)


SECTIONS = {
    "server": ServerConfig,
    "rate_limits": RateLimitConfig,
    "webhooks": WebhookConfig,
    "worker": WorkerConfig,
    "auth": AuthConfig,
    "logging": LoggingConfig,
    "metrics": MetricsConfig,
    "tracing": TracingConfig,
}


def config_path(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return explicit or env.get("FLASHFUSION_CONFIG") or DEFAULT_CONFIG_PATH


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment and validate. Raises ``ConfigError``."""
    env = dict(os.environ if env is None else env)
    path = config_path(path, env)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "-", "file not found (pass --config or set FLASHFUSION_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "-", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(path, "-", f"cannot read: {exc.strerror}") from None
    return parse_config(raw, path=path, env=env)


def parse_config(raw: Mapping[str, Any], *, path: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    known = set(SECTIONS) | {"providers", "pipelines"}
    for key in raw:
        if key not in known:
            raise ConfigError(path, key, f"unknown section (known: {', '.join(sorted(known))})")
    _refuse_secrets(raw, path, "")
    sections = {name: _section(raw.get(name, {}), cls, name, path, env) for name, cls in SECTIONS.items()}
    server = sections["server"]
    server = replace(server, database_url=_resolve_sqlite(server.database_url, path))
    _check_networks(server.trusted_proxies, path, _override_name(env, "server", "trusted_proxies"))
    providers = raw.get("providers", {})
    if not isinstance(providers, dict) or any(not isinstance(v, dict) for v in providers.values()):
        raise ConfigError(path, "providers", "expected tables [providers.NAME]")
    pipelines_raw = raw.get("pipelines", {})
    if not isinstance(pipelines_raw, dict):
        raise ConfigError(path, "pipelines", "expected tables [pipelines.ID]")
    pipelines = {pid: _pipeline(pid, block, path) for pid, block in pipelines_raw.items()}
    auth = sections["auth"]
    if auth.argon2_memory_kib < 19456 or auth.argon2_time_cost < 2:
        raise ConfigError(
            path, "auth.argon2_memory_kib", "below the OWASP minimum for argon2id (19456 KiB, 2 iterations)"
        )
    if auth.cookie_secure not in ("auto", "always", "never"):
        raise ConfigError(path, "auth.cookie_secure", "expected one of auto, always, never")
    _check_webhooks(sections["webhooks"], path)
    _check_logging(sections["logging"], path, env)
    _check_tracing(sections["tracing"], pipelines, path)
    return Config(
        path=path,
        server=server,
        rate_limits=sections["rate_limits"],
        webhooks=sections["webhooks"],
        worker=sections["worker"],
        auth=auth,
        logging=sections["logging"],
        metrics=sections["metrics"],
        tracing=sections["tracing"],
        providers=providers,
        pipelines=pipelines,
        env=env,
    )


def _refuse_secrets(table: Mapping[str, Any], path: str, prefix: str) -> None:
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            _refuse_secrets(value, path, dotted + ".")
        elif SECRET_KEY_NAMES.search(key) and isinstance(value, str):
            raise ConfigError(path, dotted, f'secrets are read from the environment only: use {key}_env = "VAR_NAME"')


def _section(table: Any, cls: type[Any], name: str, path: str, env: Mapping[str, str]) -> Any:
    """One ``[name]`` table as ``cls``, environment overrides applied, through the converter
    provider settings use too; an error names the key, or the variable that set it."""
    if not isinstance(table, dict):
        raise ConfigError(path, name, "expected a table")
    values = dict(table)
    source = {key: f"{name}.{key}" for key in values}
    for fld in fields(cls):
        var = next((var for var in _env_names(name, fld.name) if var in env), None)
        if var is not None:
            values[fld.name] = _from_env(env[var], fld.default, var, path)
            source[fld.name] = var
    try:
        section = convert_table(cls, values, unknown="unknown key")
    except PipelineConfigError as exc:
        raise ConfigError(path, source.get(exc.key, f"{name}.{exc.key}"), exc.problem) from None
    for fld in fields(cls):
        value = getattr(section, fld.name)
        if type(value) in (int, float) and value <= 0 and f"{name}.{fld.name}" not in MAY_BE_ZERO:
            raise ConfigError(path, source.get(fld.name, f"{name}.{fld.name}"), "must be greater than 0")
    return section


def _env_names(section: str, key: str) -> list[str]:
    names = [f"FLASHFUSION_{section.upper()}__{key.upper()}"]
    if section == "server":
        names.append(f"FLASHFUSION_{key.upper()}")
    return names


def _override_name(env: Mapping[str, str], section: str, key: str) -> str:
    """What set ``section.key``: the environment variable that overrides it, or the key."""
    return next((var for var in _env_names(section, key) if var in env), f"{section}.{key}")


def _check_networks(entries: tuple[str, ...], path: str, key: str) -> None:
    from flashfusion.core.access.clientaddr import parse_networks

    try:
        parse_networks(entries)
    except ValueError as exc:
        raise ConfigError(path, key, str(exc)) from None


#: numbers that may be 0 (everything else numeric must be greater than 0)
MAY_BE_ZERO = frozenset(
    {"server.max_body_bytes", "server.run_cache_seconds", "auth.key_cache_seconds", "logging.access_flush_seconds"}
)


def _from_env(text: str, default: Any, var: str, path: str) -> Any:
    """An environment variable's text as the type of the key it overrides."""
    expected = type(default)
    try:
        if expected is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if expected is bool:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return text.lower() in ("1", "true", "yes")
        return expected(text)
    except ValueError:
        raise ConfigError(path, var, f"expected {expected.__name__}, got {text!r}") from None


def _resolve_sqlite(url: str, path: str) -> str:
    """A relative SQLite path is taken relative to the config file, not the cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        base = Path(path).resolve().parent
        return prefix + str(base / url[len(prefix) :])
    return url


def _pipeline(pid: str, block: Any, path: str) -> Pipeline:
    key = f"pipelines.{pid}"
    if not PIPELINE_ID.match(pid):
        raise ConfigError(path, key, "pipeline ids use letters, digits, '_', '-', '.' (at most 64)")
    if not isinstance(block, dict):
        raise ConfigError(path, key, "expected a table")

    def text(name: str, default: str | None = None) -> str:
        value = block.get(name, default)
        if value is None:
            raise ConfigError(path, f"{key}.{name}", "required key is missing")
        if not isinstance(value, str):
            raise ConfigError(path, f"{key}.{name}", f"expected a string, got {type(value).__name__}")
        return value

    def table(name: str) -> dict:
        value = block.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(path, f"{key}.{name}", "expected a table")
        return value

    steps = block.get("steps", [])
    if not isinstance(steps, list):
        raise ConfigError(path, f"{key}.steps", "expected a list of {name, run} tables")
    parsed_steps = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("name"), str) or not isinstance(step.get("run"), str):
            raise ConfigError(path, f"{key}.steps[{i}]", "each step needs string 'name' and 'run'")
        parsed_steps.append(PipelineStep(name=step["name"], run=step["run"]))
    timeout = block.get("timeout_seconds", 3600)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(path, f"{key}.timeout_seconds", "expected a positive integer")
    return Pipeline(
        id=pid,
        name=text("name", pid),
        provider=text("provider"),
        repository_name=text("repository_name"),
        branch=text("branch", "main"),
        project_type=text("project_type", ""),
        build_command=text("build_command", ""),
        steps=tuple(parsed_steps),
        triggers=_triggers(table("triggers"), f"{key}.triggers", path),
        quality_gates=table("quality_gates"),
        timeout_seconds=timeout,
        options={k: v for k, v in block.items() if k not in PIPELINE_CORE_KEYS},
    )


def _triggers(triggers: dict, key: str, path: str) -> dict:
    from flashfusion.core.runs.triggers import check_triggers

    problem = check_triggers(triggers)
    if problem is not None:
        raise ConfigError(path, f"{key}.{problem[0]}", problem[1])
    return triggers


def _check_webhooks(webhooks: WebhookConfig, path: str) -> None:
    from flashfusion.core.webhooks.schedule import parse_schedule

    try:
        parse_schedule(webhooks.retry_schedule)
    except ValueError as exc:
        raise ConfigError(path, "webhooks.retry_schedule", str(exc)) from None


def _check_logging(settings: LoggingConfig, path: str, env: Mapping[str, str]) -> None:
    from flashfusion.core.observability.logs import FORMATS, LEVELS

    for key, allowed in (("format", FORMATS), ("level", LEVELS)):
        if getattr(settings, key) not in allowed:
            raise ConfigError(path, _override_name(env, "logging", key), f"expected one of {', '.join(allowed)}")


def _check_tracing(settings: TracingConfig, pipelines: Mapping[str, Pipeline], path: str) -> None:
    from flashfusion.core.observability.tracing import missing_packages

    unknown = [p for p in settings.dispatch_input_pipelines if p not in pipelines]
    if unknown:
        raise ConfigError(path, "tracing.dispatch_input_pipelines", f"no pipeline {unknown[0]!r} is configured")
    if settings.dispatch_input_pipelines and not settings.dispatch_input.strip():
        raise ConfigError(path, "tracing.dispatch_input", "must name the input (e.g. traceparent)")
    if settings.enabled and missing_packages():
        raise ConfigError(
            path,
            "tracing.enabled",
            f"needs the OpenTelemetry packages ({', '.join(missing_packages())}): pip install 'flashfusion[tracing]'",
        )
