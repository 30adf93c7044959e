"""Cells that are safe to open in a spreadsheet (CSV/formula injection, OWASP's guidance).

A CSV cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``); client
data (names, notes, replies) reaches exports, so such a text cell is written with a leading
``'``, which spreadsheets show as text. Numbers are left alone (``-3`` stays a number). In XLSX a
text cell is never evaluated, so the value is kept as it is but forced to be a text cell
(openpyxl would otherwise store a string starting with ``=`` as a formula).
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` as written to a CSV export: formula-looking text prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(row: Any) -> list[Any]:
    return [csv_cell(value) for value in row]


def text_cells(cells: Any) -> None:
    """Force openpyxl cells holding formula-looking text to be text cells, never formulas."""
    for cell in cells:
        if isinstance(cell.value, str) and cell.data_type == "f":
            cell.data_type = "s"
