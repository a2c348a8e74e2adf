"""Import problems and notes follow the language of whoever runs the import (``docs/csv.md``).

The console request's language for inline imports, the uploader's language for a job
the worker runs later, English on the command line unless ``--language`` says otherwise.
"""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from repayments.models import ImportJob, ImportJobStatus
from repayments.services import imports
from tests.repayments.imports.conftest import BILLS_HEADER

# Row 2: a due date that is not a real day and a negative amount paid.
BAD_BILLS_CSV = BILLS_HEADER + "B0001,C0001,2024-03,2024-03-05,2024-02-30,100.00,100.00,10.00,-5.00,pending\n"

ENGLISH = {
    (2, "due_date", "2024-02-30"): "The due date '2024-02-30' is not a real calendar date.",
    (2, "amount_paid", "-5.00"): "The amount paid '-5.00' is negative.",
}
CHINESE = {
    (2, "due_date", "2024-02-30"): "到期日 '2024-02-30' 不是真实存在的日期。",
    (2, "amount_paid", "-5.00"): "已还金额 '-5.00' 是负数。",
}


@pytest.fixture(autouse=True)
def _default_language_afterwards():
    """The test client leaves the request's language active in the thread (LocaleMiddleware
    does not reset it); later tests expect the default language."""
    yield
    translation.deactivate()


def _messages(problems) -> dict[tuple, str]:
    return {(p.row, p.column, p.value): p.message for p in problems}


def test_a_bad_date_and_a_negative_amount_are_reported_in_chinese_under_zh_hans(run_import, three_customers):
    with translation.override("zh-hans"):
        outcome = run_import("bills", BAD_BILLS_CSV)
        report = outcome.error_report().decode("utf-8-sig").splitlines()
        shown = str(outcome.problems[0])
    assert outcome.status == "rejected"
    assert _messages(outcome.problems) == CHINESE
    assert report[0] == "行,列,值,问题"
    assert report[1] == "2,due_date,2024-02-30,到期日 '2024-02-30' 不是真实存在的日期。"
    assert shown == "第 2 行，列 due_date（值 '2024-02-30'）：到期日 '2024-02-30' 不是真实存在的日期。"


def test_the_same_file_in_english_gives_the_english_messages_of_today(run_import, three_customers):
    with translation.override("en"):
        outcome = run_import("bills", BAD_BILLS_CSV)
        report = outcome.error_report().decode("utf-8-sig").splitlines()
        shown = str(outcome.problems[0])
    assert _messages(outcome.problems) == ENGLISH
    assert report[0] == "row,column,value,message"
    assert shown == (
        "row 2, column due_date (value '2024-02-30'): The due date '2024-02-30' is not a real calendar date."
    )


def test_the_fast_path_also_reports_in_chinese_under_zh_hans(run_import, three_customers):
    with translation.override("zh-hans"):
        outcome = run_import("bills", BAD_BILLS_CSV, fast_path=True)
    messages = _messages(outcome.problems)
    assert outcome.fast_path and set(messages) == set(CHINESE)
    assert messages[(2, "due_date", "2024-02-30")] == "日期 '2024-02-30' 不是真实存在的日期。"
    assert messages[(2, "amount_paid", "-5.00")] == "已还金额 '-5.00' 是负数。"


def test_a_file_level_problem_is_reported_in_chinese_too(run_import):
    with translation.override("zh-hans"):
        outcome = run_import("bills", b"")
    assert [p.message for p in outcome.problems] == ["文件为空。"]


def test_a_queued_job_created_under_zh_hans_reports_in_chinese_when_the_worker_runs_it(
    analyst, three_customers, queue_every_upload
):
    with translation.override("zh-hans"):
        job = imports.import_job_create(
            actor=analyst, resource="bills", filename="账单.csv", content=BAD_BILLS_CSV.encode(), options={}
        )
    assert job.status == ImportJobStatus.QUEUED and job.options == {"language": "zh-hans"}

    # The worker runs with the default language active.
    assert imports.import_job_run(job_id=job.pk) == ImportJobStatus.REJECTED
    job.refresh_from_db()
    report = bytes(job.error_report).decode("utf-8-sig").splitlines()
    assert report[0] == "行,列,值,问题"
    assert report[1:] == [
        "2,due_date,2024-02-30,到期日 '2024-02-30' 不是真实存在的日期。",
        "2,amount_paid,-5.00,已还金额 '-5.00' 是负数。",
    ]
    assert translation.get_language() == settings.LANGUAGE_CODE  # the override did not leak


def test_a_job_recorded_without_a_language_reports_in_english(analyst, three_customers, queue_every_upload):
    job = imports.import_job_create(
        actor=analyst, resource="bills", filename="bills.csv", content=BAD_BILLS_CSV.encode(), options={}
    )
    ImportJob.objects.filter(pk=job.pk).update(options={})  # as jobs queued before languages were kept
    with translation.override("zh-hans"):
        imports.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    report = bytes(job.error_report).decode("utf-8-sig").splitlines()
    assert report[0] == "row,column,value,message"
    assert report[1].endswith("The due date '2024-02-30' is not a real calendar date.")


def test_an_analyst_using_the_console_in_chinese_sees_chinese_problems(client, analyst, three_customers):
    client.force_login(analyst)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    upload = SimpleUploadedFile("账单.csv", BAD_BILLS_CSV.encode())
    response = client.post(reverse("data:import"), {"resource": "bills", "encoding": "auto", "file": upload})
    job = ImportJob.objects.get(resource="bills")
    assert job.options["language"] == "zh-hans"
    page = client.get(response.url).content.decode()
    assert "到期日 &#x27;2024-02-30&#x27; 不是真实存在的日期。" in page
    assert "已还金额 &#x27;-5.00&#x27; 是负数。" in page


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], "The due date '2024-02-30' is not a real calendar date."),
        (["--language", "zh-hans"], "到期日 '2024-02-30' 不是真实存在的日期。"),
    ],
)
def test_the_command_line_reports_in_english_unless_asked_for_chinese(three_customers, tmp_path, arguments, expected):
    path = tmp_path / "bills.csv"
    path.write_text(BAD_BILLS_CSV, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with translation.override("zh-hans"), pytest.raises(SystemExit):  # the caller's language does not count
        call_command("import_data", "bills", str(path), *arguments, stdout=out, stderr=err)
    assert expected in err.getvalue()
