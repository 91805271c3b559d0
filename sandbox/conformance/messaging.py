"""A MessageDefinition per event (its focus resources, how many, their profiles, and the
responses it may get) and a CapabilityStatement per app's messaging endpoint, from the family
catalogue (:data:`services.messaging.families.FAMILIES`)."""

from __future__ import annotations

from typing import Any

from sandbox.conformance.common import FHIR_VERSION, metadata
from services.messaging import profiles as p
from services.messaging.envelope import EVENT_DISPLAY, EVENT_SYSTEM, EventCode, System
from services.messaging.families import FAMILIES


def message_definition(event: EventCode) -> dict[str, Any]:
    display = EVENT_DISPLAY[event]
    response = event.value in p.RESPONSES
    found = {
        **metadata(
            "MessageDefinition",
            event.value,
            display,
            f"The message of the event {event.value} ({display})."
            + (" A technical response to a business message." if response else ""),
        ),
        "eventCoding": {"system": EVENT_SYSTEM, "code": event.value, "display": display},
        "category": "consequence" if response else "notification",
        "focus": [
            {
                "code": f.type,
                "profile": p.profile_url(f.profile_id),
                "min": f.min,
                "max": str(f.max),
            }
            for f in p.EVENT_FOCUS[event.value]
        ],
        "responseRequired": "never" if response else "always",
    }
    if not response:
        found["allowedResponse"] = [
            {
                "message": p.message_definition_url("delivery-outcome"),
                "situation": "The adapter's result of one delivery attempt (ok, "
                "transient-error, fatal-error).",
            },
            {
                "message": p.message_definition_url("receipt"),
                "situation": "The receiving journal holds the record (kvittens) or refused it.",
            },
        ]
    if not found["focus"]:
        del found["focus"]
    return found


def _sent_and_received(system: System) -> tuple[set[str], set[str]]:
    sent: set[str] = set()
    received: set[str] = set()
    for family in FAMILIES:
        events = {e.value for e in family.events}
        for source, destinations in family.routes:
            if source is system:
                sent |= events
            if system in destinations:
                received |= events
    return sent, received


APPS = {
    "adapter-takecare": ("Adapter TakeCare", System.TAKECARE),
    "adapter-treserva": ("Adapter Treserva", System.TRESERVA),
    "router": ("Router", None),
}


def capability_statement(app: str) -> dict[str, Any]:
    title, system = APPS[app]
    if system is None:  # the router takes every message and forwards it to its destinations
        every = {e.value for f in FAMILIES for e in f.events}
        sent, received = every, every | set(p.RESPONSES)
        doc = "Kafka: takes every message from the sources' topics, forwards each to its "
        doc += "destinations and reads their delivery outcomes and receipts."
    else:
        sent, received = _sent_and_received(system)
        sent |= set(p.RESPONSES)
        doc = f"Kafka: sends what {system.display} hands in, delivers what it receives to "
        doc += f"{system.display}, and answers each delivery with a delivery outcome and receipt."
        if system is System.TAKECARE:
            doc += " Forwards the hospital's notices to primary care as they are by POST "
            doc += "[base]/$process-message."
    order = [e.value for e in EventCode]
    supported = [
        {"mode": mode, "definition": p.message_definition_url(event)}
        for mode, events in (("sender", sent), ("receiver", received))
        for event in sorted(events, key=order.index)
    ]
    return {
        **metadata(
            "CapabilityStatement",
            app,
            f"carebridge {title}",
            f"The messaging of carebridge's {title}.",
        ),
        "kind": "capability",
        "software": {"name": f"carebridge {app}"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "messaging": [{"documentation": doc, "supportedMessage": supported}],
    }
