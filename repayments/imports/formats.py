"""django-import-export formats that read uploads through ``repayments.imports.reading``.

The admin's import then accepts what the CLI and the console accept (GBK, BOM,
Chinese headers, XLSX) and its export neutralises formulas. A format class is
bound to one resource, because the headers are mapped per resource.
"""

from __future__ import annotations

from import_export.formats import base_formats

from baitiao.csvfiles import csv_lines, neutralize
from repayments.imports.reading import read_table, table_dataset


def _neutralized(dataset):
    import tablib

    safe = tablib.Dataset(headers=dataset.headers)
    for row in dataset:
        safe.append([neutralize(cell) for cell in row])
    return safe


class SpreadsheetCSV(base_formats.CSV):
    """CSV in any encoding ``reading.decode`` accepts; the bytes are decoded by the reader."""

    resource = ""

    def is_binary(self):
        return True  # the admin hands over bytes; the reader detects the encoding

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        return table_dataset(read_table(bytes(in_stream), resource=self.resource, filename="upload.csv"))

    def export_data(self, dataset, **kwargs):
        return "".join(csv_lines(dataset.headers or [], dataset))  # the one CSV writer: BOM, CRLF, neutralised


class SpreadsheetXLSX(base_formats.XLSX):
    resource = ""

    def create_dataset(self, in_stream, **kwargs):
        return table_dataset(read_table(bytes(in_stream), resource=self.resource, filename="upload.xlsx"))

    def export_data(self, dataset, **kwargs):
        return super().export_data(_neutralized(dataset), **kwargs)


def formats_for(resource: str) -> list[type]:
    """CSV and XLSX format classes bound to ``resource``."""
    return [
        type(f"{cls.__name__}_{resource.replace('-', '_')}", (cls,), {"resource": resource})
        for cls in (SpreadsheetCSV, SpreadsheetXLSX)
    ]
