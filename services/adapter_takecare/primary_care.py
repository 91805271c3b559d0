"""Primary care (vårdcentral) as a destination: it receives the hospital's notices as FHIR
messages, unchanged, by the standard FHIR messaging operation ``POST [base]/$process-message``.

In Region Gotland primary care works in TakeCare too, so adapter_takecare carries these
deliveries; the receiver's receipts come back on ``POST /primary-care/v1/receipts`` in
TakeCare's receipt format. Any other FHIR-capable primary-care system can take its place by
configuration (``ADAPTER_TAKECARE_PRIMARY_CARE_URL``)."""

from __future__ import annotations

from typing import Any

from services.messaging.delivery import Destination, message_marker
from services.messaging.envelope import EventCode, System
from services.messaging.families import FAMILIES
from services.messaging.native import FHIR_MESSAGE, OutboundFamily

PATH = "/api/v1/primary-care/$process-message"
RECEIPT_PREFIX = "/primary-care/v1"


def as_is(doc: dict[str, Any]) -> dict[str, Any]:
    """The FHIR message is the document: it was validated where it was built."""
    return doc


EVENTS: tuple[EventCode, ...] = tuple(
    event
    for family in FAMILIES
    for event in family.events
    if System.PRIMARY_CARE in family.destinations(System.TAKECARE)
)

FHIR_MESSAGES = OutboundFamily(
    family="fhir-message",
    events=EVENTS,
    path=PATH,
    schema=FHIR_MESSAGE,
    to_native=as_is,
)


def destination(owner: str) -> Destination:
    return Destination(
        system=System.PRIMARY_CARE,
        owner=owner,
        families=(FHIR_MESSAGES,),
        mark_superseded=message_marker,  # an older version: MessageHeader superseded-by
    )
