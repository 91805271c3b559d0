"""Service layer of the TakeCare intake: validate, translate, store durably."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from services.adapter_takecare.admission import parse_admission
from services.adapter_takecare.store import Accepted, IntakeEntry, IntakeStore
from services.adapter_takecare.translation import business_key, to_bundle
from services.messaging import topics
from services.messaging.envelope import EventCode, to_json
from services.messaging.identifiers import pseudonym
from services.messaging.kafka import OutgoingRecord


def payload_digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def accept_admission(
    document: Any, *, store: IntakeStore, pseudonym_key: str, now: datetime
) -> Accepted:
    """Raises ``InvalidAdmission`` (bad input) or ``ConflictingResend``."""
    event = parse_admission(document)
    bundle = to_bundle(event, now=now)
    message_id = str(bundle.id)
    patient = pseudonym(pseudonym_key, event.patient.identifier)
    code = EventCode.ADMISSION_NOTICE.value
    entry = IntakeEntry(
        message_id=message_id,
        key=business_key(event),
        payload_sha256=payload_digest(document),
        event_code=code,
        pseudonym=patient,
        received_at=now,
    )
    outgoing = OutgoingRecord(
        topic=topics.INBOUND,
        key=patient,
        value=to_json(bundle),
        headers={"message-id": message_id, "event": code},
    )
    return await store.record(entry, outgoing)
