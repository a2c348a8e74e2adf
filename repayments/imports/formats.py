"""django-import-export formats that read uploads through ``repayments.imports.reading``.

The admin's import then accepts what the CLI and the console accept (GBK, BOM,
Chinese headers, XLSX) and its export neutralises formulas. A format class is
bound to one resource, because the headers are mapped per resource.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from import_export.formats import base_formats

from baitiao.csvfiles import csv_lines, neutralize
from repayments.imports.reading import limits, parsed_size, read_table, table_dataset
from repayments.imports.report import FileRefused, Problem


def _admin_dataset(content: bytes, *, resource: str, filename: str):
    """The upload as a dataset for the admin's import, which parses in the web request:
    only files up to ``IMPORT_LIMITS["inline_max_bytes"]`` (an XLSX: unzipped).

    Raises:
        FileRefused: a bigger file (the message says where to import it), or as ``read_table``.
    """
    size = parsed_size(content, filename)
    if size > limits()["inline_max_bytes"]:
        message = _(
            "The back office imports a file while you wait, up to %(limit)s bytes (setting IMPORT_INLINE_MAX_BYTES; "
            "an .xlsx counted unzipped); this one has %(size)s. Import it from the console's data page, which runs "
            "big files on the queue, or with manage.py import_data."
        ) % {"limit": f"{limits()['inline_max_bytes']:,}", "size": f"{size:,}"}
        raise FileRefused([Problem(None, "", "", message)])
    return table_dataset(read_table(content, resource=resource, filename=filename))


def _neutralized(dataset):
    import tablib

    safe = tablib.Dataset(headers=dataset.headers)
    for row in dataset:
        safe.append([neutralize(cell) for cell in row])
    return safe


class SpreadsheetCSV(base_formats.CSV):
    """CSV in any encoding ``reading.detect_encoding`` accepts; the bytes are decoded by the reader."""

    resource = ""

    def is_binary(self):
        return True  # the admin hands over bytes; the reader detects the encoding

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        return _admin_dataset(bytes(in_stream), resource=self.resource, filename="upload.csv")

    def export_data(self, dataset, **kwargs):
        return "".join(csv_lines(dataset.headers or [], dataset))  # the one CSV writer: BOM, CRLF, neutralised


class SpreadsheetXLSX(base_formats.XLSX):
    resource = ""

    def create_dataset(self, in_stream, **kwargs):
        return _admin_dataset(bytes(in_stream), resource=self.resource, filename="upload.xlsx")

    def export_data(self, dataset, **kwargs):
        return super().export_data(_neutralized(dataset), **kwargs)


def formats_for(resource: str) -> list[type]:
    """CSV and XLSX format classes bound to ``resource``."""
    return [
        type(f"{cls.__name__}_{resource.replace('-', '_')}", (cls,), {"resource": resource})
        for cls in (SpreadsheetCSV, SpreadsheetXLSX)
    ]
