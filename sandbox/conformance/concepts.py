"""The concepts of every project CodeSystem, read from the code's own lists: the enum or the
table a translator writes its codes from, so a CodeSystem cannot drift from what is sent.
A CodeSystem declared in :mod:`services.messaging.vocabulary` without an entry here fails
:func:`concepts_of` (and the generator)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from services.adapter_takecare.families import admission_notice as tc_admission
from services.adapter_takecare.families import discharge_notice as tc_discharge
from services.adapter_takecare.families import discharge_readiness as tc_readiness
from services.adapter_takecare.families import process_interrupted as tc_interrupted
from services.messaging import admission_answer, consent, medication, planning, prescription, sip
from services.messaging.case import CASE_KIND
from services.messaging.envelope import EVENT_DISPLAY, System
from services.messaging.families import FAMILIES


def _codes(table: Mapping[Any, str]) -> dict[str, str]:
    """A code list keyed by a Literal type, as plain strings."""
    return {str(code): display for code, display in table.items()}


# SCB's names of the municipalities the sandbox regions' unit directories use
_MUNICIPALITY_NAMES = {
    "0980": "Gotland",
    "1380": "Halmstad",
    "1382": "Falkenberg",
    "1383": "Varberg",
}
_UNITS = Path(__file__).resolve().parents[2] / "contracts" / "units"


def _municipalities() -> dict[str, str]:
    """The kommunkod fragment: every municipality a unit directory names (a code without a
    name here fails the generator, so the fragment cannot miss one)."""
    codes: set[str] = set()
    for directory in sorted(_UNITS.glob("*.json")):
        _collect_municipalities(json.loads(directory.read_text(encoding="utf-8")), codes)
    return {code: _MUNICIPALITY_NAMES[code] for code in sorted(codes)}


def _collect_municipalities(node: object, into: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "municipality" and isinstance(value, str):
                into.add(value)
            else:
                _collect_municipalities(value, into)
    elif isinstance(node, list):
        for item in node:
            _collect_municipalities(item, into)


def _observations() -> dict[str, str]:
    found = {
        role: display
        for table in (
            tc_admission.OBSERVATIONS,
            tc_readiness.OBSERVATIONS,
            tc_discharge.OBSERVATIONS,
        )
        for _field, role, display in table
    }
    for role, display in (tc_discharge.MEDICATION_LIST_SENT, tc_discharge.RESPONSIBILITY):
        found[role] = display
    return found


_UNIT_KIND_DISPLAY = {  # the kind of unit each system is (consent.UNIT_KINDS)
    System.TAKECARE: "Sjukhus (slutenvård)",
    System.PRIMARY_CARE: "Primärvård (vårdcentral)",
    System.TRESERVA: "Kommun",
}

SOURCES: dict[str, Callable[[], Mapping[str, str]]] = {
    "care-transition-event": lambda: {str(code): text for code, text in EVENT_DISPLAY.items()},
    "delivery-tag": lambda: {"superseded": "Ersatt av en nyare version"},
    "episode-kind": lambda: {CASE_KIND: "Ärende: vårdövergången kring ett vårdtillfälle"},
    "kommunkod": _municipalities,  # SCB's list, not copied: a fragment (content fragment)
    "care-transition-observation": _observations,
    "discharge-destination": lambda: dict(tc_discharge.DESTINATIONS),
    "medication-list-context": lambda: _codes(medication.CONTEXT_DISPLAY),
    "medication-administered-by": lambda: _codes(medication.ADMINISTERED_BY_DISPLAY),
    "care-plan-category": lambda: {"sip": sip.SIP_TITLE},
    "sip-role": lambda: _codes(sip.ROLES),
    "medication-line-change": lambda: _codes(prescription.CHANGE_DISPLAY),
    "consent-basis": lambda: dict(consent.KINDS),
    "unit-kind": lambda: {
        kind: _UNIT_KIND_DISPLAY[system] for system, kind in consent.UNIT_KINDS.items()
    },
    "message-family": lambda: {f.name: f.name.replace("-", " ").capitalize() for f in FAMILIES},
    "municipal-service": lambda: dict(admission_answer.MUNICIPAL_SERVICES),
    "process-interruption-reason": lambda: dict(tc_interrupted.REASON_DISPLAY),
    "adl-activity": lambda: _codes(planning.ADL_ACTIVITY_DISPLAY),
    "adl-level": lambda: _codes(planning.ADL_LEVEL_DISPLAY),
    "legal-representative": lambda: _codes(planning.LEGAL_ROLE_DISPLAY),
    "care-team-role": lambda: {planning.PERMANENT_CARE_CONTACT: "Fast vårdkontakt"},
}


def concepts_of(code_system_id: str) -> dict[str, str]:
    """code → display of a declared CodeSystem (KeyError when it has no source here)."""
    return dict(SOURCES[code_system_id]())
