"""Consent withdrawal (återkallat samtycke) to Treserva: the patient withdrew the consent that
covered a stay. Pure translation of the FHIR message into Treserva's native document
(``contracts/treserva/consent-withdrawal.schema.json``); its ``samtyckesgrund`` carries
``aterkallat``."""

from __future__ import annotations

from typing import Any

from services.adapter_treserva.native import stay_notice
from services.messaging.envelope import EventCode
from services.messaging.native import OutboundFamily

TYP = {EventCode.CONSENT_WITHDRAWN.value: "samtycke-aterkallat"}


def to_native(doc: dict[str, Any]) -> dict[str, Any]:
    _, _, notice = stay_notice(doc, TYP)
    notice["brukare"].pop("folkbokforingsadress", None)  # never an address in a withdrawal
    return notice


OUTBOUND = OutboundFamily(
    family="consent-withdrawal",
    events=(EventCode.CONSENT_WITHDRAWN,),
    path="/api/v1/aterkallade-samtycken",
    schema="treserva/consent-withdrawal.schema.json",
    to_native=to_native,
)
