"""Hostile and huge files (issue #15, defect 3): refused before parsing, and read in flat memory.

The files are built here: a 5 KB workbook with one cell at row 200,000, column 200; one
that declares the whole sheet (``A1:XFD1048576``); a zip bomb; a CSV one byte over the
cap. Each is refused in well under a second, naming the limit and the file's value.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
import tracemalloc
import zipfile

import openpyxl
import pytest

from repayments.imports.reading import read_table
from repayments.imports.report import FileRefused
from tests.repayments.imports.conftest import CUSTOMERS_CSV


def _workbook(*cells: tuple[int, int, str]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer_no", "credit_score"])
    sheet.append(["C0001", "720"])
    for row, column, value in cells:
        sheet.cell(row=row, column=column, value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _rewrite_sheet(content: bytes, change) -> bytes:
    """The workbook with its first sheet's XML passed through ``change`` (bytes → bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = change(data)
            target.writestr(item, data)
    return out.getvalue()


def _refused_quickly(content: bytes, filename: str, **options) -> str:
    started = time.monotonic()
    with pytest.raises(FileRefused) as refused:
        read_table(content, resource="customers", filename=filename, **options)
    assert time.monotonic() - started < 2.0, "refused, but only after parsing"
    return str(refused.value)


def test_a_tiny_workbook_with_one_cell_at_row_200000_column_200_is_refused_at_once():
    content = _workbook((200_000, 200, "far"))
    assert len(content) < 10_000
    message = _refused_quickly(content, "far.xlsx")
    assert "200 columns (sheet dimension)" in message and "at most 40" in message and "IMPORT_MAX_COLUMNS" in message


def test_a_workbook_declaring_the_whole_sheet_is_refused_before_a_row_is_read():
    content = _rewrite_sheet(
        _workbook(), lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', xml)
    )
    message = _refused_quickly(content, "whole-sheet.xlsx")
    assert "16,384 columns (sheet dimension)" in message and "IMPORT_MAX_COLUMNS" in message


def test_a_workbook_whose_dimension_hides_a_far_cell_is_refused_when_the_row_is_read(settings):
    # The dimension says A1:B3, the sheet holds a cell at AX3: the rows really read are checked too.
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "max_columns": 10}
    content = _rewrite_sheet(
        _workbook((3, 50, "far")), lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B3"', xml)
    )
    message = _refused_quickly(content, "lying.xlsx")
    assert "50 columns" in message and "at most 10" in message


def test_a_workbook_with_more_declared_cells_than_the_cap_is_refused(settings):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "max_cells": 1_000}
    message = _refused_quickly(_workbook((600, 2, "x")), "cells.xlsx")
    assert "1,200 cells (sheet dimension)" in message and "at most 1,000" in message and "IMPORT_MAX_CELLS" in message


def test_a_zip_bomb_is_refused_by_its_unzipped_size_without_inflating_it(settings):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "xlsx_max_unzipped_bytes": 1_000_000}
    padding = b"<!--" + b" " * 5_000_000 + b"-->"
    content = _rewrite_sheet(_workbook(), lambda xml: xml.replace(b"<sheetData>", padding + b"<sheetData>", 1))
    assert len(content) < 100_000
    message = _refused_quickly(content, "bomb.xlsx")
    assert "bytes once unzipped" in message and "at most 1,000,000" in message


def test_a_csv_one_byte_over_the_cap_is_refused_naming_the_cap_and_its_size(settings):
    content = CUSTOMERS_CSV.encode()
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "max_bytes": len(content) - 1}
    message = _refused_quickly(content, "customers.csv")
    assert f"{len(content):,} bytes" in message and f"at most {len(content) - 1:,}" in message
    assert "IMPORT_MAX_BYTES" in message


def test_a_csv_with_more_rows_than_the_cap_is_refused_naming_the_row(settings):
    settings.IMPORT_LIMITS = {**settings.IMPORT_LIMITS, "max_rows": 3}
    with pytest.raises(FileRefused) as refused:
        read_table(CUSTOMERS_CSV.encode(), resource="customers", filename="customers.csv")
    assert refused.value.problems[0].row == 4 and "IMPORT_MAX_ROWS" in refused.value.problems[0].message


def _peak_to_walk(rows: int) -> tuple[int, int]:
    """(peak traced bytes, file size) of reading and walking a customers CSV of ``rows`` rows."""
    content = io.BytesIO()
    content.write(b"customer_no,name,phone,national_id,credit_score,risk_tier\r\n")
    for n in range(rows):
        content.write(f"C{n:07d},某某某,,,720,low\r\n".encode())
    size = content.tell()
    tracemalloc.start()
    try:
        table = read_table(content, resource="customers", filename="big.csv")
        walked = sum(1 for _ in table.iter_rows())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.row_count == walked == rows and table.rows is None
    return peak, size


def test_the_parse_of_a_large_csv_keeps_memory_flat():
    """Rows are streamed, never held whole: each extra row costs a few bytes, not a parsed row.

    Both files are above ``KEEP_ROWS`` (the long-file path). A parsed row held in memory
    costs several hundred bytes (six strings in a tuple); what may grow with the length is
    bookkeeping such as the keys seen (duplicate detection), a few dozen bytes a row.
    (Sizes kept small: tracemalloc slows every allocation several times.)
    """
    small_peak, _ = _peak_to_walk(12_000)
    large_peak, large_size = _peak_to_walk(48_000)
    assert large_peak < 16 * 1024 * 1024, f"peak {large_peak:,} bytes to read a {large_size:,}-byte file"
    per_row = (large_peak - small_peak) / 36_000
    assert per_row < 64, f"peak grew from {small_peak:,} to {large_peak:,} bytes: {per_row:.0f} bytes a row"


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Files of a few rows go through the long-file path: streamed, 2 rows per chunk."""
    from repayments.imports import reading
    from repayments.services import imports

    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    monkeypatch.setattr(reading, "KEEP_ROWS", 1)


def test_a_key_repeated_in_another_chunk_is_reported_on_both_rows_and_nothing_is_written(run_import, tiny_chunks):
    from repayments.models import Customer

    outcome = run_import("customers", "customer_no,credit_score\nC1,700\nC2,700\nC3,700\nC1,710\nC4,700\n")
    assert not outcome.applied and Customer.objects.count() == 0  # chunk 2 had been written, then rolled back
    assert [(p.row, p.column) for p in outcome.problems] == [(2, "customer_no"), (5, "customer_no")]
    assert "also on row 5" in outcome.problems[0].message and "also on row 2" in outcome.problems[1].message


def test_a_file_in_chunks_is_counted_as_one_and_a_dry_run_writes_none_of_it(run_import, tiny_chunks):
    from repayments.models import Customer

    content = "customer_no,credit_score\n" + "".join(f"C{n},700\n" for n in range(5))
    preview = run_import("customers", content, dry_run=True)
    assert (preview.status, preview.rows, preview.created, Customer.objects.count()) == ("preview_ok", 5, 5, 0)
    applied = run_import("customers", content)
    assert (applied.status, applied.created, Customer.objects.count()) == ("applied", 5, 5)
    again = run_import("customers", content)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)


def test_a_subset_holds_its_rows_and_a_streamed_table_says_it_does_not():
    content = "customer_no,name\r\n" + "".join(f"C{n:07d},某某某\r\n" for n in range(3))
    table = read_table(content.encode(), resource="customers", filename="small.csv")
    part = table.subset([["C0000009", "甲"]], [12])
    assert part.held() == ([12], [["C0000009", "甲"]])
    streamed = dataclasses.replace(table, rows=None)
    with pytest.raises(ValueError, match="customers table of 3 rows does not hold them"):
        streamed.held()
