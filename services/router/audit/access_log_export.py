"""The access log as an auditor takes it away: JSON lines or CSV, every field with ``seq``,
``prev_hash`` and ``hash``, in chain order, so the chain can be re-verified offline with
:func:`services.router.audit.access_log.check_chain` (or any SHA-256 tool: the encoding is in the
docs/security.md, Access log). Pure rendering; the API streams the rows through it.

CSV cells that a spreadsheet would run as a formula (an actor or reason starting with ``=``,
``+``, ``-``, ``@``, a tab or CR) get a leading single quote, as the broker's other CSV
exports do (:mod:`services.messaging.spreadsheet_cells`). So that the export still
re-verifies, a cell that itself starts with a quote gets one more, and :func:`read_csv`
removes exactly one leading quote from every quoted cell: the round trip is exact."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from services.messaging.spreadsheet_cells import FORMULA_START
from services.router.audit.access_log import HASHED_FIELDS

COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")


def jsonl_line(entry: Mapping[str, Any]) -> str:
    """One entry as a JSON object on one line (``at`` already canonical)."""
    return json.dumps({c: entry[c] for c in COLUMNS}, ensure_ascii=False) + "\n"


def csv_header() -> str:
    return _csv_row(COLUMNS)


def csv_line(entry: Mapping[str, Any]) -> str:
    """One entry as a CSV row; an absent pseudonym or message id is an empty cell, and no
    cell starts a formula."""
    return _csv_row(["" if entry[c] is None else _cell(str(entry[c])) for c in COLUMNS])


def _cell(text: str) -> str:
    return "'" + text if text.startswith((*FORMULA_START, "'")) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def _csv_row(cells: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)  # RFC 4180: a CR in a cell is quoted
    return buffer.getvalue()


def read_jsonl(text: str) -> list[dict[str, Any]]:
    """Entries back from an export, for :func:`check_chain`."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_csv(text: str) -> list[dict[str, Any]]:
    """Entries back from a CSV export: empty optional cells are None again."""
    rows: list[dict[str, Any]] = [
        {k: _uncell(v) for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text, newline=""))
    ]
    for row in rows:
        for optional in ("pseudonym", "message_id"):
            if row[optional] == "":
                row[optional] = None
    return rows
