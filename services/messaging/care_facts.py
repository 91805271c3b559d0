"""The few facts about a care event the alert rules need, read from a FHIR message Bundle:
who sent it (the unit's HSA-id, whom to phone when it does not arrive), when the stay began
and ended, and which stay (episode) it belongs to. Pure: no I/O, no clock.

Nothing here identifies the patient; the episode is the source system's encounter id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging.fhir_parts import TranslationError, resolve, resources
from services.messaging.identifiers import HSA_ID_SYSTEM


@dataclass(frozen=True, slots=True)
class CareFacts:
    sender_unit_hsa: str | None = None
    stay_started_at: datetime | None = None  # Encounter.period.start: admitted at
    stay_ended_at: datetime | None = None  # Encounter.period.end: discharged at
    episode: str | None = None  # "<identifier system>|<value>" of the Encounter


def read_care_facts(bundle: dict[str, Any]) -> CareFacts:
    """What the Bundle says; a fact it does not carry is None (never an error: the message
    was valid when accepted, and an alert rule must not crash on an unusual one)."""
    headers = resources(bundle, "MessageHeader")
    try:
        sender = resolve(bundle, headers[0].get("sender")) if headers else {}
    except TranslationError:
        sender = {}
    encounters = resources(bundle, "Encounter")
    encounter = encounters[0] if encounters else {}
    period = encounter.get("period") or {}
    identifier = (encounter.get("identifier") or [{}])[0]
    episode = (
        f"{identifier.get('system', '')}|{identifier['value']}" if identifier.get("value") else None
    )
    return CareFacts(
        sender_unit_hsa=next(
            (
                i.get("value")
                for i in sender.get("identifier", [])
                if i.get("system") == HSA_ID_SYSTEM
            ),
            None,
        ),
        stay_started_at=_time(period.get("start")),
        stay_ended_at=_time(period.get("end")),
        episode=episode,
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
