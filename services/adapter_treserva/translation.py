"""Pure translation of a FHIR admission-notice message into Treserva's native notice
(``contracts/treserva/admission-notice.schema.json``). No I/O, no clock."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.messaging.envelope import EXPECTED_DISCHARGE_URL, OBSERVATION_SYSTEM
from services.messaging.identifiers import HSA_ID_SYSTEM, SAMORDNINGSNUMMER_SYSTEM

_OBSERVATION_FIELDS = {
    "housing-situation": "boendesituation",
    "social-situation": "socialSituation",
    "care-needs-assessment": "nulagesbedomning",
}


class TranslationError(ValueError):
    """The message lacks what Treserva needs; retrying cannot help (fatal)."""


def _resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle.get("entry", []) if "fullUrl" in e}


def _one(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in resources.values() if r.get("resourceType") == kind]
    if len(found) != 1:
        raise TranslationError(f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def to_treserva_notice(bundle: Bundle) -> dict[str, Any]:
    doc = bundle.model_dump(mode="json", exclude_none=True)
    resources = _resources(doc)
    patient = _one(resources, "Patient")
    encounter = _one(resources, "Encounter")
    organization = _one(resources, "Organization")
    try:
        ident = patient["identifier"][0]
        number = ident["value"]
        name = patient["name"][0]
        protected = any(
            label.get("code") == "skyddadFolkbokforing"
            for label in patient.get("meta", {}).get("security", [])
        )
        hsa = next(i["value"] for i in organization["identifier"] if i["system"] == HSA_ID_SYSTEM)
        brukare: dict[str, Any] = {
            "personnummer": f"{number[:8]}-{number[8:]}",
            "samordningsnummer": ident["system"] == SAMORDNINGSNUMMER_SYSTEM,
            "efternamn": name["family"],
            "fornamn": " ".join(name.get("given", [])),
            "skyddadIdentitet": protected,
        }
        address = patient.get("address")
        if address and not protected:
            brukare["folkbokforingsadress"] = {
                "gatuadress": ", ".join(address[0]["line"]),
                "postnummer": address[0]["postalCode"],
                "postort": address[0]["city"],
            }
        expected = next(
            (
                x["valueDateTime"]
                for x in encounter.get("extension", [])
                if x["url"] == EXPECTED_DISCHARGE_URL
            ),
            None,
        )
        notice: dict[str, Any] = {
            "meddelandeId": doc["id"],
            "typ": "inskrivningsmeddelande",
            "skickat": doc["timestamp"],
            "brukare": brukare,
            "vardtillfalle": {
                "id": encounter["identifier"][0]["value"],
                "inskriven": encounter["period"]["start"],
                "avdelning": {"hsaId": hsa, "namn": organization["name"]},
            },
            "beraknadUtskrivning": expected,
            "inskrivningsorsak": encounter["reasonCode"][0]["text"],
        }
    except (KeyError, IndexError, StopIteration) as exc:
        raise TranslationError(f"admission notice incomplete: {type(exc).__name__}") from None
    for field in _OBSERVATION_FIELDS.values():
        notice[field] = None
    for resource in resources.values():
        if resource.get("resourceType") != "Observation":
            continue
        for coding in resource.get("code", {}).get("coding", []):
            if (
                coding.get("system") == OBSERVATION_SYSTEM
                and coding.get("code") in _OBSERVATION_FIELDS
            ):
                notice[_OBSERVATION_FIELDS[coding["code"]]] = resource.get("valueString")
    return notice
