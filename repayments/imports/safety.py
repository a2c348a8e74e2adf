"""Spreadsheet formula injection (CSV injection) in exported cells.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula by Excel and LibreOffice; the OWASP recommendation is to
prefix it with an apostrophe, which spreadsheets show as text. A plain number
(``-1234.50``, ``+8613800138000``) cannot run anything, so it is left alone:
negative amounts stay numbers and phone numbers stay intact.
"""

from __future__ import annotations

import re

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def neutralize(value: object) -> object:
    """``value`` made safe to open in a spreadsheet; non-strings are returned unchanged.

    ``=HYPERLINK("http://x")`` → ``'=HYPERLINK("http://x")``; ``-12.50`` and
    ``+8613800138000`` are unchanged.
    """
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value
