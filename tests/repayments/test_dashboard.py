"""The receivables dashboard (issue #7): every section equals direct SQL on the base tables.

The session's UCI data (30,000 real holders) is topped up with failed debits,
recoveries through each channel, reminders, extensions, waivers and an incident,
then the rollups are refreshed and each section is compared with a query written
independently on bills, attempts, reminders and the rest (no rollup involved).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from baitiao.business_time import delinquency_bucket
from repayments.models import (
    ApprovalStatus,
    Bill,
    BillStatus,
    BindingRepairCase,
    CardBinding,
    Channel,
    CreditLine,
    Extension,
    FailureFamily,
    Incident,
    IncidentSource,
    IncidentStatus,
    Notification,
    NotificationChannel,
    NotificationEvent,
    ReliefBatch,
    ReliefItem,
    ReliefStatus,
    Reminder,
    RepaymentAttempt,
    Waiver,
)
from repayments.selectors.dashboard import (
    DashboardFilters,
    dashboard_sections,
    filter_choices,
    last_refresh,
    parse_dashboard_filters,
    recovery_label,
    section_buckets,
    section_failures_bank,
)
from repayments.services.dashboard import dashboard_refresh

pytestmark = pytest.mark.django_db
FAMILIES = [FailureFamily.FUNDS, FailureFamily.SYSTEM, FailureFamily.BINDING, FailureFamily.OTHER]
CODES = {"funds": "insufficient_funds", "system": "bank_system_error", "binding": "card_expired", "other": "other"}


def _sql(query: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)), timezone.get_default_timezone())


def add_dashboard_activity(*, agent, supervisor) -> dict:
    """Operations on top of the UCI data: 80 overdue bills debited again, recovered by every channel.

    Also used by the browser test (tests/e2e/test_dashboard.py). Refreshes the rollups.
    """
    bills = list(
        Bill.objects.filter(status=BillStatus.OVERDUE).select_related("customer", "credit_line").order_by("id")[:80]
    )
    cards = {c.customer_id: c for c in CardBinding.objects.filter(customer__in=[b.customer_id for b in bills])}
    attempts, extensions, reminders, notifications, waivers = [], [], [], [], []
    for index, bill in enumerate(bills):
        card = cards[bill.customer_id]
        failed_on = bill.due_date + dt.timedelta(days=1)
        family = FAMILIES[index % 4]
        attempts.append(
            RepaymentAttempt(
                attempt_no=f"{bill.bill_no}-T1",
                bill=bill,
                card_binding=card,
                amount=bill.amount_due,
                status="failed",
                failure_family=family,
                failure_code=CODES[family],
                requested_at=_at(failed_on),
                completed_at=_at(failed_on),
            )
        )
        paid_on = failed_on + dt.timedelta(days=3)
        if index % 7 == 0:
            waivers.append(
                Waiver(
                    bill=bill,
                    customer=bill.customer,
                    amount=Decimal("1.50"),
                    reason="hardship",
                    status=ApprovalStatus.APPROVED,
                    requested_by=agent,
                    decided_by=supervisor,
                    decided_at=_at(failed_on),
                    request_token=uuid.uuid4(),
                )
            )
        kind = index % 5
        if kind == 0:  # an automatic retry succeeds
            channel = Channel.AUTO_DEBIT
        elif kind == 1:  # an agent's manual retry
            channel = Channel.AGENT
        elif kind == 2:  # an extension, then the debit on the new date
            channel = Channel.AUTO_DEBIT
            extensions.append(
                Extension(
                    bill=bill,
                    customer=bill.customer,
                    days=10,
                    reason="hardship",
                    status=ApprovalStatus.APPROVED,
                    requested_by=agent,
                    decided_by=supervisor,
                    decided_at=_at(failed_on, 12),
                    request_token=uuid.uuid4(),
                )
            )
        else:  # a reminder; for kind 3 the customer pays the next day, for kind 4 nobody pays
            channel = Channel.CUSTOMER
            reminder = Reminder(
                bill=bill,
                offset_days=2,
                risk_tier=bill.customer.risk_tier,
                scheduled_at=_at(paid_on - dt.timedelta(days=1)),
                status=Reminder.Status.SENT,
                sent_at=_at(paid_on - dt.timedelta(days=1)),
            )
            reminders.append(reminder)
            for message_channel in (NotificationChannel.SMS, NotificationChannel.PUSH):
                notifications.append(
                    Notification(
                        customer=bill.customer,
                        bill=bill,
                        reminder=reminder,
                        event=NotificationEvent.REMINDER_OVERDUE,
                        channel=message_channel,
                        language="zh-hans",
                        body="提醒",
                        status="sent",
                        sent_at=reminder.sent_at,
                    )
                )
            if kind == 4:
                continue
        attempts.append(
            RepaymentAttempt(
                attempt_no=f"{bill.bill_no}-T2",
                bill=bill,
                card_binding=card,
                channel=channel,
                amount=bill.amount_due,
                status="succeeded",
                requested_at=_at(paid_on),
                completed_at=_at(paid_on, 10),
            )
        )
    RepaymentAttempt.objects.bulk_create(attempts)
    Extension.objects.bulk_create(extensions)
    Reminder.objects.bulk_create(reminders)
    Notification.objects.bulk_create(notifications)
    Waiver.objects.bulk_create(waivers)
    # A binding repaired by an agent just before the first bill's retry: that success counts as "agent" even as
    # an auto-debit; the card's earlier debits (the UCI history) do not (72-hour window).
    first = bills[0]
    BindingRepairCase.objects.create(
        customer=first.customer,
        card_binding=cards[first.customer_id],
        failure_code="card_expired",
        status="resolved",
        new_binding=cards[first.customer_id],
        resolved_at=_at(first.due_date + dt.timedelta(days=4), 8),  # an hour before its retry
        resolved_by=agent,
    )
    # An incident on the bank of the system failures, with relief on three bills.
    system = next(a for a in attempts if a.failure_family == FailureFamily.SYSTEM)
    incident = Incident.objects.create(
        bank_code=system.card_binding.bank_code,
        started_at=system.requested_at - dt.timedelta(days=1),
        ended_at=system.requested_at + dt.timedelta(days=1),
        status=IncidentStatus.RESOLVED,
        source=IncidentSource.DECLARED,
        declared_by=supervisor,
        resolved_by=supervisor,
    )
    batch = ReliefBatch.objects.create(
        incident=incident,
        days=7,
        status=ReliefStatus.DONE,
        requested_by=agent,
        approved_by=supervisor,
        approved_at=timezone.now(),
        audit_id=uuid.uuid4(),
    )
    ReliefItem.objects.bulk_create(
        ReliefItem(batch=batch, bill=bill, amount_owed=bill.outstanding, processed_at=timezone.now(), applied=True)
        for bill in bills[:3]
    )
    result = dashboard_refresh(trigger="command")
    assert result.refreshed
    return {"bills": bills, "incident": incident}


@pytest.fixture
def activity(agent, supervisor):
    return add_dashboard_activity(agent=agent, supervisor=supervisor)


# --- each section against direct SQL ----------------------------------------------------


def test_balance_by_bucket_equals_open_bills_summed_from_the_bill_table(activity):
    expected: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal("0.00")])
    for dpd, currency, bills, owed in _sql(
        "SELECT b.dpd, l.currency, count(*),"
        " sum(CASE WHEN b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid > 0"
        "          THEN b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid ELSE 0 END)"
        " FROM repayments_bill b JOIN repayments_creditline l ON l.id = b.credit_line_id"
        " WHERE b.status IN ('pending', 'overdue') GROUP BY 1, 2"
    ):
        slot = expected[(delinquency_bucket(dpd), currency)]
        slot[0] += bills
        slot[1] += owed
    section = section_buckets(DashboardFilters())
    got = {(bucket, currency): [bills, balance] for bucket, currency, bills, balance in section.rows if bills}
    assert got == dict(expected)
    assert sum(count for count, _owed in expected.values()) == 27_402  # the whole UCI book: one per holder owing


def test_collection_and_overdue_rates_per_cycle_equal_the_bill_table(activity):
    rows = _sql(
        "SELECT to_char(b.period, 'YYYY-MM'), l.currency,"
        " count(*) FILTER (WHERE b.amount_due > 0), sum(b.amount_due),"
        " sum(CASE WHEN b.amount_paid < b.amount_due THEN b.amount_paid ELSE b.amount_due END),"
        " count(*) FILTER (WHERE b.status = 'overdue'), sum(b.carried_forward),"
        " sum(GREATEST(b.amount_due - b.amount_paid - b.carried_forward, 0))"
        " FROM repayments_bill b JOIN repayments_creditline l ON l.id = b.credit_line_id GROUP BY 1, 2 ORDER BY 1, 2"
    )
    sections = {s.key: s for s in dashboard_sections(DashboardFilters())}
    collection = {(r[0], r[1]): (r[2], r[3], r[4], r[5], r[6]) for r in sections["collection"].rows}
    overdue = {(r[0], r[1]): (r[2], r[3], r[4]) for r in sections["overdue"].rows}
    assert len(rows) == 6  # six UCI cycles
    for month, currency, bills_due, due, collected, overdue_bills, carried, principal_owed in rows:
        rate = (collected * 100 / due).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert collection[(month, currency)] == (bills_due, due, collected, rate, carried)
        assert collected + carried + principal_owed == due  # every statement's money is somewhere, once
        overdue_rate = (Decimal(overdue_bills) * 100 / bills_due).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert overdue[(month, currency)] == (bills_due, overdue_bills, overdue_rate)


def test_failures_by_family_and_by_bank_equal_the_attempt_table(activity):
    family_rows = _sql(
        "SELECT to_char(requested_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), failure_family, count(*)"
        " FROM repayments_repaymentattempt WHERE status = 'failed' GROUP BY 1, 2"
    )
    bank_rows = _sql(
        "SELECT to_char(a.requested_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'),"
        " coalesce((SELECT bank_code FROM repayments_cardbinding WHERE id = a.card_binding_id),"
        "          (SELECT bank_code FROM repayments_cardbinding c"
        "             JOIN repayments_bill b ON b.customer_id = c.customer_id"
        "            WHERE b.id = a.bill_id AND c.status = 'active')) AS bank,"
        " count(*) FILTER (WHERE a.status = 'failed'), count(*)"
        " FROM repayments_repaymentattempt a WHERE a.status IN ('failed', 'succeeded') GROUP BY 1, 2"
    )
    sections = {s.key: s for s in dashboard_sections(DashboardFilters())}
    labels = dict(FailureFamily.choices)
    assert {(m, str(labels[f]), n) for m, f, n in family_rows} == {tuple(r) for r in sections["failures_family"].rows}
    assert sum(n for *_rest, n in family_rows) == 80
    got = {(r[0], r[1]): (r[2], r[3]) for r in sections["failures_bank"].rows}
    assert got == {(m, bank): (failed, total) for m, bank, failed, total in bank_rows}


def test_recovery_by_channel_follows_the_documented_precedence(activity):
    """agent > extension > retry > reminder > first debit / customer, per succeeded attempt."""
    rows = _sql(
        "SELECT to_char(a.requested_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), l.currency, a.amount, a.channel,"
        " (SELECT count(*) FROM repayments_bindingrepaircase c WHERE c.new_binding_id = a.card_binding_id"
        "   AND c.status = 'resolved' AND a.requested_at - c.resolved_at >= interval '0'"
        "   AND a.requested_at - c.resolved_at < interval '72 hours') > 0 AS repaired,"
        " (SELECT count(*) FROM repayments_extension e WHERE e.bill_id = a.bill_id AND e.status = 'approved'"
        "   AND e.decided_at <= a.requested_at) AS extensions,"
        " (SELECT count(*) FROM repayments_repaymentattempt p WHERE p.bill_id = a.bill_id"
        "   AND (p.requested_at < a.requested_at OR (p.requested_at = a.requested_at AND p.id < a.id))) AS earlier,"
        " (SELECT count(*) FROM repayments_reminder r WHERE r.bill_id = a.bill_id AND r.status = 'sent'"
        "   AND r.sent_at BETWEEN a.requested_at - interval '3 days' AND a.requested_at"
        "   AND r.sent_at <> a.requested_at - interval '3 days') AS reminders"
        " FROM repayments_repaymentattempt a JOIN repayments_bill b ON b.id = a.bill_id"
        " JOIN repayments_creditline l ON l.id = b.credit_line_id WHERE a.status = 'succeeded'"
    )
    expected: dict[tuple, list] = defaultdict(lambda: [0, Decimal("0.00")])
    for month, currency, amount, channel, repaired, extensions, earlier, reminders in rows:
        if channel == "agent" or repaired:
            source = "agent"
        elif extensions:
            source = "extension"
        elif channel == "auto_debit" and earlier:
            source = "retry"
        elif reminders:
            source = "reminder"
        else:
            source = "first_debit" if channel == "auto_debit" else "customer"
        slot = expected[(month, recovery_label(source), currency)]
        slot[0] += 1
        slot[1] += amount
    section = {s.key: s for s in dashboard_sections(DashboardFilters())}["recovery"]
    assert {(r[0], r[1], r[2]): [r[3], r[4]] for r in section.rows} == dict(expected)
    sources = {label for _m, label, _c in expected}
    # The UCI history is customer repayments (issue #14); the activity adds the engine's channels.
    assert {recovery_label(s) for s in ("agent", "extension", "retry", "reminder", "customer")} <= sources


def test_reminder_effectiveness_equals_messages_joined_to_payments(activity):
    rows = _sql(
        "SELECT r.risk_tier, n.channel, count(DISTINCT n.id), count(DISTINCT n.id) FILTER (WHERE a.id IS NOT NULL)"
        " FROM repayments_notification n JOIN repayments_reminder r ON r.id = n.reminder_id"
        " LEFT JOIN repayments_repaymentattempt a ON a.bill_id = r.bill_id AND a.status = 'succeeded'"
        "  AND a.completed_at BETWEEN n.sent_at AND n.sent_at + interval '72 hours'"
        " WHERE n.status = 'sent' GROUP BY 1, 2"
    )
    section = {s.key: s for s in dashboard_sections(DashboardFilters())}["reminders"]
    tiers, channels = dict(Reminder._meta.get_field("risk_tier").choices), dict(NotificationChannel.choices)
    expected = {
        (
            str(tiers[t]),
            str(channels[c]),
            sent,
            paid,
            (Decimal(paid) * 100 / sent).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        )
        for t, c, sent, paid in rows
    }
    assert {tuple(r) for r in section.rows} == expected
    assert sum(sent for *_x, sent, _paid in rows) == 64  # 32 reminders, two channels each
    assert 0 < sum(paid for *_x, paid in rows) < 64  # some paid within 3 days, some never


def test_extensions_and_waivers_equal_their_tables(activity):
    rows = _sql(
        "SELECT 'extension', to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), status, count(*), sum(days),"
        " sum(late_fee_waived) FROM repayments_extension GROUP BY 1, 2, 3"
        " UNION ALL SELECT 'waiver', to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), status, count(*), 0,"
        " sum(amount) FROM repayments_waiver GROUP BY 1, 2, 3"
    )
    section = {s.key: s for s in dashboard_sections(DashboardFilters())}["relief"]
    kinds = {"extension": "Extensions", "waiver": "Waivers"}
    statuses = dict(ApprovalStatus.choices)
    (currency,) = {line.currency for line in CreditLine.objects.all()}
    expected = {(m, kinds[k], str(statuses[s]), currency, n, days, amount) for k, m, s, n, days, amount in rows}
    assert {tuple(r) for r in section.rows} == expected
    assert sum(n for *_x, n, _d, _a in rows) == 16 + 12  # 16 extensions, 12 waivers


def test_incident_impact_counts_system_failures_in_its_window_and_its_relief(activity):
    incident = activity["incident"]
    (failures,) = _sql(
        "SELECT count(*) FROM repayments_repaymentattempt a JOIN repayments_cardbinding c ON c.id = a.card_binding_id"
        " WHERE a.status = 'failed' AND a.failure_family = 'system' AND c.bank_code = %s"
        " AND a.requested_at BETWEEN %s AND %s",
        [incident.bank_code, incident.started_at, incident.ended_at],
    )[0]
    (owed,) = _sql(
        "SELECT sum(amount_owed) FROM repayments_reliefitem i JOIN repayments_reliefbatch b ON b.id = i.batch_id"
        " WHERE b.incident_id = %s AND i.applied",
        [incident.pk],
    )[0]
    section = {s.key: s for s in dashboard_sections(DashboardFilters())}["incidents"]
    (row,) = section.rows
    assert row[0] == f"#{incident.pk}" and row[1] == incident.bank_code
    assert row[5] == failures >= 1
    assert row[6:] == [activity["bills"][0].credit_line.currency, 3, 3, 0, owed]


# --- filters ---------------------------------------------------------------------------


def test_bank_tier_and_period_filters_narrow_every_section_like_direct_sql(activity):
    card = CardBinding.objects.filter(customer=activity["bills"][0].customer).get()
    period = activity["bills"][0].period
    filters = DashboardFilters(month_from=period, month_to=period, bank=card.bank_code, risk_tier="high")
    (bills, owed) = _sql(
        "SELECT count(*), coalesce(sum(GREATEST(b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid, 0)), 0)"
        " FROM repayments_bill b JOIN repayments_customer c ON c.id = b.customer_id"
        " JOIN repayments_cardbinding k ON k.customer_id = c.id AND k.status = 'active'"
        " WHERE b.status IN ('pending', 'overdue') AND k.bank_code = %s AND c.risk_tier = 'high' AND b.period = %s",
        [card.bank_code, period],
    )[0]
    rows = section_buckets(filters).rows
    assert (sum(r[2] for r in rows), sum(r[3] for r in rows)) == (bills, owed)
    assert 0 < bills < 35_000
    (failed,) = _sql(
        "SELECT count(*) FROM repayments_repaymentattempt a JOIN repayments_cardbinding k ON k.id = a.card_binding_id"
        " JOIN repayments_customer c ON c.id = k.customer_id WHERE a.status = 'failed' AND k.bank_code = %s"
        " AND c.risk_tier = 'high' AND date_trunc('month', a.requested_at AT TIME ZONE 'Asia/Shanghai')::date = %s",
        [card.bank_code, period],
    )[0]
    assert sum(r[2] for r in section_failures_bank(filters).rows) == failed


def test_the_page_shows_every_section_with_a_chart_table_and_csv_link(client, analyst, activity):
    client.force_login(analyst)
    response = client.get(reverse("console:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    for section in response.context["sections"]:
        assert f'data-chart="{section.key}"' in html
        assert f"section={section.key}" in html
    assert 'id="dashboard-charts"' in html
    assert "style=" not in html  # CSP: style-src 'self', no inline styles
    assert response.context["refresh"].finished_at == last_refresh().finished_at is not None


def test_the_dashboard_is_shown_in_simplified_chinese(client, analyst, activity):
    client.force_login(analyst)
    response = client.get(reverse("console:dashboard"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    assert "应收账款看板" in html and "按逾期分档的应收账款" in html


def test_the_page_answers_in_a_fixed_number_of_queries(client, analyst, activity, django_assert_max_num_queries):
    client.force_login(analyst)
    # 10 rollup reads (filters, refresh time, 8 section queries) + the console's own (session, user,
    # permissions, incident banner...): the same on 10,000 or 10,000,000 attempts.
    with django_assert_max_num_queries(18):
        response = client.get(reverse("console:dashboard"), {"risk_tier": "high", "month_from": "2026-01"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("month_from", "2026-13", "Period from: “2026-13” is not a month"),
        ("month_to", "last year", "Period to: “last year” is not a month"),
        ("bank", "NOBANK", "Bank: “NOBANK” is not a bank in the data."),
        ("risk_tier", "extreme", "Risk tier: “extreme” is not one of low, medium, high."),
        ("currency", "XXX", "Currency: “XXX” is not a currency in the data."),
    ],
)
def test_a_bad_filter_value_is_named_with_its_field(client, analyst, activity, param, value, message):
    client.force_login(analyst)
    response = client.get(reverse("console:dashboard"), {param: value})
    assert response.status_code == 200
    assert any(error.startswith(message) for error in response.context["errors"])
    export = client.get(reverse("console:dashboard-export"), {"section": "buckets", param: value})
    assert export.status_code == 400 and message in export.content.decode()


def test_a_period_that_ends_before_it_starts_is_refused(activity):
    filters, errors = parse_dashboard_filters({"month_from": "2026-10", "month_to": "2026-05"}, filter_choices())
    assert errors == ["Period: “2026-10” is after “2026-05”."]
    assert filters.month_to is None


# --- CSV, permissions, refresh ----------------------------------------------------------


def test_a_section_downloads_as_csv_with_the_tables_numbers_and_is_audited(client, analyst, activity):
    client.force_login(analyst)
    response = client.get(reverse("console:dashboard-export"), {"section": "recovery", "risk_tier": "high"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    section = {s.key: s for s in dashboard_sections(DashboardFilters(risk_tier="high"))}["recovery"]
    assert rows[0] == section.columns
    assert rows[1:] == [[str(cell) for cell in row] for row in section.rows]
    event = AuditEvent.objects.get(action="dashboard.export", actor=analyst)
    assert event.after["section"] == "recovery" and event.after["filters"] == {"risk_tier": "high"}


def test_an_unknown_section_is_refused(client, analyst, activity):
    client.force_login(analyst)
    response = client.get(reverse("console:dashboard-export"), {"section": "=cmd|calc"})
    assert response.status_code == 400
    assert "“=cmd|calc”" in response.content.decode()
    assert not AuditEvent.objects.filter(action="dashboard.export").exists()


@pytest.mark.parametrize("role", ["agent", "auditor"])
def test_agents_and_auditors_cannot_see_the_dashboard(client, request, role):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("console:dashboard")).status_code == 403
    assert client.get(reverse("console:dashboard-export"), {"section": "buckets"}).status_code == 403


def test_an_analyst_sees_the_dashboard_link_and_an_agent_does_not(client, analyst, agent):
    client.force_login(analyst)
    assert reverse("console:dashboard") in client.get(reverse("console:home")).content.decode()
    client.force_login(agent)
    assert reverse("console:dashboard") not in client.get(reverse("console:home")).content.decode()


def test_refresh_now_is_for_supervisors_audited_and_queued(
    client, supervisor, analyst, django_capture_on_commit_callbacks
):
    client.force_login(analyst)
    assert client.post(reverse("console:dashboard-refresh")).status_code == 403
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("console:dashboard-refresh"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="dashboard.refresh_requested", actor=supervisor).count() == 1
    assert len(callbacks) == 1


def test_the_refresh_task_logs_its_time_and_a_second_refresh_sees_new_bills(activity):
    from repayments.tasks import refresh_dashboard

    before = sum(r[2] for r in section_buckets(DashboardFilters()).rows)
    bill = Bill.objects.filter(status=BillStatus.PAID).first()
    Bill.objects.filter(pk=bill.pk).update(status=BillStatus.OVERDUE, dpd=45)
    assert sum(r[2] for r in section_buckets(DashboardFilters()).rows) == before  # rollups are a snapshot
    result = refresh_dashboard()
    assert result["refreshed"] and result["duration_ms"] >= 0
    assert sum(r[2] for r in section_buckets(DashboardFilters()).rows) == before + 1
    info = last_refresh()
    assert info.trigger == "schedule" and info.finished_at <= timezone.now()


def test_refresh_is_declared_as_a_schedule():
    from repayments.schedules import SCHEDULES

    spec = next(s for s in SCHEDULES if s.name == "refresh-dashboard")
    assert spec.func == "repayments.tasks.refresh_dashboard"
