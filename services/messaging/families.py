"""The catalogue of care-transition message families: which events belong to which family,
who may send them, who receives them, and which are versioned documents.

This table is the one place the journals' routing is decided. A new family is a new entry
here, a module per adapter and its contracts; the router turns the table into one
subscription per destination journal at start-up and needs no edits (webhook subscribers
are added through the router's subscription API).

Versioned families (SIP, medication list) carry a document id and a version in their
business key (source, document id, version). A lower version that arrives after a higher one
of the same document is *superseded*: it is still delivered, marked as such, and never applied
over the newer one.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.messaging.envelope import EventCode, System


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # contract folder name, e.g. "medication-list"
    events: tuple[EventCode, ...]
    versioned: bool
    # source system → destinations; a source not listed may not send this family
    routes: tuple[tuple[System, tuple[System, ...]], ...]
    # secrecy between region and municipality (OSL 25 and 26 kap.): shared only with the
    # patient's consent or a documented legal basis, which the message carries as a Consent
    # (services.messaging.consent); services.router.routing.consent holds back a message
    # without one. True for every family that shares information; false only for the
    # cancellation (makulering), which shares none and goes only where its original went.
    needs_consent: bool = True

    def destinations(self, source: System) -> tuple[System, ...]:
        return dict(self.routes).get(source, ())


# The hospital's notices go to the municipality and to primary care (Lag 2017:612); what the
# municipality sends goes to TakeCare, whose SIP module primary care shares.
_TO_MUNICIPALITY = ((System.TAKECARE, (System.TRESERVA, System.PRIMARY_CARE)),)
_BOTH_WAYS = (
    (System.TAKECARE, (System.TRESERVA, System.PRIMARY_CARE)),
    (System.TRESERVA, (System.TAKECARE,)),
)

FAMILIES: tuple[Family, ...] = (
    Family(
        "admission-notice",
        (
            EventCode.ADMISSION_NOTICE,
            EventCode.ADMISSION_NOTICE_UPDATED,
            EventCode.ADMISSION_NOTICE_CANCELLED,
        ),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    Family(
        "discharge-readiness",
        (EventCode.READY_FOR_DISCHARGE, EventCode.READY_FOR_DISCHARGE_WITHDRAWN),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    Family(
        "discharge-notice",
        (EventCode.DISCHARGE_NOTICE,),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    Family(
        "medication-list",
        (EventCode.MEDICATION_LIST,),
        versioned=True,
        routes=_BOTH_WAYS,
    ),
    Family(
        "sip-update",
        (
            EventCode.SIP_INVITATION,
            EventCode.SIP_CREATED,
            EventCode.SIP_UPDATED,
            EventCode.SIP_COMPLETED,
        ),
        versioned=True,
        routes=_BOTH_WAYS,
    ),
    # The patient withdrew consent for the stay: the receivers are told (a message of its
    # own, its Consent inactive) and the adapter refuses every later document of the stay.
    Family(
        "consent-withdrawal",
        (EventCode.CONSENT_WITHDRAWN,),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    # the municipality's answer to an admission notice: its current services and a contact
    Family(
        "admission-answer",
        (EventCode.ADMISSION_ANSWER,),
        versioned=False,
        routes=((System.TRESERVA, (System.TAKECARE,)),),
    ),
    # läskvittens: who read a message and when, back to the journal that sent it. Not the
    # technical receipt (kvittens, EventCode.RECEIPT), which settles a delivery.
    Family(
        "read-receipt",
        (EventCode.READ_RECEIPT,),
        versioned=False,
        routes=((System.TAKECARE, (System.TRESERVA,)), (System.TRESERVA, (System.TAKECARE,))),
    ),
    # kan ta emot: the municipality can receive the patient from a date
    Family(
        "ready-to-receive",
        (EventCode.READY_TO_RECEIVE,),
        versioned=False,
        routes=((System.TRESERVA, (System.TAKECARE,)),),
    ),
    # avbrott i utskrivningsprocessen: the planning for the stay is interrupted, with a reason
    Family(
        "process-interrupted",
        (EventCode.PROCESS_INTERRUPTED,),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    # förflyttning: the patient moved to another ward or hospital, the receivers' new contact
    Family(
        "transfer",
        (EventCode.TRANSFER,),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    # patienten avliden: when, so the municipality stops planning; never the cause of death
    Family(
        "patient-deceased",
        (EventCode.PATIENT_DECEASED,),
        versioned=False,
        routes=_TO_MUNICIPALITY,
    ),
    # administrativt meddelande: free text about a stay between the hospital unit and the
    # municipal unit, both ways (primary care is not a party to it)
    Family(
        "administrative-message",
        (EventCode.ADMINISTRATIVE_MESSAGE,),
        versioned=False,
        routes=((System.TAKECARE, (System.TRESERVA,)), (System.TRESERVA, (System.TAKECARE,))),
    ),
    # makulering: the sender cancels a message of its own, of any family. The catalogue's
    # routes only say who may send one; the router sends it to exactly the receivers of the
    # message it cancels (services.router.routing.cancels). It carries no new health data
    # and reaches only receivers the cancelled message reached on its own basis, so it needs
    # no basis of its own: a withdrawal of consent must never stop it
    # (contracts/fhir/message-cancelled.md).
    Family(
        "message-cancelled",
        (EventCode.MESSAGE_CANCELLED,),
        versioned=False,
        routes=_BOTH_WAYS,
        needs_consent=False,
    ),
)

_BY_EVENT = {event.value: family for family in FAMILIES for event in family.events}


def family_of(event_code: str) -> Family | None:
    return _BY_EVENT.get(event_code)


def destinations(event_code: str, source: str) -> tuple[System, ...]:
    """Who receives ``event_code`` from ``source``; () for an unknown event or sender."""
    family = family_of(event_code)
    try:
        sender = System(source)
    except ValueError:
        return ()
    return family.destinations(sender) if family is not None else ()


def may_send(source: System, family: str) -> bool:
    """Whether the catalogue lets ``source`` send the family named ``family``."""
    return any(f.name == family and f.destinations(source) for f in FAMILIES)


def is_versioned(event_code: str) -> bool:
    family = family_of(event_code)
    return family is not None and family.versioned
