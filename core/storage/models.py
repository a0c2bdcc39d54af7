"""The tables. Schema changes go through ``migrations.py``; these classes describe the
newest version."""

from __future__ import annotations

import peewee

from flashfusion.core.storage.db import JSONField, database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class ApiKey(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.CharField(max_length=200)
    key_hash = peewee.CharField(max_length=64, unique=True)
    key_preview = peewee.CharField(max_length=20)
    permissions = JSONField()
    pipeline_ids = JSONField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)
    last_used = peewee.DateTimeField(null=True)
    usage_count = peewee.BigIntegerField(default=0)
    created_by = peewee.CharField(max_length=200, default="cli")
    owner_id = peewee.CharField(max_length=40, null=True)
    previous_key_hash = peewee.CharField(max_length=64, null=True)
    previous_expires_at = peewee.DateTimeField(null=True)
    rl_tat = peewee.DoubleField(null=True)
    rl_granted = peewee.IntegerField(default=0)


class Run(BaseModel):
    """A pipeline run. Only changed columns are written back (a run row is wide)."""

    id = peewee.CharField(primary_key=True, max_length=40)
    pipeline_id = peewee.CharField(max_length=64, index=True)
    provider = peewee.CharField(max_length=64)
    ref = peewee.CharField(max_length=255)
    inputs = JSONField()
    api_key_id = peewee.CharField(max_length=40, null=True)
    status = peewee.CharField(max_length=16)
    phase = peewee.CharField(max_length=16)
    conclusion = peewee.CharField(max_length=32, null=True)
    provider_status = peewee.CharField(max_length=64, null=True)
    workflow_id = peewee.CharField(max_length=255, null=True)
    upstream_id = peewee.CharField(max_length=255, null=True)
    api_url = peewee.TextField(null=True)
    html_url = peewee.TextField(null=True)
    deployment_url = peewee.TextField(null=True)
    error_message = peewee.TextField(null=True)
    steps = JSONField()
    state = JSONField()
    cancel_requested = peewee.BooleanField(default=False)
    cancel_sent = peewee.BooleanField(default=False)
    version = peewee.IntegerField(default=1)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    lease_owner = peewee.CharField(max_length=64, null=True)
    lease_until = peewee.DateTimeField(null=True)
    trigger = JSONField(null=True)  # what started the run (runs.triggers); null only before migration 6
    #: set by the completing transition: when the ``run_finished`` hooks are due (again);
    #: cleared with the ``optimization.available`` event they produce, in one transaction
    hooks_due_at = peewee.DateTimeField(null=True)
    started_upstream = peewee.BooleanField(default=False)
    # what the run gave back and how its quality gates went (runs.results), set by the
    # completing transition; null until then
    outputs = JSONField(null=True)
    artifacts = JSONField(null=True)
    quality_gates = JSONField(null=True)
    group_id = peewee.CharField(max_length=40, null=True, index=True)  # runs started together (runs.groups)

    class Meta:
        only_save_dirty = True


class RunGroup(BaseModel):
    """Runs started by one trigger-pipelines request. ``completed_at`` is set, and
    ``group.completed`` published, by the transition that ends its last run."""

    id = peewee.CharField(primary_key=True, max_length=40)
    api_key_id = peewee.CharField(max_length=40, null=True)
    created_at = peewee.DateTimeField()
    completed_at = peewee.DateTimeField(null=True)


class Event(BaseModel):
    """The outbox: one row per event, written in the transaction that caused it."""

    id = peewee.CharField(primary_key=True, max_length=40)
    event_type = peewee.CharField(max_length=40)
    pipeline_id = peewee.CharField(max_length=64)
    run_id = peewee.CharField(max_length=40, null=True)
    payload = JSONField()
    created_at = peewee.DateTimeField()


class RunClaim(BaseModel):
    """A key that may start a run once, with the run it started (NULL until there is one).
    Each subclass is a table keyed by its own (scope, key) pair."""

    run_id = peewee.CharField(max_length=40, null=True)
    created_at = peewee.DateTimeField()


class IdempotencyKey(RunClaim):
    api_key_id = peewee.CharField(max_length=40)
    key = peewee.CharField(max_length=255)
    request_hash = peewee.CharField(max_length=64)

    class Meta:
        primary_key = peewee.CompositeKey("api_key_id", "key")


class User(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    username = peewee.CharField(max_length=100, unique=True)
    password_hash = peewee.CharField(max_length=255)
    is_admin = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()
    password_changed_at = peewee.DateTimeField()
    disabled_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "app_user"


class Session(BaseModel):
    """A login. Only the SHA-256 of the cookie's token is stored."""

    id = peewee.CharField(primary_key=True, max_length=40)
    token_hash = peewee.CharField(max_length=64, unique=True)
    user_id = peewee.CharField(max_length=40)
    created_at = peewee.DateTimeField()
    last_seen_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()
    client_addr = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "user_session"


class RateLimit(BaseModel):
    bucket = peewee.CharField(primary_key=True, max_length=200)
    tat = peewee.DoubleField()
    allowed = peewee.BooleanField(default=True)


class AuditEvent(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    at = peewee.DateTimeField()
    actor = peewee.CharField(max_length=200)
    action = peewee.CharField(max_length=64)
    target = peewee.CharField(max_length=200, null=True)
    client_addr = peewee.CharField(max_length=64, null=True)
    key_preview = peewee.CharField(max_length=20, null=True)
    detail = JSONField()


class SchemaMigration(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=100)
    applied_at = peewee.DateTimeField()


class WebhookEndpoint(BaseModel):
    """A webhook endpoint. Secrets are stored encrypted (``webhooks/crypto.py``). The outbox
    ``event`` table also has a ``fanned_out`` column (m003) that only ``webhooks/outbox.py`` uses."""

    id = peewee.CharField(primary_key=True, max_length=40)
    url = peewee.TextField()
    description = peewee.CharField(max_length=500, default="")
    events = JSONField()
    pipeline_ids = JSONField()
    secret_enc = peewee.TextField()
    previous_secret_enc = peewee.TextField(null=True)
    previous_expires_at = peewee.DateTimeField(null=True)
    owner_id = peewee.CharField(max_length=40, null=True)
    created_by = peewee.CharField(max_length=200)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    disabled_at = peewee.DateTimeField(null=True)
    disabled_reason = peewee.CharField(max_length=200, null=True)
    failing_since = peewee.DateTimeField(null=True)
    last_success_at = peewee.DateTimeField(null=True)
    deleted_at = peewee.DateTimeField(null=True)


class WebhookDelivery(BaseModel):
    """One event for one endpoint; its body is serialized once and sent as is on every attempt."""

    id = peewee.CharField(primary_key=True, max_length=40)
    endpoint_id = peewee.CharField(max_length=40)
    event_id = peewee.CharField(max_length=40)
    event_type = peewee.CharField(max_length=40)
    pipeline_id = peewee.CharField(max_length=64, null=True)
    body = peewee.TextField()
    status = peewee.CharField(max_length=16)  # pending, succeeded, failed
    attempts = peewee.IntegerField(default=0)
    rate_counted = peewee.BooleanField(default=False)
    next_attempt_at = peewee.DateTimeField(null=True)
    lease_owner = peewee.CharField(max_length=80, null=True)
    lease_until = peewee.DateTimeField(null=True)
    last_status_code = peewee.IntegerField(null=True)
    last_error = peewee.CharField(max_length=300, null=True)
    last_latency_ms = peewee.IntegerField(null=True)
    last_response = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    delivered_at = peewee.DateTimeField(null=True)


class WebhookAttempt(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    delivery_id = peewee.CharField(max_length=40)
    attempt = peewee.IntegerField()
    worker = peewee.CharField(max_length=80, null=True)
    started_at = peewee.DateTimeField()
    status_code = peewee.IntegerField(null=True)
    latency_ms = peewee.IntegerField(null=True)
    error = peewee.CharField(max_length=300, null=True)
    response_excerpt = peewee.TextField(null=True)


class TriggerClaim(RunClaim):
    """A trigger that starts a pipeline at most once: a pushed commit, a schedule's due time."""

    pipeline_id = peewee.CharField(max_length=64)
    claim_key = peewee.CharField(max_length=300)

    class Meta:
        primary_key = peewee.CompositeKey("pipeline_id", "claim_key")


class InboundHook(BaseModel):
    """The inbox of provider webhooks: the raw delivery, stored by the receiver and applied
    once by a worker. ``repository`` is filled in when the delivery is applied."""

    id = peewee.AutoField()
    provider = peewee.CharField(max_length=64)
    delivery_id = peewee.CharField(max_length=200)
    event = peewee.CharField(max_length=64)
    headers = JSONField()
    body = peewee.TextField()
    received_at = peewee.DateTimeField()
    repository = peewee.CharField(max_length=255, null=True)
    outcome = peewee.CharField(max_length=200, null=True)
    applied_at = peewee.DateTimeField(null=True)
    lease_owner = peewee.CharField(max_length=80, null=True)
    lease_until = peewee.DateTimeField(null=True)
