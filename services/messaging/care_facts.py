"""The few facts about a care event the alert rules need, read from a FHIR message Bundle:
who sent it (the unit's HSA-id, whom to phone when it does not arrive), when the stay began
and ended, which stay (episode) it belongs to and the case id every message of the stay
carries (services.messaging.case). Pure: no I/O, no clock.

Nothing here identifies the patient; the episode is the source system's encounter id and the
case id a pseudonymous UUID of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.messaging.cancellation import cancelled_message_id
from services.messaging.case import case_id_of
from services.messaging.envelope import EventCode
from services.messaging.fhir_parts import (
    TranslationError,
    extension,
    hsa_id,
    listed_unit_of,
    maybe_instant,
    maybe_obj,
    maybe_text,
    municipality_of,
    resolve,
    resources,
)
from services.messaging.vocabulary import PROCESS_INTERRUPTED_URL

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CareFacts:
    sender_unit_hsa: str | None = None
    stay_started_at: datetime | None = None  # Encounter.period.start: admitted at
    stay_ended_at: datetime | None = None  # Encounter.period.end: discharged at
    episode: str | None = None  # "<identifier system>|<value>" of the Encounter
    # addressing by unit (issue 20): kommunkod of the patient's folkbokföringskommun and the
    # HSA-id of the listed vårdcentral; neither identifies the patient
    municipality: str | None = None
    listed_unit_hsa: str | None = None
    case_id: str | None = None  # the case EpisodeOfCare's id, the same for the whole stay
    # avbrott: when the discharge process was interrupted (the Encounter's extension
    # process-interrupted, its "at"); its reason and note stay in the message
    interrupted_at: datetime | None = None
    cancels: str | None = None  # a cancellation's: the id of the message it cancels


def read_care_facts(bundle: dict[str, Any]) -> CareFacts:
    """What the Bundle says; a fact it does not carry, or carries malformed, is None (never
    an error: the message was valid when accepted, and an alert rule must not crash on an
    unusual one). Each fact is read on its own, so one malformed element costs only it."""
    encounter = _fact(lambda: next(iter(resources(bundle, "Encounter")), None))
    patient = _fact(lambda: next(iter(resources(bundle, "Patient")), None))
    return CareFacts(
        sender_unit_hsa=_fact(lambda: _sender_hsa(bundle)),
        stay_started_at=_fact(lambda: maybe_instant(encounter, "period.start")),
        stay_ended_at=_fact(lambda: maybe_instant(encounter, "period.end")),
        episode=_fact(lambda: _episode(encounter)),
        municipality=_fact(lambda: municipality_of(patient) if patient else None),
        listed_unit_hsa=_fact(lambda: listed_unit_of(patient) if patient else None),
        case_id=case_id_of(bundle),
        interrupted_at=_fact(lambda: _interrupted_at(encounter)),
        cancels=_fact(lambda: _cancelled(bundle)),
    )


def _cancelled(bundle: dict[str, Any]) -> str | None:
    headers = resources(bundle, "MessageHeader")
    code = maybe_text(headers[0], "eventCoding.code") if headers else None
    return cancelled_message_id(bundle) if code == EventCode.MESSAGE_CANCELLED.value else None


def _fact(read: Callable[[], T | None]) -> T | None:
    try:
        return read()
    except TranslationError:
        return None


def _sender_hsa(bundle: dict[str, Any]) -> str | None:
    headers = resources(bundle, "MessageHeader")
    if not headers or maybe_obj(headers[0], "sender") is None:
        return None
    return hsa_id(resolve(bundle, headers[0], "sender"))


def _interrupted_at(encounter: dict[str, Any] | None) -> datetime | None:
    found = None if encounter is None else extension(encounter, PROCESS_INTERRUPTED_URL)
    at = None if found is None else extension(found, "at")
    return None if at is None else maybe_instant(at, "valueDateTime")


def _episode(encounter: dict[str, Any] | None) -> str | None:
    """``<identifier system>|<value>`` of the Encounter."""
    value = maybe_text(encounter, "identifier.0.value")
    if not value:
        return None
    return f"{maybe_text(encounter, 'identifier.0.system') or ''}|{value}"
