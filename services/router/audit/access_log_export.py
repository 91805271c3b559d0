"""The access log as an auditor takes it away: JSON lines or CSV, every field with ``seq``,
``prev_hash`` and ``hash``, in chain order, so the chain can be re-verified offline with
:func:`services.router.audit.access_log.check_chain` (or any SHA-256 tool: the encoding is in the
docs/security.md, Access log). Pure rendering; the API streams the rows through it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from services.router.audit.access_log import HASHED_FIELDS

COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")


def jsonl_line(entry: Mapping[str, Any]) -> str:
    """One entry as a JSON object on one line (``at`` already canonical)."""
    return json.dumps({c: entry[c] for c in COLUMNS}, ensure_ascii=False) + "\n"


def csv_header() -> str:
    return _csv_row(COLUMNS)


def csv_line(entry: Mapping[str, Any]) -> str:
    """One entry as a CSV row; an absent pseudonym or message id is an empty cell."""
    return _csv_row(["" if entry[c] is None else str(entry[c]) for c in COLUMNS])


def _csv_row(cells: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def read_jsonl(text: str) -> list[dict[str, Any]]:
    """Entries back from an export, for :func:`check_chain`."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_csv(text: str) -> list[dict[str, Any]]:
    """Entries back from a CSV export: empty optional cells are None again."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for optional in ("pseudonym", "message_id"):
            if row[optional] == "":
                row[optional] = None
    return rows
