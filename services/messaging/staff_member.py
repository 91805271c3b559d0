"""A member of staff at a unit, as a message names the person who acted: who read it (the read
receipt), wrote it (the administrative message) or cancelled a message (the makulering). The
person's name and HSA-id and the unit's HSA-id are written as an ``Organization``, a
``Practitioner`` and the ``PractitionerRole`` that joins them, and read back. Pure: no I/O.

::

    Organization      the unit (HSA-id only); MessageHeader.sender points to it
    Practitioner      the person: name and HSA-id
    PractitionerRole  the person at the unit (the role name is the family's: "reader", …)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.messaging.fhir_parts import Ref, TranslationError, hsa_id, resolve, text
from services.messaging.identifiers import HSA_ID_SYSTEM

UNIT_ROLE = "organization"  # the unit's role (fullUrl) in the message: the sender


@dataclass(frozen=True, slots=True)
class StaffMember:
    name: str
    hsa_id: str  # the person's own HSA-id
    unit_hsa_id: str  # the unit they acted at


def staff_resources(
    member: StaffMember, ref: Ref, *, role: str
) -> list[tuple[str, dict[str, Any]]]:
    """The unit, the person and the ``role`` (a PractitionerRole) joining them, as
    (role, resource) for :func:`services.messaging.fhir_parts.message_bundle`."""
    return [
        (
            UNIT_ROLE,
            {
                "resourceType": "Organization",
                "identifier": [{"system": HSA_ID_SYSTEM, "value": member.unit_hsa_id}],
            },
        ),
        (
            "practitioner",
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": HSA_ID_SYSTEM, "value": member.hsa_id}],
                "name": [{"text": member.name}],
            },
        ),
        (
            role,
            {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": ref("practitioner")},
                "organization": {"reference": ref(UNIT_ROLE)},
            },
        ),
    ]


def read_staff_member(doc: dict[str, Any], node: Any, path: str, *, who: str) -> StaffMember:
    """The staff member the PractitionerRole at ``path`` under ``node`` names;
    TranslationError naming the element (``who``: "the reader", …), never a value."""
    role = resolve(doc, node, path, "PractitionerRole")
    practitioner = resolve(doc, role, "practitioner", "Practitioner")
    unit = resolve(doc, role, "organization", "Organization")
    person_hsa, unit_hsa = hsa_id(practitioner), hsa_id(unit)
    if person_hsa is None or unit_hsa is None:
        raise TranslationError(f"{who} or their unit has no HSA-id")
    return StaffMember(text(practitioner, "name.0.text"), person_hsa, unit_hsa)
