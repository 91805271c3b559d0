"""Ready for discharge (utskrivningsklar) and its withdrawal (återtag) to Treserva. Pure
translation of the FHIR message into Treserva's native document
(``contracts/treserva/discharge-readiness.schema.json``).

``bedomdUtskrivningsklar`` is the physician's judgement: Treserva starts the municipality's
3-calendar-day payment clock from it, never from ``skickat``."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import brukare, enhet
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    TranslationError,
    coded,
    extension,
    one,
    read_patient,
    read_unit,
    resolve,
    resources,
)
from services.messaging.identifiers import HSA_ID_SYSTEM
from services.messaging.native import OutboundFamily
from services.messaging.vocabulary import (
    EXPECTED_DISCHARGE_URL,
    OBSERVATION_SYSTEM,
    READY_FOR_DISCHARGE_URL,
    WITHDRAWAL_REASON_URL,
)

TYP = {
    EventCode.READY_FOR_DISCHARGE.value: "utskrivningsklar",
    EventCode.READY_FOR_DISCHARGE_WITHDRAWN.value: "atertag",
}

OBSERVATION_FIELDS = {
    "care-needs-at-discharge": "omvardnadsbehov",
    "note": "notering",
}

PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
JUDGED_BY_TYPE = "DIS"


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    header = one(doc, "MessageHeader")
    try:
        encounter = resolve(doc, header["focus"][0])
        event = header["eventCoding"]["code"]
        notice: dict[str, Any] = {
            "meddelandeId": doc["id"],
            "typ": TYP[event],
            "skickat": doc["timestamp"],
            "brukare": brukare(read_patient(resolve(doc, encounter["subject"]))),
            "vardtillfalle": {
                "id": encounter["identifier"][0]["value"],
                "inskriven": encounter["period"]["start"],
                "avdelning": enhet(read_unit(resolve(doc, encounter["serviceProvider"]))),
            },
            "bedomdUtskrivningsklar": _required(encounter, READY_FOR_DISCHARGE_URL)[
                "valueDateTime"
            ],
            "bedomdAv": _judged_by(doc, encounter),
            "beraknadUtskrivning": (extension(encounter, EXPECTED_DISCHARGE_URL) or {}).get(
                "valueDateTime"
            ),
        }
        if event == EventCode.READY_FOR_DISCHARGE_WITHDRAWN.value:
            notice["aterkallelseorsak"] = _required(encounter, WITHDRAWAL_REASON_URL)["valueString"]
    except (KeyError, IndexError, StopIteration) as exc:
        raise TranslationError(f"discharge readiness incomplete: {type(exc).__name__}") from None
    for field in OBSERVATION_FIELDS.values():
        notice[field] = None
    for observation in resources(doc, "Observation"):
        target = OBSERVATION_FIELDS.get(coded(observation.get("code"), OBSERVATION_SYSTEM) or "")
        if target is not None:
            notice[target] = observation.get("valueString")
    return notice


def _required(encounter: dict[str, Any], url: str) -> dict[str, Any]:
    found = extension(encounter, url)
    if found is None:
        raise TranslationError(f"discharge readiness lacks extension {url.rsplit('/', 1)[-1]}")
    return found


def _judged_by(doc: dict[str, Any], encounter: dict[str, Any]) -> dict[str, str] | None:
    """The participant typed DIS (discharger): the physician who judged the patient ready."""
    for participant in encounter.get("participant", []):
        if any(
            coded(kind, PARTICIPATION_TYPE_SYSTEM) == JUDGED_BY_TYPE
            for kind in participant.get("type", [])
        ):
            practitioner = resolve(doc, participant["individual"])
            hsa = next(
                i["value"] for i in practitioner["identifier"] if i["system"] == HSA_ID_SYSTEM
            )
            return {"hsaId": hsa, "namn": practitioner["name"][0]["text"]}
    return None


OUTBOUND = OutboundFamily(
    family="discharge-readiness",
    events=tuple(EventCode(code) for code in TYP),
    path="/api/v1/utskrivningsklar",
    schema="treserva/discharge-readiness.schema.json",
    to_native=to_native,
)
