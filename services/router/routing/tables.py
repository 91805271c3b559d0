"""The router's delivery log: messages, deliveries (one per destination), every attempt,
every state transition, alerts, and the subscriptions that decide the destinations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from services.messaging.db import BigId, UtcDateTime, metadata
from services.messaging.quarantine import rejected_record as rejected_record  # re-exported
from services.messaging.sealing import unsealed_where

PRUNED_PREFIX = "pruned:v1:"  # a pruned payload (services.router.audit.retention)
MESSAGE_UNSEALED = unsealed_where("payload", markers=(PRUNED_PREFIX,))
SUBSCRIPTION_UNSEALED = unsealed_where("secret")

message = Table(
    "message",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_code", String(60), nullable=False),
    Column("source", String(40), nullable=False),
    Column("business_key", String(200), nullable=True, unique=True),
    Column("pseudonym", String(32), nullable=True, index=True),
    Column("sent_at", UtcDateTime, nullable=False),  # Bundle.timestamp: accepted at the source
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    # Versioned families (SIP, medication list): "source|document id" and its version. A lower
    # version arriving after a higher one names the newer message here and is delivered
    # marked as superseded, never applied over it.
    Column("stream", String(200), nullable=True),
    Column("version", Integer, nullable=True),
    Column("superseded_by", String(36), nullable=True),
    # W3C traceparent of the router's hop for this message (a random trace id, no patient
    # data): each delivery command continues it (services.messaging.tracing)
    Column("traceparent", String(55), nullable=True),
    # why the message was stored but routed nowhere (services.router.routing.consent), e.g. a SIP
    # without the patient's consent; never patient data
    Column("unrouted_reason", String(200), nullable=True),
    # the case id every message of one stay carries (services.messaging.case): a pseudonymous
    # UUID, the console's and the ops API's case timeline; null for a message of no stay
    Column("case_id", String(36), nullable=True),
    Index("ix_message_case", "case_id", "sent_at", "id"),
    Index("ix_message_stream", "stream", "version"),
    Index("ix_message_arrivals", "source", "event_code", "received_at"),  # silent sources
    # message search, newest first by (received_at, id): see services/router/ops/message_search.py
    Index("ix_message_received", "received_at", "id"),
    Index("ix_message_event_received", "event_code", "received_at", "id"),
    Index("ix_message_source_received", "source", "received_at", "id"),
    # payloads written in clear before sealing, found at start-up (services.messaging.sealing)
    Index(
        "ix_message_unsealed",
        "id",
        sqlite_where=text(MESSAGE_UNSEALED),
        postgresql_where=text(MESSAGE_UNSEALED),
    ),
)

delivery = Table(
    "delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(36), ForeignKey("message.id"), nullable=False),
    Column("destination", String(40), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("attempt_expires_at", UtcDateTime, nullable=True),
    Column("confirm_by", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Column("overdue_alerted_at", UtcDateTime, nullable=True),
    # a sent delivery still unconfirmed at this time is sent again (a silent drop)
    Column("resend_at", UtcDateTime, nullable=True),
    Column("resend_every_s", Float, nullable=True),  # sent again this often, unconfirmed
    Column("last_error", String(500), nullable=True),
    # attempts made before the last replay: a replayed delivery gets a fresh attempt budget
    Column("attempts_at_replay", Integer, nullable=False, default=0, server_default="0"),
    # the router replica that dispatched the current attempt (its start-up sweep takes only
    # its own; see watchdog.sweep_in_flight)
    Column("dispatched_by", String(60), nullable=True),
    # the legal deadline (Lag 2017:612) of an unconfirmed delivery, and how far into it it is
    # (services.router.routing.deadlines.Stage); checked again at legal_check_at
    Column("legal_from", UtcDateTime, nullable=True),
    Column("legal_due_at", UtcDateTime, nullable=True),
    Column("legal_stage", Integer, nullable=False, server_default="0"),
    Column("legal_check_at", UtcDateTime, nullable=True, index=True),
    # the receipt's evidence (kvittens): the receiving journal's own id of the record and
    # when it stored it, as it told; null when it did not (or its adapter predates them)
    Column("receiver_record_id", String(64), nullable=True),
    Column("receiver_recorded_at", UtcDateTime, nullable=True),
    # the receiving unit (HSA-id) the router addressed, from the unit directory by the
    # patient's municipality or listed vårdcentral (services.router.routing.addressing);
    # null for a destination not addressed by unit (a webhook, TakeCare)
    Column("receiver_unit_hsa", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("message_id", "destination"),
    Index("ix_delivery_due", "state", "next_attempt_at"),
    Index("ix_delivery_confirm_by", "state", "confirm_by"),
    # messages with a delivery in a rare state (dead letters, unfinished), per destination;
    # also the per-state counts of the dashboard, read from the index alone
    Index("ix_delivery_state_destination", "state", "destination", "message_id"),
    Index("ix_delivery_created", "created_at", "state"),  # the dashboard's last 24 h
)

care_unit = Table(
    "care_unit",
    metadata,
    Column("hsa_id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # services.router.alerting.unit_directory.UnitKind
    Column("municipality", String(4), nullable=True),  # kommunkod; set for municipal units
    Column("channel", String(40), nullable=True),  # the destination system that reaches it
    Column("active", Boolean, nullable=False),
    Column("document", JSON, nullable=False),  # the unit as the directory file spells it
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(100), nullable=False),  # "seed" or the API client / person
)
"""The unit directory (services.router.alerting.unit_store): seeded from
``contracts/units/<region>.json`` when empty, then kept through the ops API. Rows are never
deleted: a unit is deactivated, for history."""

delivery_attempt = Table(
    "delivery_attempt",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigId, ForeignKey("delivery.id"), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=False),
    Column("dispatched_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("outcome", String(20), nullable=True),  # ok | transient-error | fatal-error | timeout
    Column("detail", String(500), nullable=True),
    UniqueConstraint("delivery_id", "attempt_no"),
)

delivery_transition = Table(
    "delivery_transition",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigId, ForeignKey("delivery.id"), nullable=False, index=True),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("reason", String(200), nullable=False),
)

alert = Table(
    "alert",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("destination", String(40), nullable=False),
    Column("event_code", String(60), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("affected", Integer, nullable=False),
    Column("summary", String(500), nullable=False),
    Column("severity", String(10), nullable=False, server_default="warning"),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("acknowledged_by", String(100), nullable=True),
    Column("resolved_by", String(100), nullable=True),  # an operator, or "router" (cause cleared)
    Column("resolution", String(500), nullable=True),
    Column("notified_at", UtcDateTime, nullable=True),  # last notification: throttles reminders
    Column("reminders", Integer, nullable=False, server_default="0"),
    Index("ix_alert_group", "kind", "destination", "event_code", "state"),
)

alert_delivery = Table(
    "alert_delivery",
    metadata,
    Column("alert_id", BigId, ForeignKey("alert.id"), nullable=False),
    Column("delivery_id", BigId, ForeignKey("delivery.id"), nullable=False),
    PrimaryKeyConstraint("alert_id", "delivery_id"),
)

# rejected_record: every service keeps one (services.messaging.quarantine)


replay_audit = Table(
    "replay_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("delivery_id", BigId, ForeignKey("delivery.id"), nullable=False, index=True),
    Column("message_id", String(36), nullable=False),
    Column("forced", Boolean, nullable=False),
    Column("outcome", String(200), nullable=False),  # "replayed" or why it was refused
)
"""Every replay request, granted or refused, per delivery."""


subscription = Table(
    "subscription",
    metadata,
    Column("id", String(40), primary_key=True),  # a System value, or "sub-" + hex
    Column("name", String(100), nullable=False),
    Column("criteria", JSON, nullable=False),  # {"events": [...], "sources": [...] or absent}
    Column("channel_type", String(20), nullable=False),  # kafka | rest-hook
    Column("endpoint", String(500), nullable=False),  # a topic name or an http(s) URL
    # Kept in clear because the router needs it to sign each webhook; issue 7 encrypts it at
    # rest. Never returned by the API and never logged.
    Column("secret", Text, nullable=True),  # sealed (subscription_store.seal_secret)
    Column("status", String(10), nullable=False),  # pending | active | off
    Column("managed_by", String(40), nullable=True),  # "catalogue"; null: created by the API
    # two admins (issue 19): the API client that created it and the other one that
    # activated it; null on the catalogue's rows and on rows older than migration 0028
    Column("created_by", String(100), nullable=True),
    Column("activated_by", String(100), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""Who receives what (see services/router/subscriptions/matching.py). ``delivery.destination`` is a
subscription id. Rows are never deleted: a subscription is switched off, for history."""


deviation = Table(
    "deviation",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # failure class, an open set: see services.router.deviations.records.DeviationKind
    Column("kind", String(40), nullable=False),
    Column("message_id", String(36), nullable=True, index=True),
    # by the delivery alone: every confirmation closes its deviations (close_deviation)
    Column("delivery_id", BigId, ForeignKey("delivery.id"), nullable=True, index=True),
    Column("family", String(60), nullable=False),  # event code
    Column("source", String(40), nullable=False),
    Column("destination", String(40), nullable=False),
    Column("sender_unit_hsa", String(64), nullable=True),
    Column("receiver_unit_hsa", String(64), nullable=True),
    Column("pseudonym", String(32), nullable=True),  # keyed pseudonym, never a personnummer
    Column("occurred_at", UtcDateTime, nullable=True),  # the care event, e.g. the admission
    Column("due_at", UtcDateTime, nullable=True),
    Column("detected_at", UtcDateTime, nullable=False, index=True),
    Column("resolved_at", UtcDateTime, nullable=True),  # the message finally got through
    Column("lateness_s", Integer, nullable=True),
    Column("description", String(500), nullable=False),  # plain Swedish, no patient data
    Column("alert_id", BigId, ForeignKey("alert.id"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # NULLs are distinct on SQLite and PostgreSQL alike: this holds one deviation per failed
    # delivery and kind, and leaves deviations without a delivery (episode gaps) alone.
    UniqueConstraint("kind", "delivery_id"),
)
"""Avvikelse i samverkan: one row per failed or late notification, counted and exported for a
deviation system (see services/router/deviations/records.py). Rows are never deleted."""

notification = Table(
    "notification",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, nullable=False, index=True),
    Column("change", String(20), nullable=False),  # an AlertChange value
    # "" except for reminders, which carry their time: each reminder is a new notification
    Column("occurrence", String(40), nullable=False, server_default=""),
    Column("channel", String(20), nullable=False),  # webhook | email | fallback-email
    Column("recipient", String(500), nullable=False),  # a URL or an email address
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", JSON, nullable=True),  # the webhook's JSON
    Column("state", String(10), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    UniqueConstraint("alert_id", "change", "occurrence", "channel", "recipient"),
    Index("ix_notification_due", "state", "next_attempt_at"),
)
"""The durable queue of alert notifications (see services/router/alerting/notifications.py):
written in the transaction that changes the alert, sent by the NotificationSender. No patient
identity."""
