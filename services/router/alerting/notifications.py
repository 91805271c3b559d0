"""The durable notification queue: what each alert event is told, to whom, on which channel.

The incident rules hand every :class:`AlertEvent` to :meth:`Notifier.enqueue` inside the
transaction that changed the alert (the outbox pattern), so a notification is never lost:
it commits with the alert or not at all. :class:`~services.router.alerting.sender.
NotificationSender` sends the rows afterwards, with retries.

Per event:

* every change → the ops webhook (if configured) and an email to each ops recipient;
* opened or escalated, of a kind where the receiving unit must act (:data:`UNIT_MUST_ACT`)
  → the **fallback notice** emailed to the receiving unit from the unit directory (outside
  its telefontid, to its on-call mailbox too);
* resolved, after a fallback notice went out → a follow-up to the same addresses.

The same (alert, change, channel, recipient) is queued once; a reminder also carries its
time, so each reminder is a notification of its own.

Notification states::

    pending ──sent──▶ sent
       │ ▲
       └─┘ transient failure: retried with capped exponential back-off
       │
       └──permanent failure, or attempts spent──▶ failed (logged; listed by the API)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.alerting.events import AlertChange, AlertEvent
from services.router.alerting.notices import fallback_notice, ops_notice, webhook_payload
from services.router.alerting.unit_directory import UnitDirectory
from services.router.routing.domain import IllegalTransition
from services.router.routing.tables import notification
from services.router.settings import RouterSettings


class NotificationState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # a unit's alarm still waiting for its email interval when its alert resolved: never
    # sent, so the unit never gets an alarm after the all-clear
    SUPERSEDED = "superseded"


_TRANSITIONS: dict[NotificationState, frozenset[NotificationState]] = {
    NotificationState.PENDING: frozenset(
        {
            NotificationState.PENDING,
            NotificationState.SENT,
            NotificationState.FAILED,
            NotificationState.SUPERSEDED,
        }
    ),
    NotificationState.SENT: frozenset(),
    NotificationState.FAILED: frozenset(),
    NotificationState.SUPERSEDED: frozenset(),
}


def check_notification_transition(current: NotificationState, target: NotificationState) -> None:
    if target not in _TRANSITIONS[current]:
        raise IllegalTransition("notification", current, target)


class Channel(enum.StrEnum):
    WEBHOOK = "webhook"  # ops: signed JSON POST
    EMAIL = "email"  # ops: one email per ops recipient
    FALLBACK_EMAIL = "fallback-email"  # the receiving care unit, in Swedish


@dataclass(frozen=True, slots=True)
class KindRule:
    """Alert kinds whose fallback notice goes to the receiving unit: a kind named exactly
    ``name`` or, with ``prefix``, any kind starting with it."""

    name: str
    prefix: bool = False

    def matches(self, kind: str) -> bool:
        return kind.startswith(self.name) if self.prefix else kind == self.name


UNIT_MUST_ACT: tuple[KindRule, ...] = (
    KindRule("confirmation_overdue"),  # accepted, then silently dropped (the Treserva fault)
    KindRule("delivery_failed"),  # dead letter: it will not arrive by itself
    KindRule("deadline", prefix=True),  # a legal deadline at risk or breached
    KindRule("episode", prefix=True),  # e.g. discharged with no medication list
)
NOTICE_CHANGES = frozenset({AlertChange.OPENED, AlertChange.ESCALATED, AlertChange.AFFECTED})


def unit_must_act(kind: str) -> bool:
    return any(rule.matches(kind) for rule in UNIT_MUST_ACT)


@dataclass(frozen=True, slots=True)
class Channels:
    """Which channels are on (from :class:`RouterSettings`, see :meth:`from_settings`)."""

    webhook_url: str | None = None
    ops_emails: tuple[str, ...] = ()
    email: bool = False  # an SMTP server is configured
    fallback_notices: bool = False

    @classmethod
    def from_settings(cls, settings: RouterSettings) -> Channels:
        return cls(
            webhook_url=settings.alert_webhook_url,
            ops_emails=tuple(settings.alert_ops_recipients),
            email=settings.alert_smtp_host is not None,
            fallback_notices=settings.alert_fallback_notices,
        )


class AlertNotifier(Protocol):
    """What the incident rules call with each alert event, inside their transaction."""

    async def enqueue(
        self, session: AsyncSession, event: AlertEvent, now: datetime
    ) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Notifier:
    channels: Channels
    directory: UnitDirectory

    async def enqueue(self, session: AsyncSession, event: AlertEvent, now: datetime) -> list[int]:
        """Queue this event's notifications in the caller's transaction; return the ids of
        the rows added (an event already queued adds none)."""
        ops = ops_notice(event, self.directory)
        rows: list[dict[str, Any]] = []
        patient_only = event.change is AlertChange.AFFECTED  # ops were told at the opening
        if self.channels.webhook_url and not patient_only:
            rows.append(
                _row(Channel.WEBHOOK, self.channels.webhook_url, ops.subject, ops.body)
                | {"payload": webhook_payload(event)}
            )
        if self.channels.email:
            if not patient_only:
                rows += [
                    _row(Channel.EMAIL, to, ops.subject, ops.body)
                    for to in self.channels.ops_emails
                ]
            if self.channels.fallback_notices:
                rows += await self._fallback(session, event)
        occurrence = (
            event.at.isoformat()
            if event.change is AlertChange.REMINDER
            else (event.message_id or event.pseudonym or event.at.isoformat())
            if patient_only
            else ""
        )
        ids: list[int] = []
        for row in rows:
            new_id = await _insert_once(
                session,
                row
                | {
                    "alert_id": event.alert_id,
                    "change": event.change.value,
                    "occurrence": occurrence,
                    "state": NotificationState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            )
            if new_id is not None:
                ids.append(new_id)
        return ids

    async def _fallback(self, session: AsyncSession, event: AlertEvent) -> list[dict[str, Any]]:
        """A fallback row per recipient, with the case references it names in its payload:
        the sender groups a unit's rows into one email per interval
        (:mod:`services.router.alerting.sender`)."""
        if not unit_must_act(event.kind):
            return []
        if event.change in NOTICE_CHANGES:
            notice = fallback_notice(event, self.directory)
            if notice is None:
                return []
            return [
                _row(Channel.FALLBACK_EMAIL, to, notice.subject, notice.body)
                | {"payload": {"references": [notice.reference], "allClear": False}}
                for to in notice.recipients
            ]
        if event.change is not AlertChange.RESOLVED:
            return []
        await _supersede_waiting_alarms(session, event.alert_id)
        rows = []
        for to, references in (await _noticed(session, event.alert_id)).items():
            # whoever was told, as the unit it was told as: an alert spans the messages of
            # several units (one per municipality), and its own event names none of them
            told = self.directory.unit_with_email(to)
            unit_event = replace(event, receiver_unit_hsa=told.hsa_id) if told else event
            notice = fallback_notice(unit_event, self.directory, references)
            if notice is not None:
                rows.append(
                    _row(Channel.FALLBACK_EMAIL, to, notice.subject, notice.body)
                    | {"payload": {"references": list(references), "allClear": True}}
                )
        return rows


def _row(channel: Channel, recipient: str, subject: str, body: str) -> dict[str, Any]:
    return {
        "channel": channel.value,
        "recipient": recipient,
        "subject": subject[:300],
        "body": body,
        "payload": None,
    }


def _unit_alarms(alert_id: int) -> Any:
    return and_(
        notification.c.alert_id == alert_id,
        notification.c.channel == Channel.FALLBACK_EMAIL.value,
        notification.c.change.in_([c.value for c in NOTICE_CHANGES]),
    )


async def _supersede_waiting_alarms(session: AsyncSession, alert_id: int) -> None:
    """The alert resolved: its alarms to units that no sender has taken yet (waiting for
    the unit's email interval) are never sent. One a sender holds (an attempt counted) may
    be on its way, and stays: the all-clear names it."""
    await session.execute(
        update(notification)
        .where(
            _unit_alarms(alert_id),
            notification.c.state == NotificationState.PENDING.value,
            notification.c.attempts == 0,
        )
        .values(state=NotificationState.SUPERSEDED.value)
    )


async def _noticed(session: AsyncSession, alert_id: int) -> dict[str, tuple[str, ...]]:
    """Per recipient, the case references of the alarms about ``alert_id`` it was sent, or
    that may be on their way to it."""
    rows = await session.execute(
        select(notification.c.recipient, notification.c.payload)
        .where(
            _unit_alarms(alert_id),
            notification.c.state.in_(
                [NotificationState.SENT.value, NotificationState.PENDING.value]
            ),
        )
        .order_by(notification.c.recipient, notification.c.id)
    )
    found: dict[str, list[str]] = {}
    for recipient, payload in rows.all():
        refs = found.setdefault(str(recipient), [])
        named: list[str] = payload.get("references", []) if isinstance(payload, dict) else []
        for ref in named:
            if ref not in refs:
                refs.append(str(ref))
    return {to: tuple(refs) for to, refs in found.items()}


async def _insert_once(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING on the dedupe key: a concurrent or repeated enqueue
    neither duplicates a notification nor aborts the caller's transaction."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(notification)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["alert_id", "change", "occurrence", "channel", "recipient"]
        )
        .returning(notification.c.id)
    )
    new_id = (await session.execute(stmt)).scalar()
    return int(new_id) if new_id is not None else None


class RecordingNotifier:
    """A fake :class:`AlertNotifier` for the incident rules' tests: keeps the events."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def enqueue(self, session: AsyncSession, event: AlertEvent, now: datetime) -> list[int]:
        self.events.append(event)
        return []
