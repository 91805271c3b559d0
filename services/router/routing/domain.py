"""Delivery and alert state machines and retry back-off: pure, no I/O.

Delivery states::

    pending ──dispatch──▶ dispatched ──ok──▶ sent ──receipt──▶ confirmed
       ▲ ▲                   │  │           │      (a receipt may overtake the ok, and a
       │ └───────────────────┼──┼───────────┘ no receipt by the deadline: sent again
       └──transient/timeout──┘  │                   late ok or receipt of an earlier attempt
                                │                   may find the delivery pending again)
                                └──fatal, refused or attempts spent──▶ dead_letter
                                                                         │
                              pending ◀──replay by an operator (audited)─┘

    pending, dispatched, dead_letter ──the sender cancelled the message──▶ cancelled

``cancelled`` (services.router.routing.cancels): the sender cancelled the message
(makulering) before it was delivered, so it is not sent (again). Final: a late ok or receipt
of an attempt already in flight changes nothing, no confirmation deadline, legal deadline
or re-send runs for it, and an incident that named it counts it as settled. A message
already ``sent`` or ``confirmed`` is not stopped: the receiver holds it, and the
cancellation is delivered to it like any message.

``sent`` means the destination's API accepted the message; ``confirmed`` means the receiving
journal shows the record (a receipt). Alerts are incidents: open → acknowledged → resolved.

Episode states (a patient's stay as the messages tell it, :mod:`.episodes`)::

    admitted ──ready for discharge──▶ ready ──discharge notice──▶ discharged
       ▲  │                           │  │
       │  │        ◀──withdrawn───────┘  │
       │  └──process interrupted──▶ interrupted ◀──process interrupted──┘
       │                               │
       │          ready for discharge (a new readiness, a new clock) ──▶ ready
       │
    any current state (admitted, ready, interrupted) ──patient deceased──▶ deceased
                                                    ──admission cancelled──▶ cancelled
                                                    ──discharge notice──▶ discharged

A transfer to another ward keeps the state (a recorded self-transition); discharged,
cancelled and deceased are final.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.messaging.families import FAMILIES


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    SENT = "sent"
    CONFIRMED = "confirmed"
    DEAD_LETTER = "dead_letter"
    CANCELLED = "cancelled"  # the sender cancelled the message before it was delivered


_DELIVERY_TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    # From pending, sent/confirmed happen when a late result of an earlier attempt arrives;
    # pending again when an operator's replay makes a waiting delivery due at once.
    DeliveryState.PENDING: frozenset(
        {
            DeliveryState.PENDING,
            DeliveryState.DISPATCHED,
            DeliveryState.SENT,
            DeliveryState.CONFIRMED,
            DeliveryState.DEAD_LETTER,
            DeliveryState.CANCELLED,
        }
    ),
    # cancelled in flight: the attempt's result, whatever it is, changes nothing any more
    DeliveryState.DISPATCHED: frozenset(
        {
            DeliveryState.SENT,
            DeliveryState.CONFIRMED,
            DeliveryState.PENDING,
            DeliveryState.DEAD_LETTER,
            DeliveryState.CANCELLED,
        }
    ),
    # accepted but never confirmed (the receiver may have dropped it silently): sent again
    DeliveryState.SENT: frozenset(
        {DeliveryState.CONFIRMED, DeliveryState.DEAD_LETTER, DeliveryState.PENDING}
    ),
    DeliveryState.CONFIRMED: frozenset(),
    # an operator's replay (audited, see services/router/routing/replay.py); or the sender
    # cancelled it, so there is nothing left to replay
    DeliveryState.DEAD_LETTER: frozenset({DeliveryState.PENDING, DeliveryState.CANCELLED}),
    DeliveryState.CANCELLED: frozenset(),
}

UNFINISHED = frozenset({DeliveryState.PENDING, DeliveryState.DISPATCHED, DeliveryState.SENT})
# a delivery nothing more is expected of: the receiver holds it, or the sender cancelled it
SETTLED = frozenset({DeliveryState.CONFIRMED, DeliveryState.CANCELLED})
# what a cancellation stops (services.router.routing.cancels): not delivered yet
STOPPED_BY_CANCELLATION = frozenset(
    {DeliveryState.PENDING, DeliveryState.DISPATCHED, DeliveryState.DEAD_LETTER}
)


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


_ALERT_TRANSITIONS: dict[AlertState, frozenset[AlertState]] = {
    AlertState.OPEN: frozenset({AlertState.ACKNOWLEDGED, AlertState.RESOLVED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset(),
}


class EpisodeState(enum.StrEnum):
    ADMITTED = "admitted"
    READY = "ready"  # utskrivningsklar: the SIP and payment clocks run
    # avbrott: the discharge process is interrupted (the patient sicker, declining the
    # municipality's services); only a new ready-for-discharge notice restarts it
    INTERRUPTED = "interrupted"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"
    DECEASED = "deceased"  # the patient died during the stay: the process ends


_EPISODE_ENDS = frozenset({EpisodeState.DISCHARGED, EpisodeState.CANCELLED, EpisodeState.DECEASED})
_EPISODE_TRANSITIONS: dict[EpisodeState, frozenset[EpisodeState]] = {
    # admitted → admitted: a withdrawal that finds no readiness, or a transfer
    EpisodeState.ADMITTED: frozenset(
        {EpisodeState.ADMITTED, EpisodeState.READY, EpisodeState.INTERRUPTED} | _EPISODE_ENDS
    ),
    # ready → ready: a later ready notice (its clocks start again), or a transfer
    EpisodeState.READY: frozenset(
        {EpisodeState.READY, EpisodeState.ADMITTED, EpisodeState.INTERRUPTED} | _EPISODE_ENDS
    ),
    # interrupted → interrupted: a transfer, or the interruption told again (its first
    # time is kept); a withdrawal of a readiness that no longer runs changes nothing
    EpisodeState.INTERRUPTED: frozenset(
        {EpisodeState.INTERRUPTED, EpisodeState.READY} | _EPISODE_ENDS
    ),
    EpisodeState.DISCHARGED: frozenset(),
    EpisodeState.CANCELLED: frozenset(),
    EpisodeState.DECEASED: frozenset(),
}

CURRENT_EPISODE = frozenset({EpisodeState.ADMITTED, EpisodeState.READY, EpisodeState.INTERRUPTED})


class AlertKind(enum.StrEnum):
    CONFIRMATION_OVERDUE = "confirmation_overdue"  # accepted, then no receipt in time
    DELIVERY_FAILED = "delivery_failed"  # dead letter: fatal error or attempts spent
    DEADLINE_AT_RISK = "deadline_at_risk"  # a legal deadline near (50 %, 80 %) or breached
    SILENT_SOURCE = "silent_source"  # a source sent nothing where it should have
    EPISODE_GAP = "episode_gap"  # a stay misses a message (SIP invitation, medication list)
    DESTINATION_DOWN = "destination_down"  # its circuit open longer than allowed
    # one patient's deliveries keep failing while the destination takes the others
    PATIENT_PARKED = "patient_parked"
    # a webhook subscriber refuses our signature (401): clock skew or a secret out of step
    SIGNATURE_REFUSED = "signature_refused"
    # a stored payload no longer opens (its key left ROUTER_PAYLOAD_KEYS too early)
    PAYLOAD_UNDECRYPTABLE = "payload_undecryptable"
    # a Kafka record failed its signature check: forged, altered, or from an unknown key
    UNTRUSTED_RECORD = "untrusted_record"
    # a message held, not routed: its consent does not cover the unit it would be addressed
    # to, or the patient withdrew consent for its stay (an operator looks, nobody is sent it)
    CONSENT_HOLD = "consent_hold"


class IllegalTransition(Exception):
    """A state change the state machine does not allow."""

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind}: {current} → {target} is not allowed")
        self.current, self.target = current, target


def check_delivery_transition(current: DeliveryState, target: DeliveryState) -> None:
    if target not in _DELIVERY_TRANSITIONS[current]:
        raise IllegalTransition("delivery", current, target)


def check_alert_transition(current: AlertState, target: AlertState) -> None:
    if target not in _ALERT_TRANSITIONS[current]:
        raise IllegalTransition("alert", current, target)


def check_episode_transition(current: EpisodeState, target: EpisodeState) -> None:
    if target not in _EPISODE_TRANSITIONS[current]:
        raise IllegalTransition("episode", current, target)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with full jitter, capped, with an attempt budget."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int = 10
    max_age_s: float | None = None  # a message older than this is not retried again

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        """Delay before attempt ``attempt + 1``, after ``attempt`` failed attempts (≥ 1)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def too_old(self, sent_at: datetime, now: datetime) -> bool:
        return self.max_age_s is not None and (now - sent_at).total_seconds() > self.max_age_s


@dataclass(frozen=True, slots=True)
class FamilyPolicy:
    """Per event code: how long a receipt may take and how hard to retry. Who receives it
    is decided by subscriptions (:mod:`services.router.subscriptions.matching`)."""

    confirmation_deadline: timedelta
    retry: RetryPolicy


def default_policies(
    *,
    admission_confirmation_deadline: timedelta,
    confirmation_deadline: timedelta,
    retry: RetryPolicy,
) -> dict[str, FamilyPolicy]:
    return {
        event.value: FamilyPolicy(
            confirmation_deadline=(
                admission_confirmation_deadline
                if family.name == "admission-notice"
                else confirmation_deadline
            ),
            retry=retry,
        )
        for family in FAMILIES
        for event in family.events
    }
