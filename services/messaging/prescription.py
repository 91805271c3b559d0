"""The facts of a medication line's prescription beyond its dosage, as FHIR R4 both ways: the
prescriber (förskrivare) as a ``Practitioner`` by personal HSA-id, whether a pharmacy dispenses
the line in dose bags (dosdispensering, extension ``dose-dispensed``), and how the line changed
since the previous list (insatt, utsatt, ändrad, oförändrad) with the reason (extension
``medication-line-change``). Pure. Used by :mod:`services.messaging.medication`; mapping
``contracts/fhir/medication-list.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from services.messaging import vocabulary as vocab
from services.messaging.fhir_parts import (
    TranslationError,
    extension,
    hsa_id,
    known,
    maybe_boolean,
    maybe_obj,
    maybe_text,
    obj,
    required_extension,
    text,
)
from services.messaging.identifiers import HSA_ID_SYSTEM

ChangeKind = Literal["started", "stopped", "changed", "unchanged"]
CHANGE_KINDS: dict[str, ChangeKind] = {c: c for c in get_args(ChangeKind)}
CHANGE_DISPLAY: dict[ChangeKind, str] = {
    "started": "Insatt",
    "stopped": "Utsatt",
    "changed": "Ändrad",
    "unchanged": "Oförändrad",
}
PROVIDER_NUMBER = {"system": vocab.IDENTIFIER_TYPE_SYSTEM, "code": "PRN"}


@dataclass(frozen=True, slots=True)
class Prescriber:
    """The physician who prescribed a line (förskrivare), by personal HSA-id."""

    hsa_id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class LineChange:
    """How a line changed since the last list (insatt, utsatt, ändrad, oförändrad), and why."""

    kind: ChangeKind
    reason: str | None = None


def practitioner_resource(prescriber: Prescriber) -> dict[str, Any]:
    ident = {"type": {"coding": [PROVIDER_NUMBER]}, "system": HSA_ID_SYSTEM}
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "identifier": [ident | {"value": prescriber.hsa_id}],
    }
    if prescriber.name is not None:
        resource["name"] = [{"text": prescriber.name}]
    return resource


def change_extension(change: LineChange) -> dict[str, Any]:
    coding = {"system": vocab.MEDICATION_LINE_CHANGE_SYSTEM, "code": change.kind}
    parts = [{"url": "type", "valueCoding": coding | {"display": CHANGE_DISPLAY[change.kind]}}]
    if change.reason is not None:
        parts.append({"url": "reason", "valueString": change.reason})
    return {"url": vocab.MEDICATION_LINE_CHANGE_URL, "extension": parts}


def dispensed_value(found: dict[str, Any]) -> bool:
    value = maybe_boolean(found, "valueBoolean")
    if value is None:
        raise TranslationError("the dose-dispensed extension has no valueBoolean")
    return value


def read_prescriber(source: dict[str, Any]) -> Prescriber | None:
    """The Practitioner a line's informationSource points to; None for the unit."""
    if source.get("resourceType") == "Organization":
        return None
    if source.get("resourceType") != "Practitioner":
        raise TranslationError("MedicationStatement.informationSource is no prescriber or unit")
    hsa = hsa_id(source)
    if hsa is None:
        raise TranslationError("the prescriber (Practitioner) has no HSA-id")
    name = maybe_text(source, "name.0.text") if maybe_obj(source, "name.0") else None
    return Prescriber(hsa, name)


def read_change(found: dict[str, Any] | None) -> LineChange | None:
    if found is None:
        return None
    what = "MedicationStatement medication-line-change extension"
    coding = obj(required_extension(found, "type"), "valueCoding")
    if coding.get("system") != vocab.MEDICATION_LINE_CHANGE_SYSTEM:
        raise TranslationError(f"{what}: type is not from the medication-line-change system")
    reason = extension(found, "reason")
    return LineChange(
        kind=known(CHANGE_KINDS, text(coding, "code"), what),
        reason=None if reason is None else text(reason, "valueString"),
    )
