"""The schema migrations themselves, in order: each a function of the database, run inside
one transaction by ``migrations.migrate``. A migration is never edited once released: add the
next one. The DDL is written out here (not derived from ``models.py``) so that old migrations
keep producing the schema they produced when they were written.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import peewee

from flashfusion.core.storage.db import is_sqlite

TYPES = {
    "sqlite": {
        "ts": "DATETIME",
        "json": "TEXT",
        "bool": "INTEGER",
        "bigint": "INTEGER",
        "text": "TEXT",
        "double": "REAL",
    },
    "postgres": {
        "ts": "TIMESTAMP",
        "json": "TEXT",
        "bool": "BOOLEAN",
        "bigint": "BIGINT",
        "text": "TEXT",
        "double": "DOUBLE PRECISION",
    },
}


def ddl(db: peewee.Database, statements: list[str]) -> None:
    types = TYPES["sqlite" if is_sqlite(db) else "postgres"]
    for statement in statements:
        db.execute_sql(statement.format(**types))


def m001_initial(db: peewee.Database) -> None:
    ddl(
        db,
        [
            """CREATE TABLE api_key (
            id VARCHAR(40) PRIMARY KEY,
            name VARCHAR(200) NOT NULL,
            key_hash VARCHAR(64) NOT NULL UNIQUE,
            key_preview VARCHAR(20) NOT NULL,
            permissions {json} NOT NULL,
            pipeline_ids {json} NOT NULL,
            created_at {ts} NOT NULL,
            expires_at {ts},
            revoked_at {ts},
            last_used {ts},
            usage_count {bigint} NOT NULL DEFAULT 0,
            created_by VARCHAR(200) NOT NULL DEFAULT 'cli')""",
            """CREATE TABLE run (
            id VARCHAR(40) PRIMARY KEY,
            pipeline_id VARCHAR(64) NOT NULL,
            provider VARCHAR(64) NOT NULL,
            ref VARCHAR(255) NOT NULL,
            inputs {json} NOT NULL,
            api_key_id VARCHAR(40),
            status VARCHAR(16) NOT NULL,
            phase VARCHAR(16) NOT NULL,
            conclusion VARCHAR(32),
            provider_status VARCHAR(64),
            workflow_id VARCHAR(255),
            upstream_id VARCHAR(255),
            api_url {text},
            html_url {text},
            deployment_url {text},
            error_message {text},
            steps {json} NOT NULL,
            state {json} NOT NULL,
            cancel_requested {bool} NOT NULL DEFAULT FALSE,
            cancel_sent {bool} NOT NULL DEFAULT FALSE,
            version INTEGER NOT NULL DEFAULT 1,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            started_at {ts},
            finished_at {ts},
            lease_owner VARCHAR(64),
            lease_until {ts})""",
            "CREATE INDEX run_pipeline_created ON run (pipeline_id, created_at)",
            "CREATE INDEX run_created ON run (created_at)",
            "CREATE INDEX run_phase_lease ON run (phase, lease_until)",
            """CREATE TABLE event (
            id VARCHAR(40) PRIMARY KEY,
            event_type VARCHAR(40) NOT NULL,
            pipeline_id VARCHAR(64) NOT NULL,
            run_id VARCHAR(40),
            payload {json} NOT NULL,
            created_at {ts} NOT NULL)""",
            "CREATE UNIQUE INDEX event_run_type ON event (run_id, event_type)",
            """CREATE TABLE idempotency_key (
            api_key_id VARCHAR(40) NOT NULL,
            key VARCHAR(255) NOT NULL,
            request_hash VARCHAR(64) NOT NULL,
            run_id VARCHAR(40),
            created_at {ts} NOT NULL,
            PRIMARY KEY (api_key_id, key))""",
        ],
    )


def m002_access_control(db: peewee.Database) -> None:
    ddl(
        db,
        [
            "ALTER TABLE api_key ADD COLUMN owner_id VARCHAR(40)",
            "ALTER TABLE api_key ADD COLUMN previous_key_hash VARCHAR(64)",
            "ALTER TABLE api_key ADD COLUMN previous_expires_at {ts}",
            "ALTER TABLE api_key ADD COLUMN rl_tat {double}",
            "ALTER TABLE api_key ADD COLUMN rl_allowed {bool} NOT NULL DEFAULT TRUE",
            "CREATE INDEX api_key_previous_hash ON api_key (previous_key_hash)",
            """CREATE TABLE app_user (
            id VARCHAR(40) PRIMARY KEY,
            username VARCHAR(100) NOT NULL UNIQUE,
            password_hash VARCHAR(255) NOT NULL,
            is_admin {bool} NOT NULL DEFAULT FALSE,
            created_at {ts} NOT NULL,
            password_changed_at {ts} NOT NULL,
            disabled_at {ts})""",
            """CREATE TABLE user_session (
            id VARCHAR(40) PRIMARY KEY,
            token_hash VARCHAR(64) NOT NULL UNIQUE,
            user_id VARCHAR(40) NOT NULL,
            created_at {ts} NOT NULL,
            last_seen_at {ts} NOT NULL,
            expires_at {ts} NOT NULL,
            client_addr VARCHAR(64))""",
            "CREATE INDEX user_session_user ON user_session (user_id)",
            """CREATE TABLE rate_limit (
            bucket VARCHAR(200) PRIMARY KEY,
            tat {double} NOT NULL,
            allowed {bool} NOT NULL DEFAULT TRUE)""",
            """CREATE TABLE audit_event (
            id VARCHAR(40) PRIMARY KEY,
            at {ts} NOT NULL,
            actor VARCHAR(200) NOT NULL,
            action VARCHAR(64) NOT NULL,
            target VARCHAR(200),
            client_addr VARCHAR(64),
            key_preview VARCHAR(20),
            detail {json} NOT NULL)""",
            "CREATE INDEX audit_event_at ON audit_event (at)",
        ],
    )


def m003_webhooks(db: peewee.Database) -> None:
    ddl(
        db,
        [
            # Outbox rows not yet fanned out to webhook endpoints; rows older than webhooks are done.
            "ALTER TABLE event ADD COLUMN fanned_out {bool} NOT NULL DEFAULT FALSE",
            "UPDATE event SET fanned_out = TRUE",
            "CREATE INDEX event_fanned_out ON event (fanned_out, created_at)",
            """CREATE TABLE webhook_endpoint (
            id VARCHAR(40) PRIMARY KEY,
            url {text} NOT NULL,
            description VARCHAR(500) NOT NULL DEFAULT '',
            events {json} NOT NULL,
            pipeline_ids {json} NOT NULL,
            secret_enc {text} NOT NULL,
            previous_secret_enc {text},
            previous_expires_at {ts},
            owner_id VARCHAR(40),
            created_by VARCHAR(200) NOT NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            disabled_at {ts},
            disabled_reason VARCHAR(200),
            failing_since {ts},
            last_success_at {ts},
            deleted_at {ts})""",
            """CREATE TABLE webhook_delivery (
            id VARCHAR(40) PRIMARY KEY,
            endpoint_id VARCHAR(40) NOT NULL,
            event_id VARCHAR(40) NOT NULL,
            event_type VARCHAR(40) NOT NULL,
            pipeline_id VARCHAR(64),
            body {text} NOT NULL,
            status VARCHAR(16) NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            rate_counted {bool} NOT NULL DEFAULT FALSE,
            next_attempt_at {ts},
            lease_owner VARCHAR(80),
            lease_until {ts},
            last_status_code INTEGER,
            last_error VARCHAR(300),
            last_latency_ms INTEGER,
            last_response {text},
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            delivered_at {ts})""",
            "CREATE INDEX webhook_delivery_due ON webhook_delivery (status, next_attempt_at)",
            "CREATE INDEX webhook_delivery_endpoint ON webhook_delivery (endpoint_id, created_at)",
            "CREATE INDEX webhook_delivery_event ON webhook_delivery (event_id)",
            """CREATE TABLE webhook_attempt (
            id VARCHAR(40) PRIMARY KEY,
            delivery_id VARCHAR(40) NOT NULL,
            attempt INTEGER NOT NULL,
            worker VARCHAR(80),
            started_at {ts} NOT NULL,
            status_code INTEGER,
            latency_ms INTEGER,
            error VARCHAR(300),
            response_excerpt {text})""",
            "CREATE INDEX webhook_attempt_delivery ON webhook_attempt (delivery_id, attempt)",
        ],
    )


def m004_key_batches(db: peewee.Database) -> None:
    """How many requests the latest write of a key let through: one write now decides for
    every request of a process that queued behind it. It replaces the yes/no of one request."""
    ddl(
        db,
        [
            "ALTER TABLE api_key ADD COLUMN rl_granted INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE api_key DROP COLUMN rl_allowed",
        ],
    )


def m005_drop_rl_allowed(db: peewee.Database) -> None:
    """Migration 004 was edited after its release to also drop ``api_key.rl_allowed``, so
    databases migrated with the released 004 still have that column. Drop it where it is
    left; databases migrated with the edited 004 are already there."""
    if "rl_allowed" in {column.name for column in db.get_columns("api_key")}:
        ddl(db, ["ALTER TABLE api_key DROP COLUMN rl_allowed"])


def m006_run_triggers(db: peewee.Database) -> None:
    """What started each run (``run.trigger``), and one row per trigger that may start a
    pipeline only once (a pushed commit, a schedule's due time). Existing runs started by an
    API key record that key; the others are "unknown"."""
    ddl(
        db,
        [
            'ALTER TABLE run ADD COLUMN "trigger" {json}',
            """CREATE TABLE trigger_claim (
                  pipeline_id VARCHAR(64) NOT NULL,
                  claim_key VARCHAR(300) NOT NULL,
                  run_id VARCHAR(40),
                  created_at {ts} NOT NULL,
                  PRIMARY KEY (pipeline_id, claim_key))""",
        ],
    )
    keys = db.execute_sql(
        "SELECT DISTINCT k.id, k.name, k.key_preview FROM run r JOIN api_key k ON k.id = r.api_key_id"
    )
    for key_id, name, preview in keys.fetchall():
        trigger = json.dumps({"kind": "api", "key_name": name, "key_preview": preview})
        db.execute_sql(f'UPDATE run SET "trigger" = {db.param} WHERE api_key_id = {db.param}', (trigger, key_id))
    db.execute_sql(f'UPDATE run SET "trigger" = {db.param} WHERE "trigger" IS NULL', (json.dumps({"kind": "unknown"}),))


def m007_run_hooks_due(db: peewee.Database) -> None:
    """When a finished run's ``run_finished`` hooks are due; NULL (every existing run): done."""
    ddl(db, ["ALTER TABLE run ADD COLUMN hooks_due_at {ts}", "CREATE INDEX run_hooks_due ON run (hooks_due_at)"])


def m008_inbound_hooks(db: peewee.Database) -> None:
    """The inbox of provider webhooks (one row per delivery id, applied once by a worker) and
    the mark of runs that upstream started itself, unique per upstream run and pipeline."""
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite(db) else "BIGSERIAL PRIMARY KEY"
    ddl(
        db,
        [
            f"""CREATE TABLE inbound_hook (
            id {serial},
            provider VARCHAR(64) NOT NULL,
            delivery_id VARCHAR(200) NOT NULL,
            event VARCHAR(64) NOT NULL,
            headers {{json}} NOT NULL,
            body {{text}} NOT NULL,
            received_at {{ts}} NOT NULL,
            repository VARCHAR(255),
            outcome VARCHAR(200),
            applied_at {{ts}},
            lease_owner VARCHAR(80),
            lease_until {{ts}})""",
            "CREATE UNIQUE INDEX inbound_hook_delivery ON inbound_hook (provider, delivery_id)",
            "CREATE INDEX inbound_hook_pending ON inbound_hook (id) WHERE applied_at IS NULL",
            "CREATE INDEX inbound_hook_source ON inbound_hook (provider, repository, received_at)",
            "CREATE INDEX inbound_hook_received ON inbound_hook (received_at)",
            "ALTER TABLE run ADD COLUMN started_upstream {bool} NOT NULL DEFAULT FALSE",
            "CREATE UNIQUE INDEX run_started_upstream ON run (pipeline_id, upstream_id) WHERE started_upstream = TRUE",
        ],
    )


BACKUP_RECORD_DDL = """CREATE TABLE IF NOT EXISTS backup_record (
    id VARCHAR(40) PRIMARY KEY,
    taken_at {ts} NOT NULL,
    destination {text} NOT NULL,
    schema_version INTEGER NOT NULL)"""


def create_backup_record_table(db: peewee.Database) -> None:
    """The backups ``flashfusion backup`` took, so ``flashfusion migrate`` can ask for a recent
    one. ``IF NOT EXISTS``: ``backup`` creates the table itself on a database older than 9."""
    ddl(db, [BACKUP_RECORD_DDL])


m009_backup_record = create_backup_record_table


def m010_run_results(db: peewee.Database) -> None:
    """A run's outputs, artifacts and quality gate results (NULL on existing runs: none), and
    groups of runs started together (``trigger-pipelines``)."""
    ddl(
        db,
        [
            "ALTER TABLE run ADD COLUMN outputs {json}",
            "ALTER TABLE run ADD COLUMN artifacts {json}",
            "ALTER TABLE run ADD COLUMN quality_gates {json}",
            "ALTER TABLE run ADD COLUMN group_id VARCHAR(40)",
            "CREATE INDEX run_group_id ON run (group_id)",
            """CREATE TABLE run_group (
            id VARCHAR(40) PRIMARY KEY,
            api_key_id VARCHAR(40),
            created_at {ts} NOT NULL,
            completed_at {ts})""",
        ],
    )


MIGRATIONS: list[tuple[int, str, Callable[[peewee.Database], None]]] = [
    (1, "initial", m001_initial),
    (2, "access_control", m002_access_control),
    (3, "webhooks", m003_webhooks),
    (4, "key_batches", m004_key_batches),
    (5, "drop_rl_allowed", m005_drop_rl_allowed),
    (6, "run_triggers", m006_run_triggers),
    (7, "run_hooks_due", m007_run_hooks_due),
    (8, "inbound_hooks", m008_inbound_hooks),
    (9, "backup_record", m009_backup_record),
    (10, "run_results", m010_run_results),
]
