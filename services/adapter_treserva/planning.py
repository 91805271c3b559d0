"""The planning information at discharge (planeringsunderlag) in Treserva's native record:
the broker's :class:`PlanningInformation` as the ``planeringsunderlag`` object of
``contracts/treserva/discharge-readiness.schema.json``. Pure; mapping
``contracts/fhir/discharge-readiness.md``."""

from __future__ import annotations

from typing import Any

from services.messaging.planning import PlanningInformation
from services.messaging.prescription import Prescriber

AKTIVITET = {
    "eating": "ata-och-dricka",
    "dressing": "kla-sig",
    "toileting": "toalettbesok",
    "mobility": "forflyttning",
    "hygiene": "personlig-hygien",
}
NIVA = {
    "independent": "klarar-sjalv",
    "needs-some-help": "behover-delvis-hjalp",
    "needs-full-help": "behover-hjalp-helt",
}
# v3 RoleCode → Treserva's relation
RELATION = {
    "SPS": "make-maka",
    "DOMPART": "sambo",
    "CHILD": "barn",
    "DAU": "dotter",
    "SON": "son",
    "PRN": "foralder",
    "SIB": "syskon",
    "GRNDCHILD": "barnbarn",
    "FAMMEMB": "annan-anhorig",
    "FRND": "van",
    "NBOR": "granne",
}


def planeringsunderlag(planning: PlanningInformation) -> dict[str, Any] | None:
    """Treserva's record of the planning information; None when the hospital gave none."""
    if planning.is_empty():
        return None
    contact = planning.care_contact
    interpreter = planning.interpreter
    return {
        "funktionsstatus": [
            {"aktivitet": AKTIVITET[s.activity], "niva": NIVA[s.level], "notering": s.note}
            for s in planning.functional_status
        ],
        "hjalpmedel": [
            {"iso9999": d.iso_code, "benamning": d.name, "forskrivare": _person(d.prescriber)}
            for d in planning.devices
        ],
        "anhoriga": [
            {"namn": k.name, "relation": RELATION[k.kinship], "telefon": k.phone}
            for k in planning.next_of_kin
        ],
        "stallforetradare": [
            {"typ": r.role, "namn": r.name, "telefon": r.phone}
            for r in planning.legal_representatives
        ],
        "fastVardkontakt": None
        if contact is None
        else {"hsaId": contact.hsa_id, "namn": contact.name, "telefon": contact.phone},
        "tolk": None
        if interpreter is None
        else {"sprak": interpreter.language, "behovs": interpreter.needed},
        "telefon": planning.patient_phone,
    }


def _person(prescriber: Prescriber | None) -> dict[str, str | None] | None:
    if prescriber is None:
        return None
    return {"hsaId": prescriber.hsa_id, "namn": prescriber.name}
