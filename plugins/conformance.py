"""A reusable check that a provider class keeps the plugin contract.

Use it in a plugin's own tests::

    from flashfusion.plugins.conformance import check_provider_class
    check_provider_class(MyProvider)
"""

from __future__ import annotations

import dataclasses

from flashfusion.plugins.provider import Provider

KNOWN_CAPABILITIES = frozenset({"cancel", "returns_run_id", "deployments", "runs_in_worker", "results"})


def check_provider_class(cls: type) -> None:
    """Raise ``AssertionError`` naming the first broken rule."""
    assert isinstance(cls, type) and issubclass(cls, Provider), f"{cls!r} is not a Provider subclass"
    assert cls.name and cls.name.isidentifier(), f"{cls.__name__}.name must be a non-empty identifier"
    assert dataclasses.is_dataclass(cls.Settings), f"{cls.__name__}.Settings must be a dataclass"
    params = getattr(cls.Settings, "__dataclass_params__", None)
    assert params is not None and params.frozen, f"{cls.__name__}.Settings must be frozen"
    unknown = set(cls.capabilities) - KNOWN_CAPABILITIES
    assert not unknown, f"{cls.__name__} declares unknown capabilities {sorted(unknown)}"
    for method in ("dispatch", "poll"):
        assert getattr(cls, method) is not getattr(Provider, method), f"{cls.__name__} must implement {method}()"
    if "cancel" in cls.capabilities:
        assert cls.cancel is not Provider.cancel, f"{cls.__name__} declares 'cancel' but does not implement cancel()"
    if "results" in cls.capabilities:
        for method in ("results", "open_artifact"):
            assert getattr(cls, method) is not getattr(Provider, method), (
                f"{cls.__name__} declares 'results' but does not implement {method}()"
            )
