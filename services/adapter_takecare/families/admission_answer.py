"""The municipality's answer to an admission notice (svar på inskrivningsmeddelande),
delivered to TakeCare (``OUTBOUND``): the patient's current municipal services and the
municipal contact person, filed with the stay the notice was about. Contract
``contracts/takecare/admission-answer.schema.json``; mapping
``contracts/fhir/admission-answer.md``; the FHIR message is read by
:mod:`services.messaging.admission_answer`. ``consentBasis`` is the basis the municipality
shared it on, read back from the message's Consent (:mod:`services.messaging.consent`).
"""

from __future__ import annotations

from typing import Any

from services.adapter_takecare.native import Patient, consent_basis_doc
from services.messaging.admission_answer import MUNICIPAL_SERVICES, read_answer
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import message_id_in, text
from services.messaging.native import OutboundFamily


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    answer = read_answer(doc)
    contact: dict[str, Any] = {
        "name": answer.contact.name,
        "role": answer.contact.role,
        "phone": answer.contact.phone,
    }
    if answer.contact.hsa_id is not None:
        contact["hsaId"] = answer.contact.hsa_id
    return {
        "eventId": message_id_in(doc),
        "answersMessageId": answer.answers_message_id,
        "encounterId": answer.stay_id,
        "sentAt": text(doc, "timestamp"),
        "patient": Patient.of(answer.patient).model_dump(by_alias=True, exclude_none=True),
        "municipalUnit": {"hsaId": answer.unit.hsa_id, "name": answer.unit.name},
        "services": [
            {"code": s.code, "display": MUNICIPAL_SERVICES[s.code]}
            | ({} if s.since is None else {"since": s.since.isoformat()})
            for s in answer.services
        ],
        "contactPerson": contact,
        "consentBasis": consent_basis_doc(answer.basis),
    }


OUTBOUND = OutboundFamily(
    family="admission-answer",
    events=(EventCode.ADMISSION_ANSWER,),
    path="/api/v1/admission-answers",
    schema="takecare/admission-answer.schema.json",
    to_native=to_native,
)
