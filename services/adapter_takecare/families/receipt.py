"""TakeCare's receipt (kvittens) of a document the broker delivered to it
(``contracts/takecare/receipt.schema.json``)."""

from __future__ import annotations

from typing import Any

from services.messaging.contracts import violations
from services.messaging.journal_client import parse_instant
from services.messaging.native import InvalidEvent
from services.messaging.receipts import Receipt

SCHEMA = "takecare/receipt.schema.json"
ROUTE = "receipts"


def parse_receipt(document: Any) -> Receipt:
    found = violations(SCHEMA, document)
    if found:
        raise InvalidEvent(found)
    return Receipt(
        receipt_id=document["receiptId"],
        message_id=document["messageId"],
        rejected=document["status"] == "rejected",
        reason=document.get("reason"),
        # the evidence: the journal's own record id and its time of the receipt
        record_id=document.get("recordId") or None,
        recorded_at=parse_instant(document["at"]),
    )
