"""The agent console over HTTP: the permission matrix cell by cell, query counts, forms and bad input."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver, reverse
from django.utils import timezone
from stdnum import luhn

from accounts.models import AuditEvent, User
from baitiao.business_time import business_datetime
from repayments.models import (
    Bill,
    BillStatus,
    CardBinding,
    Customer,
    Extension,
    FailureFamily,
    ImportJob,
    Incident,
    ReliefBatch,
)
from repayments.services.extensions import extension_request
from tests.database import UCI_AS_OF

ROLES = ["agent", "supervisor", "analyst", "auditor", "admin_user"]
ALLOWED, DENIED = "allowed", 403
# The matrix of docs/permissions.md: view -> method, and per role allowed or 403.
MATRIX = {
    "home": ("get", [ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED]),
    "worklist": ("get", [ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED]),
    "search": ("get", [ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED]),
    "bills": ("get", [ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED]),
    "customer-detail": ("get", [ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED]),
    "customer-reveal": ("post", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "note-add": ("post", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "bill-claim": ("post", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "binding-repair": ("get", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "binding-confirm": ("get", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "extension-request": ("get", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "waiver-request": ("get", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "bill-retry": ("post", [ALLOWED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "approvals": ("get", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "approval-decide": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    # The audit trail (accounts app).
    "accounts:audit": ("get", [DENIED, DENIED, DENIED, ALLOWED, ALLOWED]),
    "accounts:audit-export": ("get", [DENIED, DENIED, DENIED, ALLOWED, ALLOWED]),
    "accounts:audit-event": ("get", [DENIED, DENIED, DENIED, ALLOWED, ALLOWED]),
    # System-fault incidents (issue #5): supervisors only.
    "incidents": ("get", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "incident-declare": ("get", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "incident-detail": ("get", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "incident-resolve": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "incident-withdraw": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "incident-affected-export": ("get", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "relief-request": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "relief-approve": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "relief-reverse": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
    "bureau-ledger": ("get", [DENIED, ALLOWED, DENIED, ALLOWED, ALLOWED]),
    "bureau-ledger-export": ("get", [DENIED, ALLOWED, DENIED, ALLOWED, ALLOWED]),
    # The analysts' import/export pages (namespace "data", issue #6).
    "data:home": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:import": ("post", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:import-job": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:import-job-errors": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:import-apply": ("post", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:template": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:export": ("post", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:export-job": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    "data:export-job-download": ("get", [DENIED, DENIED, ALLOWED, DENIED, ALLOWED]),
    # The receivables dashboard (issue #7): view_dashboard; "refresh now" also needs refresh_dashboard.
    "dashboard": ("get", [DENIED, ALLOWED, ALLOWED, DENIED, ALLOWED]),
    "dashboard-export": ("get", [DENIED, ALLOWED, ALLOWED, DENIED, ALLOWED]),
    "dashboard-refresh": ("post", [DENIED, ALLOWED, DENIED, DENIED, ALLOWED]),
}
NOT_STAFF_VIEWS: set[str] = set()  # the bank's callback moved to the API (namespace "api")


@pytest.fixture
def overdue(db) -> Bill:
    return Bill.objects.filter(status=BillStatus.OVERDUE).select_related("customer").order_by("id").first()


def _view_names(namespace: str) -> set[str]:
    resolver = get_resolver().namespace_dict[namespace][1]
    return {name for name in resolver.reverse_dict.keys() if isinstance(name, str)}


def test_every_console_view_has_a_row_in_the_permission_matrix():
    views = (
        (_view_names("console") - NOT_STAFF_VIEWS)
        | {f"data:{name}" for name in _view_names("data")}
        | {f"accounts:{name}" for name in _view_names("accounts") - {"login", "logout"}}
    )
    assert views == set(MATRIX), "document and test the roles of every new view"


def _request(client, name, method, bill, pending_extension, user):
    customer_no, bill_no = bill.customer.customer_no, bill.bill_no
    if name.startswith("data:"):
        return _data_request(client, name, user)
    if name == "accounts:audit-event":
        from accounts.services import audit_record

        event = audit_record(actor=user, action="matrix.test", target=bill)
        return client.get(reverse(name, args=[event.pk]))
    if name == "approval-decide":
        kwargs = {"kind": "extension", "pk": pending_extension.pk}
    elif name.startswith(("incident-", "relief-")):
        kwargs = _incident_kwargs(name, user)
    else:
        kwargs = {
            "customer-detail": {"customer_no": customer_no},
            "customer-reveal": {"customer_no": customer_no},
            "note-add": {"customer_no": customer_no},
            "binding-repair": {"customer_no": customer_no},
            "binding-confirm": {"customer_no": customer_no},
            "bill-claim": {"bill_no": bill_no},
            "extension-request": {"customer_no": customer_no, "bill_no": bill_no},
            "waiver-request": {"customer_no": customer_no, "bill_no": bill_no},
            "bill-retry": {"customer_no": customer_no, "bill_no": bill_no},
        }.get(name, {})
    data = {
        "customer-reveal": {"field": "phone", "reason": "customer asked, ticket 42"},
        "note-add": {"body": "called, no answer"},
        "approval-decide": {"decision": "reject", "note": "matrix test"},
        "relief-request": {"days": "7", "note": "matrix test"},
        "relief-reverse": {"reason": "matrix test"},
    }.get(name, {})
    url = reverse(name if ":" in name else f"console:{name}", kwargs=kwargs)
    if name == "search":
        url += "?q=" + customer_no
    elif name == "dashboard-export":
        url += "?section=buckets"
    return client.post(url, data) if method == "post" else client.get(url)


@pytest.mark.parametrize(("name", "role"), [(name, role) for name in sorted(MATRIX) for role in ROLES])
def test_each_role_gets_exactly_its_cell_of_the_permission_matrix(name, role, client, overdue, agent, request):
    method, expected = MATRIX[name]
    want = expected[ROLES.index(role)]
    user = request.getfixturevalue(role)
    pending = None
    if name == "approval-decide":
        requester = agent if role != "agent" else request.getfixturevalue("supervisor")
        # Asked on the data's own day: the UCI bills grow later every real day, and a
        # request made today would one day pass the 90-day shift cap (a date bomb).
        asked = business_datetime(UCI_AS_OF, dt.time(10))
        pending = extension_request(
            bill_id=overdue.id,
            requested_by=requester,
            days=30,
            reason="hardship",
            request_token=uuid.uuid4(),
            now=asked,
        )
    client.force_login(user)
    response = _request(client, name, method, overdue, pending, user)
    if want == DENIED:
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert not response["Location"].startswith(reverse("accounts:login"))


def _incident_kwargs(name, user):
    """A resolved incident with a relief batch someone else requested (the services then refuse or act)."""
    if name == "incident-declare":
        return {}
    now = timezone.now()
    incident = Incident.objects.create(
        bank_code="MATRIX",
        started_at=now - dt.timedelta(hours=2),
        ended_at=now - dt.timedelta(hours=1),
        status="resolved",
        source="declared",
        declared_by=user,
        description="matrix",
    )
    if name in ("relief-approve", "relief-reverse"):
        requester = User.objects.create_user(username=f"matrix-requester-{uuid.uuid4().hex[:6]}")
        batch = ReliefBatch.objects.create(incident=incident, days=7, requested_by=requester, audit_id=uuid.uuid4())
        return {"batch_id": batch.pk}
    return {"pk": incident.pk}


def _data_request(client, name, user):
    if name == "data:import-apply":
        job = ImportJob.objects.create(resource="bills", filename="bills.csv", created_by=user, status="previewed")
        return client.post(reverse(name, args=[job.pk]))
    if name in ("data:import-job", "data:import-job-errors"):
        job = ImportJob.objects.create(
            resource="bills", filename="bills.csv", created_by=user, error_report=b"row,column,value\n"
        )
        return client.get(reverse(name, args=[job.pk]))
    if name in ("data:export-job", "data:export-job-download"):
        from repayments.models import ExportJob

        finished = timezone.now()
        job = ExportJob.objects.create(
            resource="bills",
            created_by=user,
            status="done",
            finished_at=finished,
            expires_at=finished + dt.timedelta(hours=24),  # as export_job_run leaves it
        )
        return client.get(reverse(name, args=[job.pk]))
    if name == "data:template":
        return client.get(reverse(name, args=["bills"]))
    if name == "data:import":
        rows = (
            "customer_no,name,phone,national_id,credit_score,risk_tier\n"
            "MX-1,张三,13800138000,11010519491231002X,700,low\n"
        )
        upload = SimpleUploadedFile("customers.csv", rows.encode(), content_type="text/csv")
        return client.post(
            reverse(name), {"resource": "customers", "file": upload, "dry_run": "on", "encoding": "auto"}
        )
    if name == "data:export":
        return client.post(reverse(name), {"resource": "bills"})
    return client.get(reverse(name))


def test_anonymous_users_are_sent_to_the_login_page(client, overdue):
    response = client.get(reverse("console:customer-detail", args=[overdue.customer.customer_no]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_pages_carry_a_content_security_policy(client, agent):
    client.force_login(agent)
    response = client.get(reverse("console:worklist"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_five_failed_logins_lock_the_account_out(client, agent):
    url = reverse("accounts:login")
    for _ in range(5):
        client.post(url, {"username": agent.username, "password": "wrong"})
    response = client.post(url, {"username": agent.username, "password": "correct horse battery staple"})
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()


def _mark_failures(n: int) -> list[Bill]:
    bills = list(Bill.objects.filter(status=BillStatus.PENDING).order_by("id")[:n])
    families = [FailureFamily.FUNDS, FailureFamily.SYSTEM, FailureFamily.BINDING]
    now = timezone.now()
    for index, bill in enumerate(bills):
        Bill.objects.filter(pk=bill.pk).update(
            last_failure_family=families[index % 3],
            last_failure_code="insufficient_funds",
            last_failure_at=now - dt.timedelta(minutes=index),
        )
    return bills


def test_the_default_queue_puts_system_faults_first_and_funds_last(client, agent):
    _mark_failures(9)
    client.force_login(agent)
    response = client.get(reverse("console:worklist"))
    families = [bill.last_failure_family for bill in response.context["page"].rows]
    assert families == ["system"] * 3 + ["binding"] * 3 + ["funds"] * 3


def test_worklist_page_of_fifty_uses_at_most_fifteen_queries(client, agent, django_assert_max_num_queries):
    _mark_failures(120)
    client.force_login(agent)
    with django_assert_max_num_queries(15):
        response = client.get(reverse("console:worklist"))
    assert len(response.context["page"].rows) == 50
    assert response.context["page"].has_next
    with django_assert_max_num_queries(15):
        response = client.get(reverse("console:worklist") + "?queue=overdue&bucket=M2&page=2")
    assert response.status_code == 200


def test_customer_view_uses_at_most_fifteen_queries(client, agent, overdue, django_assert_max_num_queries):
    client.force_login(agent)
    url = reverse("console:customer-detail", args=[overdue.customer.customer_no])
    with django_assert_max_num_queries(15):
        response = client.get(url)
    assert response.status_code == 200
    assert overdue.bill_no in response.content.decode()


def test_search_uses_at_most_fifteen_queries(client, agent, django_assert_max_num_queries):
    client.force_login(agent)
    with django_assert_max_num_queries(15):
        response = client.get(reverse("console:search") + "?q=0000")
    assert response.status_code == 200


def test_search_by_full_phone_finds_the_customer_through_the_keyed_hash(client, agent):
    customer = Customer.objects.exclude(phone_hash="").order_by("id").first()
    client.force_login(agent)
    spaced = f"+86 {customer.phone[:3]} {customer.phone[3:7]} {customer.phone[7:]}"
    response = client.get(reverse("console:search"), {"q": spaced})
    assert response.status_code == 302
    assert response["Location"] == reverse("console:customer-detail", args=[customer.customer_no])


@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_a_role_that_may_not_reveal_cannot_learn_whose_full_phone_or_id_it_is(db, client, role, request):
    """Issue #15 (11): a lookup by a full personal identifier is a reveal; refused and not echoed."""
    customer = Customer.objects.exclude(phone_hash="").order_by("id").first()
    client.force_login(request.getfixturevalue(role))
    for query in (customer.phone, customer.national_id):
        response = client.post(reverse("console:search"), {"q": query})
        assert response.status_code == 403
        body = response.content.decode()
        assert customer.customer_no not in body and query not in body
    assert not AuditEvent.objects.filter(action="customer.lookup").exists()
    assert client.post(reverse("console:search"), {"q": customer.customer_no}).status_code == 302  # plain search


def test_a_lookup_by_full_phone_is_audited_with_the_customer_and_never_the_number(client, agent):
    customer = Customer.objects.exclude(phone_hash="").order_by("id").first()
    client.force_login(agent)
    assert client.post(reverse("console:search"), {"q": customer.phone}).status_code == 302
    event = AuditEvent.objects.get(action="customer.lookup")
    assert (event.actor, event.customer_no) == (agent, customer.customer_no)
    assert event.after == {"identifier": "phone", "last4": customer.phone[-4:], "found": [customer.customer_no]}
    assert customer.phone not in str(event.after)


def test_search_by_bill_number_opens_its_customer(client, agent, overdue):
    client.force_login(agent)
    response = client.get(reverse("console:search"), {"q": overdue.bill_no})
    assert response["Location"] == reverse("console:customer-detail", args=[overdue.customer.customer_no])


def test_customer_view_masks_personal_data(client, agent, overdue):
    customer = overdue.customer
    client.force_login(agent)
    page = client.get(reverse("console:customer-detail", args=[customer.customer_no])).content.decode()
    assert customer.phone not in page
    assert customer.national_id not in page
    assert customer.phone[-4:] in page
    assert customer.name not in page


def test_reveal_needs_a_reason_and_is_audited_without_the_value(client, agent, overdue):
    customer = overdue.customer
    client.force_login(agent)
    url = reverse("console:customer-reveal", args=[customer.customer_no])
    refused = client.post(url, {"field": "phone", "reason": ""})
    assert customer.phone not in refused.content.decode()
    assert not AuditEvent.objects.filter(action="customer.reveal", customer_no=customer.customer_no).exists()
    shown = client.post(url, {"field": "phone", "reason": "customer asked, ticket 42"})
    assert customer.phone in shown.content.decode()
    assert shown["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(action="customer.reveal", customer_no=customer.customer_no)
    assert (event.actor, event.reason, event.after) == (agent, "customer asked, ticket 42", {"field": "phone"})
    assert customer.phone not in str(event.before) + str(event.after)


def _with_check_digit(prefix: str) -> str:
    return prefix + luhn.calc_check_digit(prefix)


def _with_wrong_check_digit(prefix: str) -> str:
    return prefix + str((int(luhn.calc_check_digit(prefix)) + 1) % 10)


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("6.21626E+18", "spreadsheet"),
        ("6228480000", "12 to 19 digits"),
        (_with_wrong_check_digit("622202020011223344"), "check digit"),
        (_with_check_digit("999999999999999999"), "no bank issues"),
    ],
)
def test_binding_form_refuses_bad_card_numbers_without_calling_the_bank(client, agent, overdue, card, message):
    client.force_login(agent)
    url = reverse("console:binding-repair", args=[overdue.customer.customer_no])
    before = CardBinding.objects.count()
    response = client.post(url, {"card_number": card, "reserved_phone": "13812345678"})
    assert response.status_code == 200
    errors = " ".join(str(e) for e in response.context["form"].errors.get("card_number", []))
    assert message in errors.lower()
    assert card not in response.content.decode()  # never echoed back
    assert CardBinding.objects.count() == before


def test_binding_form_refuses_a_reserved_phone_that_is_not_a_mainland_mobile(client, agent, overdue):
    client.force_login(agent)
    url = reverse("console:binding-repair", args=[overdue.customer.customer_no])
    card = _with_check_digit("622202020011223344")  # ICBC debit BIN
    response = client.post(url, {"card_number": card, "reserved_phone": "02161234567"})
    assert response.status_code == 200
    assert response.context["form"].errors["reserved_phone"]


def test_extension_beyond_policy_is_sent_for_approval_from_the_form(client, agent, overdue):
    client.force_login(agent)
    url = reverse("console:extension-request", args=[overdue.customer.customer_no, overdue.bill_no])
    form = client.get(url).context["form"]
    data = {
        "days": 10,
        "reason": "hardship",
        "note": "lost job",
        "request_token": form["request_token"].value(),
        "bill_version": form["bill_version"].value(),
    }
    response = client.post(url, data)
    assert response.status_code == 302
    again = client.post(url, data)  # double submit
    assert again.status_code == 302
    extension = Extension.objects.get(bill=overdue)
    assert extension.status == "pending"


def test_a_waiver_above_the_late_fee_left_is_refused_on_the_form(client, agent, overdue):
    Bill.objects.filter(pk=overdue.pk).update(late_fee=Decimal("3.00"))
    overdue.refresh_from_db()
    client.force_login(agent)
    url = reverse("console:waiver-request", args=[overdue.customer.customer_no, overdue.bill_no])
    response = client.post(
        url,
        {
            "amount": "3.01",
            "reason": "hardship",
            "request_token": str(uuid.uuid4()),
            "bill_version": overdue.updated_at.isoformat(),
        },
    )
    assert response.status_code == 200
    assert "more than the late fee left to waive" in " ".join(response.context["form"].errors["amount"])


def test_the_console_renders_in_simplified_chinese(client, agent, overdue):
    client.force_login(agent)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    page = client.get(reverse("console:customer-detail", args=[overdue.customer.customer_no])).content.decode()
    assert "账单" in page
    assert 'lang="zh-hans"' in page


def test_deciding_an_approval_that_does_not_exist_says_so(client, supervisor):
    client.force_login(supervisor)
    response = client.post(reverse("console:approval-decide", args=["extension", 999_999]), {"decision": "approve"})
    assert response.status_code == 302
    message = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == ["No such extension request; it may have been withdrawn."]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_claim_and_decide_never_redirect_off_site(client, supervisor, overdue, target):
    client.force_login(supervisor)
    claim = client.post(reverse("console:bill-claim", args=[overdue.bill_no]), {"next": target})
    decide = client.post(reverse("console:approval-decide", args=["waiver", 1]), {"decision": "reject", "next": target})
    assert claim["Location"] == reverse("console:worklist")
    assert decide["Location"] == reverse("console:approvals")


def test_the_htmx_reveal_returns_only_the_value_and_is_not_cached(client, agent, overdue):
    client.force_login(agent)
    response = client.post(
        reverse("console:customer-reveal", args=[overdue.customer.customer_no]),
        {"field": "national_id", "reason": "identity check, ticket 9"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert overdue.customer.national_id in body
    assert "<html" not in body
    assert response["Cache-Control"] == "no-store"


def test_search_by_post_keeps_the_phone_number_out_of_the_url(client, agent):
    customer = Customer.objects.exclude(phone_hash="").order_by("id").first()
    client.force_login(agent)
    response = client.post(reverse("console:search"), {"q": customer.phone})
    assert response["Location"] == reverse("console:customer-detail", args=[customer.customer_no])


def test_analysts_do_not_see_the_customers_audit_events(client, analyst, agent, overdue):
    from accounts.services import audit_record

    audit_record(actor=agent, action="note.add", customer_no=overdue.customer.customer_no, reason="private reason")
    client.force_login(analyst)
    page = client.get(reverse("console:customer-detail", args=[overdue.customer.customer_no])).content.decode()
    assert "private reason" not in page
    assert 'data-testid="customer-audit"' not in page
