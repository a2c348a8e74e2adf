"""COPY text encoding of bulk-load rows (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from repayments.datasets.copyrows import copy_line


def test_values_are_written_in_postgres_text_format():
    moment = dt.datetime(2026, 5, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    row = ("UCI-000001", None, True, False, 616, Decimal("-391.30"), dt.date(2026, 11, 30), moment)
    assert copy_line(row) == "UCI-000001\t\\N\tt\tf\t616\t-391.30\t2026-11-30\t2026-05-01T09:00:00+08:00\n"


def test_tabs_newlines_and_backslashes_are_escaped():
    assert copy_line(("a\tb\nc\\d\re",)) == "a\\tb\\nc\\\\d\\re\n"


def test_chinese_text_passes_unchanged():
    assert copy_line(("中国工商银行",)) == "中国工商银行\n"


def test_naive_datetimes_and_floats_are_refused():
    with pytest.raises(ValueError, match="naive"):
        copy_line((dt.datetime(2026, 1, 1),))  # noqa: DTZ001 - the point of the test
    with pytest.raises(TypeError, match="float"):
        copy_line((0.1,))
