"""The ``[providers.github]`` table."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flashfusion.plugins import PipelineConfigError


@dataclass(frozen=True)
class Settings:
    """Keys of ``[providers.github]``; secrets are named here, read from the environment."""

    base_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    app_id: int | None = None
    private_key_env: str | None = None
    private_key_file: str | None = None
    installation_id: int | None = None
    poll_interval_seconds: float = 10
    dispatch_lost_after_seconds: float = 300
    timeout_seconds: float = 15
    return_run_details: bool = True
    correlation_input: str = "flashfusion_run_id"
    per_page: int = 100
    max_list_pages: int = 5
    rate_limit_reserve: int = 50
    webhook_secret_env: str | None = None
    reconcile_interval_seconds: float = 300

    @property
    def web_url(self) -> str | None:
        """The web host of ``base_url``: https://github.com for api.github.com, https://HOST for
        GitHub Enterprise's https://HOST/api/v3; None for any other shape."""
        parts = urlsplit(self.base_url.rstrip("/"))
        if parts.scheme not in ("https", "http") or not parts.netloc:
            return None
        if parts.netloc.lower() == "api.github.com" and not parts.path:
            return f"{parts.scheme}://github.com"
        if parts.path.lower() == "/api/v3":
            return f"{parts.scheme}://{parts.netloc}"
        return None

    def check(self) -> None:
        """Raise ``PipelineConfigError`` for combinations a type check cannot catch, and for
        optional fields (``build_settings`` lets any value through an ``X | None`` annotation)."""
        for key, kind in (
            ("app_id", int),
            ("installation_id", int),
            ("private_key_env", str),
            ("private_key_file", str),
            ("webhook_secret_env", str),
        ):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise PipelineConfigError(key, f"expected {kind.__name__}, got {type(value).__name__}")
        if not self.base_url.startswith(("https://", "http://")):
            raise PipelineConfigError("base_url", "must start with https:// (GitHub Enterprise: https://HOST/api/v3)")
        if self.app_id is not None:
            if self.installation_id is None:
                raise PipelineConfigError("installation_id", "required when app_id is set")
            if not (self.private_key_env or self.private_key_file):
                raise PipelineConfigError("private_key_env", "app_id needs private_key_env or private_key_file")
        for key in (
            "poll_interval_seconds",
            "dispatch_lost_after_seconds",
            "timeout_seconds",
            "reconcile_interval_seconds",
        ):
            if getattr(self, key) <= 0:
                raise PipelineConfigError(key, "must be greater than 0")
        if not 1 <= self.per_page <= 100:
            raise PipelineConfigError("per_page", "must be between 1 and 100")
        if self.max_list_pages < 1:
            raise PipelineConfigError("max_list_pages", "must be at least 1")
