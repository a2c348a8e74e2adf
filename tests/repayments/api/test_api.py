"""The REST API: filters that agree with SQL, money and time formats, masking, and bad input.

Bad input of every kind (malformed JSON, wrong types, unknown fields, out-of-range
amounts, another role's action, stale or duplicate requests) gets a 4xx with a
machine-readable body and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from rest_framework.throttling import UserRateThrottle

from accounts.models import AuditEvent
from repayments.models import Bill, BillStatus, CardBinding, Extension, IdempotencyKey, Waiver
from tests.factories import BillFactory, CardBindingFactory
from tests.repayments.api.conftest import token_client

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def overdue_bill(**kwargs) -> Bill:
    defaults = {"due_date": dt.date(2026, 11, 20), "status": BillStatus.OVERDUE, "dpd": 10, "late_fee": Decimal("5.00")}
    return BillFactory(**(defaults | kwargs))


def key() -> str:
    return str(uuid.uuid4())


def errors(response) -> list[tuple[str | None, str]]:
    """``[(attr, code), …]`` from the standard error body."""
    body = response.json()
    assert body["type"] in ("validation_error", "client_error")
    return [(error["attr"], error["code"]) for error in body["errors"]]


# --- reading -----------------------------------------------------------------


def _all_pages(client, url: str) -> list[dict]:
    rows, next_url = [], url
    while next_url:
        body = client.get(next_url).json()
        rows += body["results"]
        next_url = body["next"]
    return rows


def test_bill_filters_return_exactly_what_sql_returns(supervisor):
    """Status, due-date range and bucket filters on the UCI data agree with a direct query."""
    client = token_client(supervisor)
    url = reverse("api:bill-list") + "?status=overdue&bucket=M2&due_date_after=2026-09-01&page_size=500"
    got = sorted(row["bill_no"] for row in _all_pages(client, url))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bill_no FROM repayments_bill WHERE status = 'overdue' AND dpd BETWEEN 31 AND 60 "
            "AND due_date >= '2026-09-01' ORDER BY bill_no"
        )
        expected = [row[0] for row in cursor.fetchall()]
    assert expected, "the UCI data has overdue M2 bills"
    assert got == expected


def test_a_bucket_holds_open_bills_only_in_the_api_and_the_worklist(supervisor, agent, client):
    """M0 is current *open* bills: paid, revolving and no-balance bills are in no bucket (issue #14)."""
    api = token_client(supervisor)
    customer_no = (
        Bill.objects.filter(status=BillStatus.PAID, dpd=0)
        .filter(customer__bills__status=BillStatus.PENDING)
        .values_list("customer__customer_no", flat=True)
        .first()
    )
    rows = _all_pages(api, reverse("api:bill-list") + f"?customer_no={customer_no}&bucket=M0&page_size=50")
    expected = Bill.objects.filter(customer__customer_no=customer_no, status__in=["pending", "overdue"], dpd__lte=0)
    assert sorted(row["bill_no"] for row in rows) == sorted(expected.values_list("bill_no", flat=True))
    assert {row["status"] for row in rows} <= {"pending", "overdue"} and rows
    every = _all_pages(api, reverse("api:bill-list") + f"?customer_no={customer_no}&page_size=50")
    closed = [row for row in every if row["status"] not in ("pending", "overdue")]
    assert closed and all(row["bucket"] is None for row in closed)
    assert Bill.objects.in_bucket("M0").filter(status=BillStatus.PAID).count() == 0
    client.force_login(agent)
    page = client.get(reverse("console:worklist") + "?queue=overdue&bucket=M1")
    assert page.context["page"].rows and all(bill.status == BillStatus.OVERDUE for bill in page.context["page"].rows)


def test_cursor_pages_walk_every_row_once_and_never_count(supervisor, django_assert_max_num_queries):
    client = token_client(supervisor)
    url = reverse("api:bill-list") + "?customer_no=UCI-000002&page_size=2"
    rows = _all_pages(client, url)
    expected = Bill.objects.filter(customer__customer_no="UCI-000002").count()
    assert len(rows) == len({row["bill_no"] for row in rows}) == expected
    with django_assert_max_num_queries(4) as captured:  # token, user's permissions, the page
        client.get(reverse("api:bill-list") + "?page_size=100")
    assert not any("COUNT(" in query["sql"].upper() for query in captured.captured_queries)


def test_money_is_a_decimal_string_and_times_carry_their_offset(supervisor):
    bill = BillFactory(amount_due=Decimal("1234.50"), late_fee=Decimal("0.10"))
    body = token_client(supervisor).get(reverse("api:bill-detail", args=[bill.bill_no])).json()
    assert (body["amount_due"], body["late_fee"], body["outstanding"]) == ("1234.50", "0.10", "1234.60")
    assert ISO_WITH_OFFSET.match(body["version"])
    assert body["currency"] == "CNY" and body["bucket"] == "M0"


def test_customers_leave_the_api_masked(agent):
    bill = BillFactory()
    customer = bill.customer
    body = token_client(agent).get(reverse("api:customer-detail", args=[customer.customer_no])).json()
    assert body["phone"] == customer.phone[:3] + "****" + customer.phone[-4:]
    assert body["national_id"] == "1*************002X"
    assert body["name"] == "测***"  # 测试用户
    listed = token_client(agent).get(reverse("api:customer-list") + "?page_size=500").json()
    raw = json.dumps(listed, ensure_ascii=False)
    assert customer.phone not in raw and customer.national_id not in raw


def test_attempt_filters_reject_a_time_without_a_valid_format(agent):
    response = token_client(agent).get(reverse("api:attempt-list") + "?requested_at_after=yesterday")
    assert response.status_code == 400
    assert errors(response) == [("requested_at_after", "invalid")]  # the parameter sent, not the filter


# --- extensions and waivers: the happy paths ------------------------------------


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_an_agent_extends_within_policy_and_a_supervisor_approves_beyond_it(agent, supervisor, frozen):
    small, large = overdue_bill(), overdue_bill()
    agent_api, supervisor_api = token_client(agent), token_client(supervisor)
    granted = agent_api.post(
        reverse("api:extension-list"),
        {"bill_no": small.bill_no, "days": 7, "reason": "hardship"},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert granted.status_code == 201
    assert (granted.json()["status"], granted.json()["due_date_after"]) == (
        "approved",
        "2026-12-07",
    )  # 7 days from today (11-30): the bill was late
    waiting = agent_api.post(
        reverse("api:extension-list"),
        {"bill_no": large.bill_no, "days": 10, "reason": "hardship"},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert (waiting.status_code, waiting.json()["status"]) == (201, "pending")
    pk = waiting.json()["id"]
    refused = agent_api.post(reverse("api:extension-approve", args=[pk]), {}, HTTP_IDEMPOTENCY_KEY=key())
    assert refused.status_code == 403
    approved = supervisor_api.post(
        reverse("api:extension-approve", args=[pk]), {"note": "hospital letter seen"}, HTTP_IDEMPOTENCY_KEY=key()
    )
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", supervisor.username)
    large.refresh_from_db()
    assert large.due_date == dt.date(2026, 12, 10)  # 10 days from the day of approval


def test_a_waiver_amount_travels_as_an_exact_decimal(agent, frozen):
    bill = overdue_bill(late_fee=Decimal("6.17"))
    response = token_client(agent).post(
        reverse("api:waiver-list"),
        {"bill_no": bill.bill_no, "amount": "6.17", "reason": "system_fault"},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert (response.status_code, response.json()["amount"], response.json()["status"]) == (201, "6.17", "approved")
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("6.17")


# --- duplicates and races --------------------------------------------------------


def test_the_same_idempotency_key_replays_the_first_response_and_extends_once(agent, frozen):
    bill = overdue_bill()
    client, same = token_client(agent), key()
    payload = {"bill_no": bill.bill_no, "days": 5, "reason": "hardship"}
    first = client.post(reverse("api:extension-list"), payload, HTTP_IDEMPOTENCY_KEY=same)
    again = client.post(reverse("api:extension-list"), payload, HTTP_IDEMPOTENCY_KEY=same)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Extension.objects.filter(bill=bill).count() == 1
    bill.refresh_from_db()
    assert bill.due_date == dt.date(2026, 12, 5)  # five days from today (11-30), once, not twice


def test_reusing_a_key_for_a_different_request_is_refused_and_changes_nothing(agent, frozen):
    first_bill, second_bill = overdue_bill(), overdue_bill()
    client, same = token_client(agent), key()
    client.post(reverse("api:extension-list"), {"bill_no": first_bill.bill_no, "days": 5, "reason": "hardship"},
                HTTP_IDEMPOTENCY_KEY=same)  # fmt: skip
    reused = client.post(
        reverse("api:extension-list"),
        {"bill_no": second_bill.bill_no, "days": 5, "reason": "hardship"},
        HTTP_IDEMPOTENCY_KEY=same,
    )
    assert reused.status_code == 422
    assert errors(reused) == [(None, "idempotency_key_reused")]
    assert not Extension.objects.filter(bill=second_bill).exists()


def test_a_post_that_moves_money_without_an_idempotency_key_is_refused(agent, frozen):
    bill = overdue_bill()
    response = token_client(agent).post(
        reverse("api:waiver-list"), {"bill_no": bill.bill_no, "amount": "1.00", "reason": "hardship"}
    )
    assert response.status_code == 400
    assert errors(response) == [("Idempotency-Key", "idempotency_key_required")]
    assert not Waiver.objects.exists()


def test_a_refused_request_leaves_its_key_free_for_the_corrected_retry(agent, frozen):
    bill = overdue_bill()
    client, same = token_client(agent), key()
    bad = client.post(reverse("api:extension-list"), {"bill_no": bill.bill_no, "days": 0, "reason": "hardship"},
                      HTTP_IDEMPOTENCY_KEY=same)  # fmt: skip
    assert bad.status_code == 400
    good = client.post(reverse("api:extension-list"), {"bill_no": bill.bill_no, "days": 3, "reason": "hardship"},
                       HTTP_IDEMPOTENCY_KEY=same)  # fmt: skip
    assert good.status_code == 201


def test_two_identical_requests_at_once_make_one_extension_and_the_same_answer(empty_domain):
    from tests.conftest import _persona

    agent = _persona("agent")
    with time_machine.travel(NOW, tick=False):
        bill = overdue_bill()
    same, barrier, answers = key(), threading.Barrier(2), []

    def post():
        try:
            client = token_client(agent)
            barrier.wait()
            with time_machine.travel(NOW, tick=False):
                response = client.post(
                    reverse("api:extension-list"),
                    {"bill_no": bill.bill_no, "days": 5, "reason": "hardship"},
                    HTTP_IDEMPOTENCY_KEY=same,
                )
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0][0] == 201
    assert Extension.objects.filter(bill=bill).count() == 1
    assert IdempotencyKey.objects.filter(key=same).count() == 1


def test_a_stale_bill_version_is_a_409_and_nothing_changes(agent, frozen):
    bill = overdue_bill()
    client = token_client(agent)
    seen = client.get(reverse("api:bill-detail", args=[bill.bill_no])).json()["version"]
    Bill.objects.filter(pk=bill.pk).update(amount_paid=Decimal("100.00"), updated_at=NOW + dt.timedelta(minutes=1))
    response = client.post(
        reverse("api:extension-list"),
        {"bill_no": bill.bill_no, "days": 3, "reason": "hardship", "bill_version": seen},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert response.status_code == 409
    assert errors(response) == [(None, "rule_violation")]
    assert not Extension.objects.filter(bill=bill).exists()


def test_the_current_bill_version_is_accepted(agent, frozen):
    bill = overdue_bill()
    client = token_client(agent)
    seen = client.get(reverse("api:bill-detail", args=[bill.bill_no])).json()["version"]
    response = client.post(
        reverse("api:extension-list"),
        {"bill_no": bill.bill_no, "days": 3, "reason": "hardship", "bill_version": seen},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert response.status_code == 201


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"bill_no": "B", "days": "seven", "reason": "hardship"}, [("days", "invalid")]),
        ({"bill_no": "B", "days": 91, "reason": "hardship"}, [("days", "max_value")]),
        ({"bill_no": "B", "days": 3, "reason": "bored"}, [("reason", "invalid_choice")]),
        ({"bill_no": "B", "days": 3, "reason": "hardship", "dayz": 3}, [("dayz", "unknown_field")]),
        ({"days": 3, "reason": "hardship"}, [("bill_no", "required")]),
        ({"bill_no": "NO-SUCH-BILL", "days": 3, "reason": "hardship"}, [("bill_no", "invalid")]),
        ([1, 2], [("non_field_errors", "invalid")]),
    ],
)
def test_bad_extension_requests_name_the_field_and_change_nothing(agent, frozen, payload, expected):
    client = token_client(agent)
    events = AuditEvent.objects.count()
    response = client.post(reverse("api:extension-list"), payload, format="json", HTTP_IDEMPOTENCY_KEY=key())
    assert response.status_code == 400
    assert errors(response) == expected
    assert not Extension.objects.exists() and AuditEvent.objects.count() == events
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    ("amount", "code"),
    [("-1.00", "min_value"), ("0", "min_value"), ("1.234", "max_decimal_places"), ("1e400", "max_digits"),
     ("NaN", "invalid"), ("10000000000000.00", "max_digits"), (1.5, "invalid"), ("01.50", "invalid"),
     (" 1.50", "invalid"), ("1.5e0", "invalid")],
)  # fmt: skip
def test_out_of_range_or_inexact_waiver_amounts_are_refused(agent, frozen, amount, code):
    bill = overdue_bill()
    response = token_client(agent).post(
        reverse("api:waiver-list"),
        {"bill_no": bill.bill_no, "amount": amount, "reason": "hardship"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert response.status_code == 400
    assert errors(response)[0] == ("amount", code)
    assert not Waiver.objects.exists()


def test_a_waiver_above_the_late_fee_left_is_refused_naming_the_amount(agent, frozen):
    bill = overdue_bill(late_fee=Decimal("5.00"))
    response = token_client(agent).post(
        reverse("api:waiver-list"),
        {"bill_no": bill.bill_no, "amount": "5.01", "reason": "hardship"},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert response.status_code == 400
    assert errors(response) == [("amount", "invalid")]
    bill.refresh_from_db()
    assert bill.late_fee_waived == Decimal("0.00")


def test_malformed_json_is_a_parse_error(agent):
    response = token_client(agent).post(
        reverse("api:extension-list"), data="{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY=key()
    )
    assert response.status_code == 400
    assert errors(response) == [(None, "parse_error")]


def test_a_form_body_is_an_unsupported_media_type(agent):
    response = token_client(agent).post(
        reverse("api:extension-list"), data="days=3", content_type="text/plain", HTTP_IDEMPOTENCY_KEY=key()
    )
    assert response.status_code == 415
    assert errors(response) == [(None, "unsupported_media_type")]


def test_an_unknown_id_is_a_404_with_the_standard_body(supervisor):
    response = token_client(supervisor).post(reverse("api:extension-approve", args=[987654321]), {},
                                             HTTP_IDEMPOTENCY_KEY=key())  # fmt: skip
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


def test_too_many_requests_are_throttled_with_retry_after(agent, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "anon": "3/minute"})
    client = token_client(agent)
    statuses = [client.get(reverse("api:bill-list") + "?page_size=1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = client.get(reverse("api:bill-list"))
    assert errors(throttled) == [(None, "throttled")] and int(throttled["Retry-After"]) > 0


# --- binding repair through the bank's SMS step --------------------------------------


def test_an_agent_binds_a_new_card_through_the_api_and_the_card_number_is_not_kept(empty_domain, live_bank, settings):
    from tests.conftest import _persona

    agent = _persona("agent")
    live_bank()
    bill = BillFactory()
    CardBindingFactory(customer=bill.customer, gateway_token="sbx_card_closed_x1")
    client = token_client(agent)
    card = "6222021234567890128"
    started = client.post(
        reverse("api:binding-repair-start"),
        {"customer_no": bill.customer.customer_no, "card_number": card, "reserved_phone": "13800138000"},
    )
    assert started.status_code == 201, started.content
    assert started.json()["card"] == "6222 **** **** 0128"
    assert card not in started.content.decode()
    confirm = {"challenge": started.json()["challenge"], "sms_code": "111111", "reason": "customer called"}
    assert "13800138000" not in confirm["challenge"]  # the phone inside is encrypted, not just signed
    wrong = client.post(reverse("api:binding-repair-confirm"), confirm | {"sms_code": "000000"},
                        HTTP_IDEMPOTENCY_KEY=key())  # fmt: skip
    assert wrong.status_code == 400 and errors(wrong)[0][0] == "sms_code"
    bound = client.post(reverse("api:binding-repair-confirm"), confirm)
    assert bound.status_code == 201, bound.content
    again = client.post(reverse("api:binding-repair-confirm"), confirm)  # a client retry: the bank's id is used up
    assert again.status_code == 400
    assert CardBinding.objects.filter(customer=bill.customer, status="active").count() == 1
    assert (bound.json()["card"], bound.json()["status"]) == ("6222 **** **** 0128", "active")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM repayments_cardbinding WHERE bin || last4 LIKE %s", [card])
        assert cursor.fetchone()[0] == 0
    tampered = client.post(reverse("api:binding-repair-confirm"), confirm | {"challenge": confirm["challenge"] + "x"},
                           HTTP_IDEMPOTENCY_KEY=key())  # fmt: skip
    assert tampered.status_code == 400 and errors(tampered) == [("challenge", "invalid")]


# --- the gateway callback -----------------------------------------------------------


def test_the_gateway_callback_refuses_an_unsigned_body_with_the_standard_error(client):
    response = client.post(reverse("api:gateway-callback"), data=b"{}", content_type="application/json")
    assert response.status_code == 403
    assert errors(response) == [(None, "bad_signature")]


def test_the_schema_and_the_docs_page_are_served_without_a_cdn(agent, client):
    client.force_login(agent)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/v1/bills/", "/api/v1/extensions/{id}/approve/", "/api/v1/gateway/callbacks/"} <= set(paths)
    docs = client.get(reverse("api-docs")).content.decode()
    assert "cdn" not in docs.lower() and "/static/drf_spectacular_sidecar/" in docs


@pytest.mark.parametrize("offset", ["-21:03", "+19:29", "+14:00"])
def test_times_with_any_valid_offset_filter_without_a_server_error(agent, offset):
    """Python accepts offsets up to ±23:59, PostgreSQL only ±15:59 (found by schemathesis)."""
    client = token_client(agent)
    for url in ("api:attempt-list", "api:reminder-list"):
        field = "requested_at" if url == "api:attempt-list" else "scheduled_at"
        query = {f"{field}_after": f"2000-01-01T08:00:00{offset}", f"{field}_before": f"2100-12-25T01:53:29{offset}"}
        assert client.get(reverse(url), query).status_code == 200


def test_a_bill_version_with_an_unusual_offset_is_compared_as_an_instant(agent, frozen):
    bill = overdue_bill()
    version = bill.updated_at.astimezone(dt.timezone(dt.timedelta(hours=19, minutes=29))).isoformat()
    response = token_client(agent).post(
        reverse("api:extension-list"),
        {"bill_no": bill.bill_no, "days": 3, "reason": "hardship", "bill_version": version},
        HTTP_IDEMPOTENCY_KEY=key(),
    )
    assert response.status_code == 201  # the same instant as the bill's version: not stale


def test_idempotency_records_are_purged_after_their_time(agent, frozen):
    from repayments.services.idempotency import idempotency_keys_purge

    bill = overdue_bill()
    token_client(agent).post(reverse("api:extension-list"), {"bill_no": bill.bill_no, "days": 3, "reason": "hardship"},
                             HTTP_IDEMPOTENCY_KEY=key())  # fmt: skip
    assert idempotency_keys_purge(now=NOW + dt.timedelta(hours=47)) == 0
    assert idempotency_keys_purge(now=NOW + dt.timedelta(hours=49)) == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])
def test_a_time_filter_outside_what_utc_can_hold_is_a_400_naming_the_field(agent, moment):
    response = token_client(agent).get(reverse("api:attempt-list"), {"requested_at_after": moment})
    assert response.status_code == 400
    assert errors(response)[0][0] == "requested_at_after"  # the parameter sent


def test_a_time_without_an_offset_is_business_time(supervisor):
    response = token_client(supervisor).post(
        reverse("api:incident-list"),
        {"bank_code": "ICBC", "started_at": "2026-11-30T09:00:00", "ended_at": "2026-11-30T09:30:00",
         "description": "gateway timeouts"},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["started_at"] == "2026-11-30T09:00:00+08:00"


@pytest.mark.parametrize(
    "route",
    ["api:customer-list", "api:credit-line-list", "api:attempt-list", "api:reminder-list", "api:extension-list",
     "api:waiver-list", "api:binding-repair-list"],
)  # fmt: skip
def test_every_list_is_a_fixed_number_of_queries_whatever_the_page_size(
    supervisor, route, django_assert_max_num_queries
):
    BillFactory()  # at least one row of its own
    client = token_client(supervisor)
    client.get(reverse(route))  # warm the permission cache of this test's user
    with django_assert_max_num_queries(4):  # token, permissions, the page (+ nothing per row)
        assert client.get(reverse(route), {"page_size": 200}).status_code == 200
