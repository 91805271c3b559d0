"""The municipality's message that it can receive the patient (kan ta emot), delivered to
TakeCare (``OUTBOUND``): the day from which the municipal unit can take the patient home, filed
with the stay. Contract ``contracts/takecare/ready-to-receive.schema.json``; mapping
``contracts/fhir/ready-to-receive.md``; the FHIR message is read by
:mod:`services.messaging.ready_to_receive`. ``consentBasis`` is the basis the municipality
shared it on, read back from the message's Consent (:mod:`services.messaging.consent`).
"""

from __future__ import annotations

from typing import Any

from services.adapter_takecare.native import Patient, consent_basis_doc
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import message_id_in, text
from services.messaging.native import OutboundFamily
from services.messaging.ready_to_receive import read_ready_to_receive


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    message = read_ready_to_receive(doc)
    native: dict[str, Any] = {
        "eventId": message_id_in(doc),
        "encounterId": message.stay_id,
        "sentAt": text(doc, "timestamp"),
        "canReceiveFrom": message.from_date.isoformat(),
        "patient": Patient.of(message.patient).model_dump(by_alias=True, exclude_none=True),
        "municipalUnit": {"hsaId": message.unit.hsa_id, "name": message.unit.name},
        "consentBasis": consent_basis_doc(message.basis),
    }
    if message.answers_message_id is not None:
        native["answersMessageId"] = message.answers_message_id
    return native


OUTBOUND = OutboundFamily(
    family="ready-to-receive",
    events=(EventCode.READY_TO_RECEIVE,),
    path="/api/v1/ready-to-receive",
    schema="takecare/ready-to-receive.schema.json",
    to_native=to_native,
)
