"""CSV cells a spreadsheet will not run (CSV injection): a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and LibreOffice, so
every CSV export of the broker prefixes such a cell with a single quote, which the
spreadsheet shows as text and does not display."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates: a leading quote before a formula start."""
    return "'" + text if text.startswith(FORMULA_START) else text
