"""Make ``time.sleep`` work in Python processes run under libfaketime (``make test-shifted``).

``make test-shifted`` runs the suite and every process it starts (PostgreSQL, the
sandbox bank, the django-q2 clusters, live servers) under ``faketime`` with the
monotonic clock left real (``FAKETIME_DONT_FAKE_MONOTONIC=1``), so that timeouts
and lock waits keep working. Python 3.11 sleeps with
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, …)``, and libfaketime 0.9.10
(Debian's) shifts that absolute deadline by the fake offset even when the
monotonic clock is not faked: the kernel gets a negative time and ``time.sleep``
raises ``OSError: [Errno 22] Invalid argument`` (a shift forward) or sleeps days
(a shift back); libfaketime issue #426, fixed after 0.9.10.

This module is found only through ``PYTHONPATH`` (the Makefile target sets it),
and it changes nothing unless libfaketime is preloaded with the monotonic clock
excluded: then ``time.sleep`` waits in ``select()``, whose timeout is relative.
"""

from __future__ import annotations

import os
import select
import time


def _sleep_relative(seconds: float) -> None:
    """``time.sleep`` through ``select()``: ``seconds`` (float, ≥ 0); ValueError if negative."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        select.select([], [], [], remaining)


if "faketime" in os.environ.get("LD_PRELOAD", "") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
    time.sleep = _sleep_relative
