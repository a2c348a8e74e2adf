"""The optional read replica for reporting reads (the dashboard and analyst exports).

With ``DATABASE_REPLICA_URL`` set, settings add a ``replica`` database alias. Reads
go there only where a caller asks for it, never implicitly: the console's own
reads must see the writes they just made, and a replica lags behind by a few
hundred milliseconds or more.

Two ways to ask:

* ``queryset.using(reporting_db())`` for one query, and for anything evaluated
  lazily after the call returns (a streamed export's rows are read while the
  response is being sent, outside any ``with`` block);
* ``with reporting_reads(): ...`` for a block of reads (a dashboard selector
  running several aggregate queries): :class:`ReplicaRouter` sends every read made
  inside the block, in this thread or task, to :func:`reporting_db`.

Without the variable both are no-ops and everything reads ``default``. Writes always
go to ``default`` (also for rows that were read from the replica), and migrations
never run on the replica.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

REPLICA = "replica"
DEFAULT = "default"

_reporting = contextvars.ContextVar("baitiao_reporting_reads", default=False)


def reporting_db() -> str:
    """The alias reporting reads use: ``"replica"`` when configured, else ``"default"``.

    ``settings.REPORTING_DATABASE`` names it (``"replica"`` exactly when
    ``DATABASE_REPLICA_URL`` is set); an alias that is not configured falls back to
    ``"default"``.
    """
    alias = getattr(settings, "REPORTING_DATABASE", DEFAULT)
    return alias if alias in connections.settings else DEFAULT


@contextmanager
def reporting_reads() -> Iterator[str]:
    """Send the block's ORM reads to :func:`reporting_db`; yields that alias.

    Only reads evaluated inside the block are routed: a queryset built inside but
    iterated after the block reads ``default`` (use ``.using(reporting_db())`` then).
    """
    token = _reporting.set(True)
    try:
        yield reporting_db()
    finally:
        _reporting.reset(token)


class ReplicaRouter:
    """Reads inside :func:`reporting_reads` go to the replica; writes and migrations to ``default``."""

    def db_for_read(self, model, **hints) -> str | None:
        if _reporting.get():
            return reporting_db()
        return None  # Django's default: the instance's database, else "default"

    def db_for_write(self, model, **hints) -> str:
        # Explicit: otherwise Django would save an instance read from the replica
        # back to the replica (it falls back to ``instance._state.db``).
        return DEFAULT

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        # Both aliases hold the same data; relations across them are fine.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        if db == REPLICA:
            return False  # the replica follows the primary by streaming replication
        return None
