"""Analyst CSV/XLSX import and export (issue #6; ``docs/csv.md``).

* ``cells``: parsing of one cell (codes, IDs, phones, dates, amounts, status words)
  with the spreadsheet-damage rules;
* ``columns``: the columns of each resource, their Chinese aliases, export masks and
  status words (one definition for the console, the admin and the command line);
* ``reading``: a file → a stream of text-cell rows within ``IMPORT_LIMITS`` (encoding,
  header row, footer rows);
* ``resources``: the django-import-export resources (admin, CLI, console);
* ``formats``: import-export formats that read files through ``reading``;
* ``report``: the row/column/value error report;
* ``fastpath``: COPY + set-based validation and merge for big bills/attempts files.
"""
