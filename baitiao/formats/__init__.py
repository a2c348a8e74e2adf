"""The console's formats, one per language (``FORMAT_MODULE_PATH``): the same in English and Chinese.

Dates as ``2026-12-07``, moments as ``2026-12-07 22:41`` (business time: Django shows
aware datetimes in ``TIME_ZONE``), numbers with a comma every three digits. Django's
own zh_Hans formats (``2026年12月7日``, no separator, groups of four) would make
the two languages disagree and hide separators from Chinese readers, whose
bank statements use the comma too. Anything not set here falls back to Django's
locale formats (input formats, first day of the week).
"""
