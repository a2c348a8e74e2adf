"""A real queue worker killed (SIGKILL) in the middle of a big import (issue #15, defect 2).

A live django-q2 cluster runs the job; the test kills it once rows are being imported. The
job is then running with a heartbeat that no longer moves: the sweep takes it back, no row
of the file is in the database, and the next run applies the whole file once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from repayments.models import Customer, ImportJob, ImportJobStatus
from repayments.services import imports
from tests.engine import start_cluster, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 40_000


def _big_customers_file() -> bytes:
    lines = ["customer_no,credit_score,risk_tier"]
    lines += [f"KILL{n:06d},{350 + n % 600},{('low', 'medium', 'high')[n % 3]}" for n in range(ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_worker_killed_mid_import_leaves_no_row_written_and_the_job_runs_again(
    analyst, empty_domain, settings, queue_every_upload
):
    settings.IMPORT_JOBS = {**settings.IMPORT_JOBS, "stale_seconds": 3}
    job = imports.import_job_create(
        actor=analyst, resource="customers", filename="big.csv", content=_big_customers_file(), options={}
    )
    cluster = start_cluster("http://127.0.0.1:9", IMPORT_JOB_HEARTBEAT_SECONDS="1")
    try:
        wait_for(
            lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.RUNNING, rows_done__gte=2_000).exists(),
            timeout=120,
            what="the worker importing rows",
        )
        cluster.kill()
    finally:
        cluster.stop()
    job.refresh_from_db()
    assert job.status == ImportJobStatus.RUNNING and 0 < job.rows_done < ROWS
    assert not Customer.objects.filter(customer_no__startswith="KILL").exists()  # one transaction, rolled back

    # The sweep as it runs a few seconds later, when the beat is older than stale_seconds.
    later = timezone.now() + dt.timedelta(seconds=4)
    assert imports.import_jobs_sweep(now=later)["requeued"] == 1  # its task is on the queue again
    job.refresh_from_db()
    assert job.status == ImportJobStatus.QUEUED and job.upload_chunks.exists()

    assert imports.import_job_run(job_id=job.pk) == ImportJobStatus.APPLIED  # as the next worker would
    job.refresh_from_db()
    assert job.attempts == 2 and job.summary["created"] == ROWS and not job.upload_chunks.exists()
    assert Customer.objects.filter(customer_no__startswith="KILL").count() == ROWS
