"""The request bodies of the API. A field's constraints say what is valid; ``Meta.extra``
may carry the error text for a kind of failure (``messages``), so that the message a
client gets is declared beside the rule it breaks.

``NULL_IS_ABSENT`` names the fields where an explicit ``null`` means "not sent" (the API
always took them that way); ``ALIASES`` names another key accepted instead of a field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.access.users import MAX_PASSWORD_BYTES
from flashfusion.core.runs.groups import MAX_RUNS as MAX_GROUP_RUNS
from flashfusion.core.runs.service import INPUT_NAME_PATTERN, MAX_INPUT_VALUE, MAX_INPUTS, REF_PATTERN, parse_inputs
from flashfusion.core.webhooks.management import MAX_DESCRIPTION
from flashfusion.core.webhooks.outbox import EVENT_TYPES

Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]

PipelineId = Annotated[str, Meta(min_length=1, max_length=64)]
Id = Annotated[str, Meta(min_length=1)]

_EVENTS_LIST = ", ".join(EVENT_TYPES)
Events = Annotated[
    list[EventType],
    Meta(
        description="Empty or absent: every event",
        extra={
            "messages": {
                "enum": "unknown event {value} (known: " + _EVENTS_LIST + ")",
                "type": "'events' must be an array of: " + _EVENTS_LIST,
            }
        },
    ),
]
WebhookPipelines = Annotated[
    list[str],
    Meta(
        description="Only events of these pipelines; empty or absent: the key's scope (every pipeline for an "
        "unscoped key)",
        extra={"messages": {"type": "'pipeline_ids' must be an array of pipeline ids"}},
    ),
]
Description = Annotated[
    str,
    Meta(
        max_length=MAX_DESCRIPTION,
        extra={"messages": {"any": f"'description' must be a string of at most {MAX_DESCRIPTION} characters"}},
    ),
]


class Body(Struct):
    NULL_IS_ABSENT: ClassVar[frozenset[str]] = frozenset()
    ALIASES: ClassVar[dict[str, str]] = {}
    #: A field whose own checker gives a more precise answer than the schema's text (naming
    #: the one input that is wrong, say): called with the raw value when decoding fails there.
    EXPLAIN: ClassVar[dict[str, Callable[[Any], object]]] = {}


# --- pipelines ------------------------------------------------------------------------


class TriggerPipelineRequest(Body):
    NULL_IS_ABSENT = frozenset({"branch", "inputs"})
    EXPLAIN = {"inputs": parse_inputs}

    pipeline_id: PipelineId
    branch: (
        Annotated[
            str,
            Meta(
                pattern=REF_PATTERN,
                max_length=255,
                extra={"messages": {"pattern": "'branch' is not a valid git ref name"}},
            ),
        ]
        | UnsetType
    ) = UNSET
    inputs: (
        Annotated[
            dict[Annotated[str, Meta(pattern=INPUT_NAME_PATTERN)], Annotated[str, Meta(max_length=MAX_INPUT_VALUE)]],
            Meta(
                max_length=MAX_INPUTS,
                extra={
                    "messages": {
                        "any": (
                            f"'inputs' must be a JSON object of at most {MAX_INPUTS} entries; each input name must match "
                            f"{INPUT_NAME_PATTERN} and each value must be a string of at most {MAX_INPUT_VALUE} characters"
                        )
                    }
                },
            ),
        ]
        | UnsetType
    ) = UNSET


class TriggerPipelinesRequest(Body):
    runs: Annotated[
        list[TriggerPipelineRequest],
        Meta(
            min_length=1,
            max_length=MAX_GROUP_RUNS,
            extra={"messages": {"length": f"'runs' must hold 1 to {MAX_GROUP_RUNS} runs"}},
        ),
    ]


class CancelRunRequest(Body):
    run_id: PipelineId


# --- access ---------------------------------------------------------------------------


class LoginRequest(Body):
    username: Annotated[str, Meta(min_length=1, max_length=100)]
    password: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_PASSWORD_BYTES,
            description=f"At most {MAX_PASSWORD_BYTES} bytes (UTF-8)",
            extra={"messages": {"length": f"'password' is longer than {MAX_PASSWORD_BYTES} bytes"}},
        ),
    ]


class CreateAPIKeyRequest(Body):
    name: Annotated[
        str,
        Meta(
            min_length=1, max_length=200, extra={"messages": {"any": "'name' must be a string of 1 to 200 characters"}}
        ),
    ]
    permissions: Annotated[
        list[Permission],
        Meta(
            min_length=1,
            extra={
                "messages": {
                    "enum": "unknown permission {value} (known: " + ", ".join(PERMISSIONS) + ")",
                    "any": "'permissions' must be a non-empty array of: " + ", ".join(PERMISSIONS),
                }
            },
        ),
    ]
    pipeline_ids: (
        Annotated[
            list[str],
            Meta(
                description="Pipeline scope; empty or absent: every pipeline",
                extra={"messages": {"any": "'pipeline_ids' must be an array of pipeline ids"}},
            ),
        ]
        | None
    ) = None
    expires_in_days: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=365,
                description="Default 90",
                extra={"messages": {"any": "'expires_in_days' must be an integer from 1 to 365"}},
            ),
        ]
        | None
    ) = None


class KeyIdRequest(Body):
    id: Annotated[
        str,
        Meta(
            min_length=1, description="The key's id (not the key)", extra={"messages": {"any": "'id' must be a key id"}}
        ),
    ]


# --- webhooks -------------------------------------------------------------------------


class CreateWebhookRequest(Body):
    url: Annotated[str, Meta(description="https URL; private addresses are refused unless allowed in config")]
    events: Events | None = None
    pipeline_ids: WebhookPipelines | None = None
    description: Description | None = None


class UpdateWebhookRequest(Body):
    id: Id
    url: str | UnsetType = UNSET
    events: Events | None | UnsetType = UNSET
    pipeline_ids: WebhookPipelines | None | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    enabled: Annotated[bool, Meta(description="true re-enables an endpoint disabled after failures")] | UnsetType = (
        UNSET
    )


class WebhookIdRequest(Body):
    id: Annotated[str, Meta(min_length=1, description="The webhook's id")]


class SendWebhookRequest(Body):
    event_type: Annotated[EventType, Meta(extra={"messages": {"any": "'event_type' must be one of: " + _EVENTS_LIST}})]
    pipeline_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=64,
            extra={"messages": {"any": "'pipeline_id' must be a string of at most 64 characters"}},
        ),
    ]
    payload: Annotated[dict[str, Any], Meta(description="Sent as the payload's data")]


class RedeliverRequest(Body):
    ALIASES = {"id": "delivery_id"}

    delivery_id: Id
    id: Annotated[str, Meta(description="Accepted instead of delivery_id")] | UnsetType = UNSET


class ReplayWebhooksRequest(Body):
    ALIASES = {"id": "webhook_id"}

    webhook_id: Id
    since: Annotated[
        str,
        Meta(
            description="ISO 8601 with a time zone",
            extra={"messages": {"missing": "'since' is required (an ISO 8601 time such as 2025-11-21T10:30:00Z)"}},
        ),
    ]
    id: Annotated[str, Meta(description="Accepted instead of webhook_id")] | UnsetType = UNSET
    failed_only: Annotated[bool, Meta(description="Only deliveries that failed")] = False


REQUESTS: tuple[type[Body], ...] = (
    TriggerPipelineRequest,
    CancelRunRequest,
    LoginRequest,
    CreateAPIKeyRequest,
    KeyIdRequest,
    CreateWebhookRequest,
    UpdateWebhookRequest,
    WebhookIdRequest,
    SendWebhookRequest,
    RedeliverRequest,
    ReplayWebhooksRequest,
)
