"""Deviation exports for a deviation system such as Flexite: CSV for Excel and import
mappings, JSON for programs. Pure: deviations in, text or a document out.

Both carry the same fields in the same order (documented in ``contracts/deviations/``):

* **CSV**: UTF-8 with a byte-order mark (Excel otherwise guesses the encoding wrong),
  ``;`` as separator (Swedish Excel uses ``,`` as the decimal mark), CRLF line ends, Swedish
  headers, and Swedish text for coded values (``Typ``: "Leverans misslyckades").
* **JSON**: English keys, codes for coded values (``kind``: "delivery_failed"), ``null`` for
  an unknown value, and ``schemaVersion``.

Times in both are ISO 8601 in Stockholm local time with their offset
(``2026-11-03T10:15:00+01:00``), so a reader sees the wall-clock time and a program still
gets the instant. Lateness is in whole minutes, rounded up: a deviation one second late is
one minute late, never zero.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.messaging.envelope import EVENT_DISPLAY, System
from services.messaging.spreadsheet_cells import formula_safe
from services.router.deviations.records import DIRECTION_TEXT, KIND_TEXT, STOCKHOLM, Deviation

SCHEMA_VERSION = "1.0"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"


def local_time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def late_minutes(lateness_s: int | None) -> int | None:
    return None if lateness_s is None else math.ceil(lateness_s / 60)


_SYSTEMS = {s.value: s.display for s in System}
_FAMILIES = {e.value: text for e, text in EVENT_DISPLAY.items()}


def _system_text(system: str) -> str:
    return _SYSTEMS.get(system, system)


def _family_text(family: str) -> str:
    return _FAMILIES.get(family, family)


@dataclass(frozen=True, slots=True)
class Field:
    header: str  # CSV column (Swedish)
    key: str  # JSON key (English)
    value: Callable[[Deviation], Any]  # the JSON value
    text: Callable[[Any], str] = lambda v: "" if v is None else str(v)  # its CSV text


FIELDS: tuple[Field, ...] = (
    Field("Avvikelse-id", "id", lambda d: d.id),
    Field("Typ", "kind", lambda d: d.kind, lambda v: KIND_TEXT.get(v, v)),
    Field(
        "Status",
        "status",
        lambda d: "resolved" if d.resolved else "open",
        lambda v: {"resolved": "Åtgärdad", "open": "Öppen"}[v],
    ),
    Field("Datum", "occurredAt", lambda d: local_time(d.occurred_at)),
    Field("Upptäckt", "detectedAt", lambda d: local_time(d.detected_at)),
    Field("Frist", "dueAt", lambda d: local_time(d.due_at)),
    Field("Åtgärdad", "resolvedAt", lambda d: local_time(d.resolved_at)),
    Field("Försenad (minuter)", "lateMinutes", lambda d: late_minutes(d.lateness_s)),
    Field("Meddelande", "family", lambda d: d.family, _family_text),
    Field("Meddelande-id", "messageId", lambda d: d.message_id),
    Field("Leverans-id", "deliveryId", lambda d: d.delivery_id),
    Field("Riktning", "direction", lambda d: d.direction.value, lambda v: DIRECTION_TEXT[v]),
    Field("Avsändande system", "sourceSystem", lambda d: d.source, _system_text),
    Field("Mottagande system", "destinationSystem", lambda d: d.destination, _system_text),
    Field("Avsändande enhet (HSA-id)", "senderUnitHsaId", lambda d: d.sender_unit_hsa),
    Field("Mottagande enhet (HSA-id)", "receiverUnitHsaId", lambda d: d.receiver_unit_hsa),
    Field("Patientpseudonym", "patientPseudonym", lambda d: d.pseudonym),
    Field("Larm-id", "alertId", lambda d: d.alert_id),
    Field("Beskrivning", "description", lambda d: d.description),
)
CSV_HEADERS = tuple(f.header for f in FIELDS)


def _cell(f: Field, d: Deviation) -> str:
    value = f.value(d)
    text = "" if value is None else f.text(value)
    return formula_safe(text)  # a formula to Excel (CSV injection) is quoted


def to_csv(deviations: Iterable[Deviation]) -> str:
    """The CSV text, byte-order mark first; encode it as UTF-8."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for d in deviations:
        writer.writerow([_cell(f, d) for f in FIELDS])
    return out.getvalue()


def to_json(
    deviations: Sequence[Deviation], *, generated_at: datetime, month: str | None
) -> dict[str, Any]:
    """The JSON export document (``contracts/deviations/deviation.schema.json``)."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "generatedAt": local_time(generated_at),
        "month": month,
        "count": len(deviations),
        "deviations": [{f.key: f.value(d) for f in FIELDS} for d in deviations],
    }


def render_json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def file_name(month: str | None, suffix: str) -> str:
    return f"avvikelser-{month or 'alla'}.{suffix}"
