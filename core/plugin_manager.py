"""Build the pluggy plugin manager and the provider registry.

Built-in plugins are registered first, then the ``flashfusion`` entry points of installed
distributions (the built-in providers arrive that way too, like any third party), then
``check_pending()`` catches hook implementations with misspelled names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pluggy

from flashfusion.core.config import Config
from flashfusion.core.errors import ConfigError
from flashfusion.plugins import PipelineConfigError, Provider, hookspecs
from flashfusion.plugins.markers import PROJECT_NAME
from flashfusion.plugins.version import PLUGIN_API_ATTRIBUTE, PLUGIN_API_VERSION, SUPPORTED_PLUGIN_APIS

DEFAULT_PLUGINS: tuple[str, ...] = ("flashfusion.core.runs.analyzer",)
#: Provider names of known plugins that live in their own distribution: named in the
#: start-up error of a configuration that uses one without it installed.
KNOWN_PROVIDER_PACKAGES = {"jenkins": "flashfusion-jenkins", "echo": "flashfusion-echo"}


def get_plugin_manager(
    load_entrypoints: bool = True, disabled: Iterable[str] = (), extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    for plugin in extra:
        pm.register(plugin)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(PROJECT_NAME)
        for plugin, dist in pm.list_plugin_distinfo():
            check_api_version(plugin, f"{pm.get_name(plugin)} ({dist.project_name} {dist.version})")
    for name in disabled:
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin)
    pm.check_pending()
    return pm


def check_api_version(plugin: object, label: str) -> None:
    """Refuse a plugin that declares a plugin API version this FlashFusion does not provide
    (a plugin that declares none is taken to be written for the current one)."""
    wanted = getattr(plugin, PLUGIN_API_ATTRIBUTE, None)
    if wanted is None or str(wanted) in SUPPORTED_PLUGIN_APIS:
        return
    raise ConfigError(
        "installed plugins",
        label,
        f"needs FlashFusion plugin API {wanted!s}, but this FlashFusion provides API "
        f"{PLUGIN_API_VERSION}: install a release of the plugin made for API {PLUGIN_API_VERSION}, "
        "or a FlashFusion that provides its API (see docs/plugins.md, Versioning)",
    )


@dataclass
class ProviderRegistry:
    """Provider classes by name, and one instance per name built from its config table."""

    classes: dict[str, type[Provider]] = field(default_factory=dict)
    instances: dict[str, Provider] = field(default_factory=dict)

    def register(self, cls: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Provider)) or not cls.name:
            raise TypeError(f"{cls!r} is not a Provider subclass with a name")
        if cls.name in self.classes and self.classes[cls.name] is not cls:
            raise ValueError(
                f"provider {cls.name!r} is registered twice ({self.classes[cls.name].__module__} and {cls.__module__})"
            )
        self.classes[cls.name] = cls

    def get(self, name: str) -> Provider:
        return self.instances[name]

    def close(self) -> None:
        for provider in self.instances.values():
            provider.close()


def load_providers(pm: pluggy.PluginManager, config: Config, env: Mapping[str, str] | None = None) -> ProviderRegistry:
    """Collect provider classes through ``register_providers`` and build those that the
    configuration uses, validating every pipeline block. Raises ``ConfigError``."""
    registry = ProviderRegistry()
    pm.hook.register_providers(register=registry.register)
    env = config.env if env is None else env
    used = {p.provider for p in config.pipelines.values()}
    for name in config.providers:
        if name not in registry.classes:
            raise ConfigError(
                config.path,
                f"providers.{name}",
                f"no installed plugin provides {name!r} (installed: {_names(registry)}); {_install_hint(name)}",
            )
    for name in sorted(used | set(config.providers)):
        if name not in registry.classes:
            continue
        try:
            registry.instances[name] = registry.classes[name].from_table(config.providers.get(name, {}), env=env)
        except PipelineConfigError as exc:
            raise ConfigError(config.path, f"providers.{name}.{exc.key}", exc.problem) from None
    for pipeline in config.pipelines.values():
        key = f"pipelines.{pipeline.id}"
        if pipeline.provider not in registry.classes:
            raise ConfigError(
                config.path,
                f"{key}.provider",
                f"provider {pipeline.provider!r} is not installed (installed: {_names(registry)}); "
                f"{_install_hint(pipeline.provider)}",
            )
        try:
            registry.instances[pipeline.provider].validate(pipeline)
        except PipelineConfigError as exc:
            raise ConfigError(config.path, f"{key}.{exc.key}", exc.problem) from None
    return registry


def _names(registry: ProviderRegistry) -> str:
    return ", ".join(sorted(registry.classes)) or "none"


def _install_hint(provider: str) -> str:
    package = KNOWN_PROVIDER_PACKAGES.get(provider)
    if package:
        return f"install its plugin package: pip install {package}"
    return "install the plugin package that provides it (see docs/plugins.md)"
