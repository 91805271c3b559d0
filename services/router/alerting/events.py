"""What the incident machinery tells the outside world: one :class:`AlertEvent` per change of
an incident (opened, escalated, reminder, acknowledged, resolved). Notification channels
(console, webhook, email, the fallback notice to a care unit) and deviation reports consume
these events; they never look at the rules that raised them.

An event carries no patient identity: at most the keyed pseudonym, a message id and the
HSA-ids of the care units involved.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Severity(enum.StrEnum):
    INFO = "info"  # for the record: e.g. a warning at 50 % of a deadline
    WARNING = "warning"  # someone should look today
    CRITICAL = "critical"  # a patient may go home without the receiver knowing: act now


class AlertChange(enum.StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"  # severity went up (e.g. a deadline breached)
    REMINDER = "reminder"  # still open; throttled re-notification
    AFFECTED = "affected"  # another patient's message joined the open incident
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: int
    change: AlertChange
    kind: str  # the failure class (services.router.routing.domain.AlertKind value)
    severity: Severity
    destination: str  # subscription / destination id, e.g. "treserva"
    family: str  # event code, e.g. "admission-notice"
    summary: str  # one line, English, no patient data
    affected: int  # deliveries or patients in this incident so far
    at: datetime
    # patient-level alerts and fallback notices (never a personnummer or a name)
    pseudonym: str | None = None
    message_id: str | None = None
    sender_unit_hsa: str | None = None  # the unit that sent the message: whom to phone
    receiver_unit_hsa: str | None = None  # the receiving unit, when the message names one
    due_at: datetime | None = None  # the deadline concerned, if any
