"""Ready for discharge (utskrivningsklar) and its withdrawal (återtag) to Treserva. Pure
translation of the FHIR message into Treserva's native document
(``contracts/treserva/discharge-readiness.schema.json``).

``bedomdUtskrivningsklar`` is the physician's judgement, passed on unchanged. The municipality's
payment clock does not run from it: it runs from when the notice was sent to the municipality,
and only if its receipt confirmed the admission notice
(:mod:`services.router.statistics.payment_clock`).

``planeringsunderlag`` is the planning information at discharge
(:mod:`services.messaging.planning_read`, :mod:`services.adapter_treserva.planning`)."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import stay_notice
from services.adapter_treserva.planning import planeringsunderlag
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    TranslationError,
    arr,
    coded,
    extension,
    hsa_id,
    maybe_obj,
    maybe_text,
    required_extension,
    resolve,
    resources,
    text,
)
from services.messaging.native import OutboundFamily
from services.messaging.planning_read import read_planning
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
    header, encounter, notice = stay_notice(doc, TYP)
    event = text(header, "eventCoding.code")
    notice |= {
        "bedomdUtskrivningsklar": text(
            required_extension(encounter, READY_FOR_DISCHARGE_URL), "valueDateTime"
        ),
        "bedomdAv": _judged_by(doc, encounter),
        "beraknadUtskrivning": maybe_text(
            extension(encounter, EXPECTED_DISCHARGE_URL), "valueDateTime"
        ),
    }
    if event == EventCode.READY_FOR_DISCHARGE_WITHDRAWN.value:
        notice["aterkallelseorsak"] = text(
            required_extension(encounter, WITHDRAWAL_REASON_URL), "valueString"
        )
    for field in OBSERVATION_FIELDS.values():
        notice[field] = None
    for observation in resources(doc, "Observation"):
        concept = maybe_obj(observation, "code")
        target = OBSERVATION_FIELDS.get(coded(concept, OBSERVATION_SYSTEM) or "")
        if target is not None:
            notice[target] = maybe_text(observation, "valueString")
    # Planeringsunderlag: null when the hospital sent none (and always in an atertag).
    patient = resolve(doc, encounter, "subject", "Patient")
    notice["planeringsunderlag"] = planeringsunderlag(read_planning(doc, patient))
    return notice


def _judged_by(doc: dict[str, Any], encounter: dict[str, Any]) -> dict[str, str] | None:
    """The participant typed DIS (discharger): the physician who judged the patient ready."""
    for i, participant in enumerate(arr(encounter, "participant")):
        if any(
            coded(kind, PARTICIPATION_TYPE_SYSTEM) == JUDGED_BY_TYPE
            for kind in arr(participant, "type")
        ):
            practitioner = resolve(doc, encounter, f"participant.{i}.individual", "Practitioner")
            hsa = hsa_id(practitioner)
            if hsa is None:
                raise TranslationError("the discharging Practitioner has no HSA-id")
            return {"hsaId": hsa, "namn": text(practitioner, "name.0.text")}
    return None


OUTBOUND = OutboundFamily(
    family="discharge-readiness",
    events=tuple(EventCode(code) for code in TYP),
    path="/api/v1/utskrivningsklar",
    schema="treserva/discharge-readiness.schema.json",
    to_native=to_native,
)
