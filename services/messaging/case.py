"""The case id (ärende-id): one id for every message of one hospital stay, carried in each
message as an ``EpisodeOfCare`` (issue 20).

The case is the care transition around one stay (vårdtillfälle) in the hospital's journal.
Its id is a UUIDv5 of the source system and the stay's encounter id under a fixed namespace,
so every adapter derives the same id for the same stay without asking anyone, and the
encounter id itself is not readable from it. The id is pseudonymous and internal: it names
a case, not a patient, but it is still never logged beside patient data.

In the message the case is an ``EpisodeOfCare`` whose ``identifier`` is
``{BASE_URL}/NamingSystem/case-id`` | ``<uuid>`` and whose ``type`` is
``{BASE_URL}/CodeSystem/episode-kind#care-transition-case``. That type keeps it apart from
the other EpisodeOfCare resources a message may hold (the discharge notice's responsibility
after discharge, the municipality's planned care in ready-to-receive), which describe care
and keep their own meaning. :func:`services.messaging.fhir_parts.message_bundle` adds it
(``case_id=``) as the last ``MessageHeader.focus`` and as ``Encounter.episodeOfCare`` of
every Encounter in the message, so a family adopts it with one call::

    message_bundle(..., case_id=stay_case_id(encounter_id))
"""

from __future__ import annotations

import uuid
from typing import Any

from services.messaging.envelope import System
from services.messaging.vocabulary import CASE_ID_SYSTEM as CASE_ID_SYSTEM
from services.messaging.vocabulary import EPISODE_KIND_SYSTEM as EPISODE_KIND_SYSTEM

CASE_KIND = "care-transition-case"
# fixed for ever: changing it changes every case id
_CASE_NAMESPACE = uuid.UUID("0b7e4a55-93c1-5d2e-8f60-6a1c2d3e4f50")


def case_id_for(source: System | str, stay_id: str) -> str:
    """The case id of the stay ``stay_id`` (the encounter id in ``source``'s journal)."""
    system = source.value if isinstance(source, System) else source
    return str(uuid.uuid5(_CASE_NAMESPACE, f"{system}|{stay_id}"))


def stay_case_id(stay_id: str | None) -> str | None:
    """The case id of a hospital stay by TakeCare's encounter id (None for no stay): every
    stay the law's process is about is a stay in the hospital's journal, whichever side
    sends the message that names it."""
    return None if stay_id is None else case_id_for(System.TAKECARE, stay_id)


def is_case_id(value: str) -> bool:
    """Whether ``value`` has the form of a case id (a UUID in canonical form)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def case_episode(case_id: str, patient_ref: str) -> dict[str, Any]:
    """The case's EpisodeOfCare (status and patient are required by FHIR R4)."""
    return {
        "resourceType": "EpisodeOfCare",
        "identifier": [{"system": CASE_ID_SYSTEM, "value": case_id}],
        "status": "active",
        "type": [
            {
                "coding": [
                    {
                        "system": EPISODE_KIND_SYSTEM,
                        "code": CASE_KIND,
                        "display": "Ärende (vårdövergång)",
                    }
                ],
                "text": "Ärende (vårdövergång)",
            }
        ],
        "patient": {"reference": patient_ref},
    }


def case_episodes(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The case EpisodeOfCare resources of a message Bundle (JSON form)."""
    found: list[dict[str, Any]] = []
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (
            isinstance(resource, dict)
            and resource.get("resourceType") == "EpisodeOfCare"
            and _case_value(resource) is not None
        ):
            found.append(resource)
    return found


def case_id_of(bundle: dict[str, Any]) -> str | None:
    """The case id a message carries; None if it carries none or a malformed one."""
    for episode in case_episodes(bundle):
        value = _case_value(episode)
        if value is not None and is_case_id(value):
            return value
    return None


def _case_value(episode: dict[str, Any]) -> str | None:
    idents = episode.get("identifier")
    for ident in idents if isinstance(idents, list) else []:
        if isinstance(ident, dict) and ident.get("system") == CASE_ID_SYSTEM:
            value = ident.get("value")
            return value if isinstance(value, str) else None
    return None
