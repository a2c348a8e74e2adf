"""Tasks for the queue tests, run by real ``qcluster`` processes: each execution leaves a row.

The table has no unique constraint on purpose, so a task executed twice shows as two
rows. Created and dropped by the tests (raw SQL: it is no model of the product).
"""

from __future__ import annotations

import os
import time

from django.db import connection

TABLE = "ops_task_execution"
CREATE = f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        id bigserial PRIMARY KEY,
        label text NOT NULL,
        cluster text NOT NULL,
        pid integer NOT NULL,
        executed_at timestamptz NOT NULL DEFAULT now()
    )
"""


def record(label: str, seconds: float = 0.0) -> str:
    """Record one execution of ``label`` by this cluster (``OPS_CLUSTER_LABEL``), taking ``seconds``."""
    if seconds:
        time.sleep(seconds)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (label, cluster, pid) VALUES (%s, %s, %s)",  # noqa: S608 - constant name
            [label, os.environ.get("OPS_CLUSTER_LABEL", ""), os.getpid()],
        )
    return label
