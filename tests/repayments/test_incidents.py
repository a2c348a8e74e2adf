"""System-fault incidents (issue #5): detection, shielding while open, relief and its reversal."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditEvent, User
from baitiao.business_time import business_datetime, business_today
from repayments.models import (
    AttemptStatus,
    Bill,
    BillStatus,
    BureauSuppression,
    FailureFamily,
    Incident,
    IncidentStatus,
    Notification,
    ReliefBatch,
    ReliefItem,
    ReliefStatus,
    Reminder,
    RepaymentAttempt,
)
from repayments.selectors.incidents import relief_preview
from repayments.services.collection import collection_run
from repayments.services.delinquency import bills_refresh_delinquency
from repayments.services.errors import RuleViolation
from repayments.services.incidents import (
    incident_declare,
    incident_detect,
    incident_resolve,
    relief_approve,
    relief_notify,
    relief_request,
    relief_reverse,
    relief_run,
)
from repayments.services.reminders import reminders_send_due
from tests.engine import customer_with_due_bill, start_cluster, wait_for

BANK = "KMRCU"  # a bank of the BIN table the session's UCI data never uses (its cards are the 13 major banks)
OTHER_BANK = "YNRCC"  # another bank of the BIN table, also unused by the UCI data
# The incident's window: six hours before the suite started, on the real clock (an
# incident is declared after the fact, and the relief, the reminders and the cluster
# run in real time). The session's UCI data is older and on other banks.
START = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=6)
END = START + dt.timedelta(hours=1)
BILL_FIELDS = ("due_date", "status", "dpd", "dpd_as_of", "late_fee", "late_fee_waived", "retry_at", "amount_paid")


def other_supervisor() -> User:
    user = User.objects.create_user(username=f"second_supervisor_{uuid.uuid4().hex[:6]}")
    user.groups.add(Group.objects.get(name="supervisor"))
    return user


def failed_bill(family: str, code: str, *, at: dt.datetime = START + dt.timedelta(minutes=10), bank: str = BANK):
    """An overdue bill (10 days, a late fee) whose latest debit failed with ``code`` at ``at`` on ``bank``."""
    today = business_today()
    _, bill, binding = customer_with_due_bill(due=today - dt.timedelta(days=10), amount="1000.00")
    binding.bank_code = bank
    binding.save(update_fields=["bank_code"])
    RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-A1",
        bill=bill,
        card_binding=binding,
        amount=bill.amount_due,
        status=AttemptStatus.FAILED,
        failure_code=code,
        failure_family=family,
        requested_at=at,
        completed_at=at,
    )
    Bill.objects.filter(pk=bill.pk).update(
        status=BillStatus.OVERDUE,
        dpd=10,
        dpd_as_of=today,
        late_fee=Decimal("5.00"),
        last_failure_family=family,
        last_failure_code=code,
        last_failure_at=at,
        debit_attempts=1,
        retry_at=at + dt.timedelta(minutes=5),
    )
    bill.refresh_from_db()
    return bill


def resolved_incident(supervisor) -> Incident:
    return incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=END, description="core down"
    )


def snapshot(bill: Bill) -> dict:
    bill.refresh_from_db()
    return {name: getattr(bill, name) for name in BILL_FIELDS}


@pytest.fixture
def mixed_bills(db):
    """Three bills failed by the outage, one binding failure and one funds failure in the same window."""
    return {
        "system": [
            failed_bill(FailureFamily.SYSTEM, "bank_system_error"),
            failed_bill(FailureFamily.SYSTEM, "channel_unavailable"),
            failed_bill(FailureFamily.SYSTEM, "timeout"),
        ],
        "binding": [failed_bill(FailureFamily.BINDING, "card_expired")],
        "funds": [failed_bill(FailureFamily.FUNDS, "insufficient_funds")],
        # The right family, but another bank and outside the window: not this incident's.
        "other_bank": [failed_bill(FailureFamily.SYSTEM, "bank_system_error", bank=OTHER_BANK)],
        "before_window": [failed_bill(FailureFamily.SYSTEM, "timeout", at=START - dt.timedelta(hours=3))],
    }


def approved_and_run(incident, supervisor, *, days: int = 30) -> ReliefBatch:
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=days, note="outage 1 March")
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    relief_run(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def test_relief_reaches_exactly_the_system_failed_bills_and_none_of_the_binding_or_funds_failures(
    supervisor, mixed_bills
):
    incident = resolved_incident(supervisor)
    preview = relief_preview(incident=incident, until=timezone.now())
    assert preview.bills == 3 and preview.customers == 3
    assert preview.owed_by_currency == {"CNY": Decimal("3015.00")}  # 3 × (1000 + 5 fee)
    assert preview.failures_by_family == {"system": 3, "binding": 1, "funds": 1}
    batch = approved_and_run(incident, supervisor)
    relieved = set(batch.items.filter(applied=True).values_list("bill_id", flat=True))
    assert relieved == {bill.pk for bill in mixed_bills["system"]}
    assert (batch.status, batch.bills_total, batch.bills_done, batch.bills_applied) == (ReliefStatus.DONE, 3, 3, 3)
    for family in ("binding", "funds", "other_bank", "before_window"):
        bill = mixed_bills[family][0]
        before = snapshot(bill)
        assert before["due_date"] == business_today() - dt.timedelta(days=10), family
        assert not BureauSuppression.objects.filter(bill=bill).exists(), family


def test_relieved_bills_get_no_late_fee_and_a_bureau_suppression_each(supervisor, mixed_bills):
    incident = resolved_incident(supervisor)
    before = timezone.now()
    batch = approved_and_run(incident, supervisor, days=30)
    after = timezone.now()
    bills_refresh_delinquency(as_of=business_today(), audit=False)  # the nightly aging must not charge them again
    for bill in mixed_bills["system"]:
        bill.refresh_from_db()
        assert bill.late_fee_waived == bill.late_fee == Decimal("5.00")
        assert bill.due_date == business_today() + dt.timedelta(days=20)
        assert (bill.status, bill.dpd) == (BillStatus.PENDING, 0)
        # Re-debited 30 minutes after recovery: the incident ended hours ago, so 30 minutes after the run.
        assert before + dt.timedelta(minutes=30) <= bill.retry_at <= after + dt.timedelta(minutes=30)
        [suppression] = BureauSuppression.objects.filter(bill=bill)
        assert suppression.incident_id == incident.pk and suppression.extension_id is None
        assert suppression.suppress_until == bill.due_date + dt.timedelta(days=3)
    funds = mixed_bills["funds"][0]
    funds.refresh_from_db()
    assert funds.late_fee > Decimal("0.00") and funds.late_fee_waived == Decimal("0.00")  # not relieved
    # Every write of the batch is in the audit trail under one audit id.
    events = AuditEvent.objects.filter(request_id=str(batch.audit_id))
    assert set(events.values_list("action", flat=True)) == {
        "relief.request",
        "relief.approve",
        "relief.apply",
        "relief.done",
    }
    assert events.filter(action="relief.apply").count() == 3


def test_the_apology_is_sent_once_per_relieved_bill(supervisor, mixed_bills):
    batch = approved_and_run(resolved_incident(supervisor), supervisor)
    item_ids = list(batch.items.values_list("id", flat=True))
    first = relief_notify(item_ids=item_ids)
    assert first == 6  # in-app and SMS for each of the three bills
    assert relief_notify(item_ids=item_ids) == 0  # a replayed task tells nobody twice
    assert Notification.objects.filter(event="incident_apology").count() == 6


def test_reversal_restores_every_field_of_every_bill(supervisor, mixed_bills):
    incident = resolved_incident(supervisor)
    before = {bill.pk: snapshot(bill) for bill in mixed_bills["system"]}
    batch = approved_and_run(incident, supervisor)
    assert all(snapshot(bill) != before[bill.pk] for bill in mixed_bills["system"])
    relief_reverse(batch_id=batch.pk, reversed_by=other_supervisor(), reason="relief sent to the wrong window")
    batch.refresh_from_db()
    assert (batch.status, batch.bills_reversed) == (ReliefStatus.REVERSED, 3)
    for bill in mixed_bills["system"]:
        assert snapshot(bill) == before[bill.pk]
        assert BureauSuppression.objects.get(bill=bill).revoked_at is not None
    assert AuditEvent.objects.filter(request_id=str(batch.audit_id), action="relief.reverse").count() == 3


def test_approving_ones_own_batch_is_refused(supervisor, mixed_bills):
    batch = relief_request(incident_id=resolved_incident(supervisor).pk, requested_by=supervisor, days=7)
    with pytest.raises(RuleViolation, match="your own"):
        relief_approve(batch_id=batch.pk, approved_by=supervisor)
    batch.refresh_from_db()
    assert batch.status == ReliefStatus.REQUESTED and batch.approved_by is None
    # The database refuses it too, whatever code writes the row.
    with pytest.raises(IntegrityError), transaction.atomic():
        ReliefBatch.objects.filter(pk=batch.pk).update(status=ReliefStatus.APPROVED, approved_by=supervisor)


def test_reversing_a_batch_twice_is_refused(supervisor, mixed_bills):
    batch = approved_and_run(resolved_incident(supervisor), supervisor)
    checker = other_supervisor()
    relief_reverse(batch_id=batch.pk, reversed_by=checker, reason="wrong window")
    after_first = {bill.pk: snapshot(bill) for bill in mixed_bills["system"]}
    with pytest.raises(RuleViolation, match="already been reversed"):
        relief_reverse(batch_id=batch.pk, reversed_by=checker, reason="wrong window")
    assert {bill.pk: snapshot(bill) for bill in mixed_bills["system"]} == after_first


def test_an_overlapping_declaration_is_refused(supervisor):
    incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=END, description="core down"
    )
    with pytest.raises(RuleViolation, match="overlaps"):
        incident_declare(
            declared_by=supervisor,
            bank_code=BANK,
            channel="auto_debit",
            started_at=START + dt.timedelta(minutes=30),
            ended_at=None,
            description="again",
        )
    with pytest.raises(RuleViolation, match="overlaps"):  # an every-bank incident meets the bank's
        incident_declare(
            declared_by=supervisor, bank_code="", channel="", started_at=END, ended_at=None, description="all"
        )
    assert Incident.objects.filter(bank_code__in=[BANK, ""]).count() == 1
    # Another bank, or after the window: fine.
    incident_declare(
        declared_by=supervisor, bank_code=OTHER_BANK, channel="", started_at=START, ended_at=END, description="x"
    )
    incident_declare(
        declared_by=supervisor,
        bank_code=BANK,
        channel="",
        started_at=END + dt.timedelta(minutes=1),
        ended_at=END + dt.timedelta(hours=1),
        description="y",
    )


def test_a_bill_paid_meanwhile_is_skipped_and_reported(supervisor, mixed_bills):
    batch = relief_request(incident_id=resolved_incident(supervisor).pk, requested_by=supervisor, days=7)
    paid = mixed_bills["system"][0]
    Bill.objects.filter(pk=paid.pk).update(status=BillStatus.PAID, amount_paid=Decimal("1005.00"))
    before = snapshot(paid)
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    relief_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.bills_applied, batch.bills_skipped, batch.status) == (2, 1, ReliefStatus.DONE)
    assert ReliefItem.objects.get(batch=batch, bill=paid).skip_reason == "paid"
    assert snapshot(paid) == before
    assert not BureauSuppression.objects.filter(bill=paid).exists()


def test_rerunning_a_batch_applies_nothing_twice_and_resumes_after_a_crash(supervisor, mixed_bills):
    batch = relief_request(incident_id=resolved_incident(supervisor).pk, requested_by=supervisor, days=7)
    relief_approve(batch_id=batch.pk, approved_by=other_supervisor())
    # The worker dies after the first chunk of two bills.
    assert relief_run(batch_id=batch.pk, chunk=2, max_chunks=1)["applied"] == 2
    batch.refresh_from_db()
    assert (batch.status, batch.bills_done) == (ReliefStatus.RUNNING, 2)
    due_dates = {bill.pk: snapshot(bill)["due_date"] for bill in mixed_bills["system"]}
    assert relief_run(batch_id=batch.pk, chunk=2)["applied"] == 1  # resumes with the rest
    assert relief_run(batch_id=batch.pk)["applied"] == 0  # done: nothing again
    batch.refresh_from_db()
    assert (batch.status, batch.bills_done, batch.bills_applied) == (ReliefStatus.DONE, 3, 3)
    applied_first = [pk for pk, due in due_dates.items() if due != business_today() - dt.timedelta(days=10)]
    assert len(applied_first) == 2
    for bill in mixed_bills["system"]:
        assert snapshot(bill)["due_date"] == business_today() - dt.timedelta(days=10) + dt.timedelta(days=7)
        assert BureauSuppression.objects.filter(bill=bill).count() == 1


def test_while_an_incident_is_open_its_bills_do_not_age_and_are_not_reminded(supervisor, mixed_bills):
    incident_declare(
        declared_by=supervisor, bank_code=BANK, channel="", started_at=START, ended_at=None, description="down now"
    )
    shielded, funds = mixed_bills["system"][0], mixed_bills["funds"][0]
    # The open incident pushed the shielded bills' system retries back to the cap.
    assert snapshot(shielded)["retry_at"] >= timezone.now() + dt.timedelta(minutes=119)
    Reminder.objects.create(bill=shielded, offset_days=1, risk_tier="low", scheduled_at=timezone.now())
    Reminder.objects.create(bill=funds, offset_days=1, risk_tier="low", scheduled_at=timezone.now())
    later = business_today() + dt.timedelta(days=5)
    bills_refresh_delinquency(as_of=later, audit=False)
    assert (snapshot(shielded)["dpd"], snapshot(shielded)["late_fee"]) == (10, Decimal("5.00"))
    assert snapshot(funds)["dpd"] == 15
    reminders_send_due(now=business_datetime(business_today(), dt.time(12, 0)) + dt.timedelta(days=1))
    assert Reminder.objects.get(bill=shielded).skip_reason == "incident"
    assert Reminder.objects.get(bill=funds).skip_reason != "incident"


def test_detection_opens_one_incident_per_bank_and_emails_the_supervisors(
    supervisor, django_capture_on_commit_callbacks
):
    supervisor.email = "supervisor@example.com"
    supervisor.save(update_fields=["email"])
    at = START + dt.timedelta(minutes=2)
    for n in range(50):
        family, code = (FailureFamily.SYSTEM, "bank_system_error") if n < 12 else (FailureFamily.FUNDS, "exceeds_limit")
        failed_bill(family, code, at=at)
    now = START + dt.timedelta(minutes=4)
    with django_capture_on_commit_callbacks(execute=True):
        [incident] = incident_detect(now=now)
    assert (incident.bank_code, incident.status, incident.source) == (BANK, IncidentStatus.OPEN, "detected")
    assert (incident.attempts_seen, incident.system_failures_seen) == (50, 12)
    assert incident_detect(now=now) == []  # already open: nothing new
    assert [m.to for m in mail.outbox] == [["supervisor@example.com"]]
    assert BANK in mail.outbox[0].subject
    incident_resolve(incident_id=incident.pk, resolved_by=supervisor, ended_at=now + dt.timedelta(minutes=20))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and incident.ended_at == now + dt.timedelta(minutes=20)


def test_below_the_threshold_no_incident_opens(db):
    at = START + dt.timedelta(minutes=2)
    for n in range(50):
        family, code = (FailureFamily.SYSTEM, "timeout") if n < 9 else (FailureFamily.FUNDS, "exceeds_limit")
        failed_bill(family, code, at=at)  # 9 of 50: 18 %
    assert incident_detect(now=START + dt.timedelta(minutes=4)) == []


# --- live: the sandbox bank in outage during a collection run, the django-q2 cluster -----------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("empty_domain")
def test_an_outage_during_a_collection_run_opens_an_incident_by_itself_and_relief_reaches_exactly_its_bills(
    live_bank, supervisor
):
    from django.core.management import call_command
    from django_q.models import Schedule

    sandbox = live_bank(hold_seconds=4)
    call_command("setup_schedules")
    Schedule.objects.update(next_run=timezone.now() + dt.timedelta(days=2))  # only what the test triggers runs
    clusters = [start_cluster(sandbox.url, Q_CLUSTER_NAME=lane) for lane in ("baitiao", "notify", "critical")]
    try:
        due = timezone.localdate() - dt.timedelta(days=1)  # debitable whatever the wall clock says
        for n in range(3):
            customer_with_due_bill(due=due, customer_no=f"CARD-{n}", scenario="card_expired")
            customer_with_due_bill(due=due, customer_no=f"FUND-{n}", scenario="lowfunds")
        collection_run()
        wait_for(lambda: RepaymentAttempt.objects.filter(status="failed").count() == 6, timeout=60, what="6 declines")
        for n in range(60):
            customer_with_due_bill(due=due, customer_no=f"SYS-{n:02d}", amount=f"{200 + n}.00")
        sandbox.outage("error")
        outage_started = timezone.now()
        collection_run()
        wait_for(
            lambda: RepaymentAttempt.objects.filter(failure_family="system").count() == 60,
            timeout=90,
            what="60 system failures",
        )
        Schedule.objects.filter(name="detect-incidents").update(next_run=timezone.now())
        incident = wait_for(
            lambda: Incident.objects.filter(status="open", bank_code="ICBC").first(),
            timeout=120,
            what="the scheduled detection to open an incident",
        )
        assert timezone.now() - outage_started < dt.timedelta(minutes=2)
        assert incident.source == "detected" and incident.system_failures_seen == 60
        sandbox.outage("off")

        incident_resolve(incident_id=incident.pk, resolved_by=supervisor)
        system_bills = list(Bill.objects.filter(customer__customer_no__startswith="SYS-"))
        before = {bill.pk: snapshot(bill) for bill in system_bills}
        batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=14, note="bank core outage")
        assert batch.bills_total == 60
        relief_approve(batch_id=batch.pk, approved_by=other_supervisor())  # queued on the live cluster
        wait_for(
            lambda: ReliefBatch.objects.filter(pk=batch.pk, status=ReliefStatus.DONE).exists(),
            timeout=60,
            what="the cluster to run the relief batch",
        )
        relieved = set(ReliefItem.objects.filter(batch=batch, applied=True).values_list("bill__customer__customer_no"))
        assert relieved == {(f"SYS-{n:02d}",) for n in range(60)}
        for bill in system_bills:
            bill.refresh_from_db()
            assert bill.late_fee == bill.late_fee_waived
            assert bill.due_date == before[bill.pk]["due_date"] + dt.timedelta(days=14)
            assert BureauSuppression.objects.filter(bill=bill, incident=incident).count() == 1
        assert not BureauSuppression.objects.exclude(bill__in=system_bills).exists()  # no binding or funds bill
        wait_for(
            lambda: Notification.objects.filter(event="incident_apology", channel="in_app").count() == 60,
            timeout=60,
            what="the apologies on the notify cluster",
        )
        relief_reverse(batch_id=batch.pk, reversed_by=other_supervisor(), reason="test: undo the whole batch")
        assert {bill.pk: snapshot(bill) for bill in system_bills} == before
    finally:
        for cluster in clusters:
            cluster.stop()


def test_the_incident_page_shows_scope_relief_progress_and_every_page_the_open_banner(
    client, supervisor, agent, mixed_bills
):
    from django.core.cache import cache
    from django.urls import reverse

    incident = resolved_incident(supervisor)
    batch = approved_and_run(incident, supervisor)
    client.force_login(supervisor)
    page = client.get(reverse("console:incident-detail", args=[incident.pk])).content.decode()
    assert "3 of 3 bills processed: 3 relieved, 0 skipped." in page
    assert str(batch.audit_id) in page and "昆明农村信用联合社 (KMRCU)" in page
    assert "Reverse the whole batch" in page
    cache.clear()
    incident_declare(
        declared_by=supervisor, bank_code="YNRCC", channel="", started_at=timezone.now(), ended_at=None, description="x"
    )
    cache.clear()  # the banner is cached for 30 s; on_commit never fires inside this test's transaction
    client.force_login(agent)
    worklist = client.get(reverse("console:worklist")).content.decode()
    assert 'data-testid="incident-banner"' in worklist and "YNRCC" in worklist
    cache.clear()


def test_the_bureau_ledger_says_why_each_bill_was_not_reported_and_who_decided(client, agent, supervisor, auditor):
    import csv
    import io
    import uuid

    from django.urls import reverse

    from repayments.services.extensions import extension_decide, extension_request
    from tests.factories import BillFactory

    # Ten days late whatever day the suite runs (the factory's fixed due date ages).
    bill = BillFactory(status="overdue", dpd=10, due_date=timezone.localdate() - dt.timedelta(days=10))
    extension = extension_request(
        bill_id=bill.id, requested_by=agent, days=20, reason="hardship", request_token=uuid.uuid4()
    )
    extension_decide(extension_id=extension.id, decided_by=supervisor, approve=True)
    client.force_login(auditor)
    page = client.get(reverse("console:bureau-ledger"), {"customer": bill.customer.customer_no})
    rows = page.context["entries"]
    assert [(r["bill_no"], r["cause"], r["decided_by"]) for r in rows] == [
        (bill.bill_no, "extension", supervisor.username)
    ]
    export = client.get(reverse("console:bureau-ledger-export"), {"cause": "extension", "bill": bill.bill_no})
    lines = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert lines[0][:3] == ["created_at", "bill_no", "customer_no"]
    row = dict(zip(lines[0], lines[1], strict=True))
    assert (row["bill_no"], row["cause"]) == (bill.bill_no, "extension")
    # The account's delinquency the bureau is not told of, as of the last aging.
    bill.refresh_from_db()
    assert (row["cycles_past_due"], row["dpd"]) == (str(bill.cycles_past_due), str(bill.dpd))
    bad = client.get(reverse("console:bureau-ledger"), {"period": "10/2026"})
    assert bad.context["errors"] == ["Period: “10/2026” is not a month (YYYY-MM)."]


def test_a_bill_with_a_debit_at_the_bank_waits_and_is_relieved_once_the_debit_has_failed(supervisor, admin_user):
    """Relief never drops a bill because a debit was in flight: the batch waits for it."""
    from repayments.services.incidents import incident_declare, relief_approve, relief_request, relief_run
    from tests.factories import BillFactory, CardBindingFactory

    start = timezone.now() - dt.timedelta(hours=2)
    bill = BillFactory(status="overdue", dpd=5, late_fee=Decimal("4.00"))
    binding = CardBindingFactory(customer=bill.customer, bank_code="ICBC")
    failed_at = start + dt.timedelta(minutes=5)
    RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-S1",
        bill=bill,
        card_binding=binding,
        amount=Decimal("1004.00"),
        status="failed",
        failure_code="bank_system_error",
        failure_family="system",
        requested_at=failed_at,
        completed_at=failed_at,
    )
    Bill.objects.filter(pk=bill.pk).update(last_failure_family="system", last_failure_at=failed_at)
    incident = incident_declare(
        declared_by=supervisor,
        bank_code="ICBC",
        channel="",
        started_at=start,
        ended_at=start + dt.timedelta(minutes=30),
        description="core banking down",
    )
    batch = relief_request(incident_id=incident.pk, requested_by=supervisor, days=7, note="")
    relief_approve(batch_id=batch.pk, approved_by=admin_user)
    in_flight = RepaymentAttempt.objects.create(
        attempt_no=f"{bill.bill_no}-A9",
        bill=bill,
        card_binding=binding,
        amount=Decimal("1004.00"),
        status="processing",
        requested_at=timezone.now(),
    )
    relief_run(batch_id=batch.pk)
    item = ReliefItem.objects.get(batch=batch, bill=bill)
    assert (item.processed_at, item.applied) == (None, False)
    assert ReliefBatch.objects.get(pk=batch.pk).status == "running"
    RepaymentAttempt.objects.filter(pk=in_flight.pk).update(
        status="failed", failure_code="bank_system_error", failure_family="system", completed_at=timezone.now()
    )
    relief_run(batch_id=batch.pk)
    item.refresh_from_db()
    bill.refresh_from_db()
    assert item.applied
    assert bill.late_fee_waived == Decimal("4.00")
    assert ReliefBatch.objects.get(pk=batch.pk).status == "done"
