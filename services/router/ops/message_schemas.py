"""Response models of the message search and message detail (``/api/v1/messages``): the
metadata :mod:`services.router.ops.message_search` and :func:`queries.message_detail` read,
snake_case keys as the columns are named. Never a payload."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.router.ops.schema_base import ResponseModel, Timestamp
from services.router.routing.domain import DeliveryState


class DeliveryOut(ResponseModel):
    """One delivery of a message: one per destination."""

    id: int
    message_id: str
    destination: str = Field(description="a journal system or a subscription id")
    state: DeliveryState
    attempts: int = Field(description="attempts made so far")
    confirm_by: Timestamp
    sent_at: Timestamp | None
    confirmed_at: Timestamp | None
    last_error: str | None
    legal_due_at: Timestamp | None = Field(description="the legal deadline, if one applies")
    receiver_unit_hsa: str | None = Field(
        description="HSA-id of the receiving unit the delivery is addressed to (the "
        "municipality's home-care unit, the listed vårdcentral); null: not addressed by unit"
    )


class AttemptOut(ResponseModel):
    attempt_no: int
    dispatched_at: Timestamp
    completed_at: Timestamp | None = Field(description="null while the attempt is in flight")
    outcome: str | None = Field(description="ok, transient-error, fatal-error or timeout")
    detail: str | None


class TransitionOut(ResponseModel):
    from_state: DeliveryState | None = Field(description="null when the delivery was created")
    to_state: DeliveryState
    at: Timestamp
    reason: str


class DeliveryDetailOut(DeliveryOut):
    """A delivery with every attempt and every state transition, oldest first, and its
    deadlines: the legal one (``legal_due_at``) and the working-day one."""

    working_due_at: Timestamp | None = Field(
        description=(
            "the working-day deadline, where a regional agreement counts working days by the"
            " Swedish calendar (a ready-for-discharge notice to a municipality: when its days"
            " before it pays for the bed end); Stockholm time with its offset"
        )
    )
    deadline_time_zone: Literal["Europe/Stockholm"] = Field(
        description="the time zone the deadlines' days and holidays are counted in"
    )
    attempts_log: list[AttemptOut]
    transitions: list[TransitionOut]


class _MessageFields(ResponseModel):
    id: str
    event_code: str = Field(description="the message family")
    source: str = Field(description="the sending system")
    pseudonym: str | None = Field(description="the patient's keyed pseudonym")
    business_key: str | None
    sent_at: Timestamp = Field(description="Bundle.timestamp: accepted at the source")
    received_at: Timestamp
    version: int | None = Field(description="versioned families (SIP, medication list)")
    superseded_by: str | None = Field(description="the id of the newer version, if any")
    unrouted_reason: str | None = Field(description="why it was routed nowhere, if it was not")
    case_id: str | None = Field(
        description="the case (every message of one stay) it belongs to; null: it names no stay"
    )


class MessageOut(_MessageFields):
    deliveries: list[DeliveryOut]


class MessageDetailOut(_MessageFields):
    deliveries: list[DeliveryDetailOut]


class MessagePageOut(ResponseModel):
    """Messages newest first; ``next`` is the cursor of the next page (null on the last)."""

    count: int
    items: list[MessageOut]
    next: str | None


class CaseDeliveryOut(DeliveryOut):
    """A delivery in a case's timeline, with its working-day deadline where one applies."""

    working_due_at: Timestamp | None = Field(
        description="the working-day deadline (see DeliveryDetailOut); Stockholm time"
    )


class CaseMessageOut(_MessageFields):
    deliveries: list[CaseDeliveryOut]


class CaseOut(ResponseModel):
    """A case: every message of one hospital stay (services.messaging.case), oldest first by
    the time its source sent it, each with its deliveries' states. Metadata only."""

    case_id: str = Field(description="the case id: a UUID derived from the stay, pseudonymous")
    count: int
    items: list[CaseMessageOut]
