"""Everything a FlashFusion plugin author imports.

A provider plugin is a module (or package) that defines ``@hookimpl`` functions and is
listed in the ``flashfusion`` entry-point group of its distribution::

    [project.entry-points.flashfusion]
    bitbucket = "flashfusion_bitbucket.plugin"

Built-in providers (``flashfusion.providers.*``) import only this package, exactly as a
third-party plugin does.
"""

from flashfusion.plugins.errors import (
    ArtifactGone,
    PipelineConfigError,
    ProviderError,
    UpstreamAuthError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from flashfusion.plugins.events import DeliveryRejected, InboundDelivery, InboundEvent
from flashfusion.plugins.markers import hookimpl, hookspec
from flashfusion.plugins.provider import Provider
from flashfusion.plugins.types import (
    PHASES,
    RUN_STATUSES,
    Artifact,
    Budget,
    Dispatch,
    Pipeline,
    PipelineStep,
    RepositoryLinks,
    RunRef,
    RunResults,
    RunSnapshot,
    StepResult,
)

__all__ = [
    "Artifact",
    "ArtifactGone",
    "Budget",
    "DeliveryRejected",
    "Dispatch",
    "InboundDelivery",
    "InboundEvent",
    "PHASES",
    "Pipeline",
    "PipelineConfigError",
    "PipelineStep",
    "Provider",
    "ProviderError",
    "RUN_STATUSES",
    "RepositoryLinks",
    "RunRef",
    "RunResults",
    "RunSnapshot",
    "StepResult",
    "UpstreamAuthError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "hookimpl",
    "hookspec",
]
