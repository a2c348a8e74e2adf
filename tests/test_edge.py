"""Bad input at the edge (issue #15, item 7): a NUL or an absurd page number is a 400 or a 404, never a 500.

One walk over every console page that lists or filters (``repayments/urls/``,
``accounts/urls.py``) puts a NUL into each of its
parameters, into its path segments and form fields, and asks it for page
99999999999999999999; ``baitiao/edge.py`` and ``baitiao/paging.py`` answer them.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from django.http import Http404, QueryDict
from django.urls import NoReverseMatch, get_resolver, reverse

from accounts.services import audit_record
from baitiao.paging import MAX_PAGE, page_number
from repayments.models import Bill, BillStatus

NUL = "a\x00b"
HUGE_PAGE = "99999999999999999999"
_AUDIT = ["actor", "action", "customer", "target_type", "target_id", "request", "batch", "since", "until", "system"]
_BILLS = [
    "status",
    "due_date_after",
    "due_date_before",
    "customer_no",
    "last_failure_family",
    "bucket",
    "dpd_min",
    "dpd_max",
    "amount_min",
    "amount_max",
    "risk_tier",
    "bank",
    "assignee",
    "month_from",
    "month_to",
    "currency",
    "last_failure_code",
]
_LEDGER = ["customer", "bill", "period", "cause", "since", "until", "revoked"]
_DASHBOARD = ["month_from", "month_to", "bank", "risk_tier", "currency"]
_WORKLIST = [
    "queue",
    "bank",
    "family",
    "bucket",
    "dpd_min",
    "dpd_max",
    "risk_tier",
    "amount_min",
    "amount_max",
    "assignee",
]
# Every console page read with GET and no path argument: its query parameters, whether
# it is paged (``?page=N``), and the parameters it needs to answer at all.
PAGES = {
    "console:home": ([], False, {}),
    "console:worklist": (_WORKLIST, True, {}),
    "console:search": (["q"], False, {}),
    "console:approvals": ([], False, {}),
    "console:bills": (_BILLS, True, {}),
    "accounts:audit": (_AUDIT, True, {}),
    "accounts:audit-export": (_AUDIT, False, {}),
    "console:incidents": ([], True, {}),
    "console:incident-declare": ([], False, {}),
    "console:bureau-ledger": (_LEDGER, True, {}),
    "console:bureau-ledger-export": (_LEDGER, False, {}),
    "console:dashboard": (_DASHBOARD, False, {}),
    "console:dashboard-export": (["section", *_DASHBOARD], False, {"section": "buckets"}),
    "data:home": ([], False, {}),
    "accounts:login": (["next"], False, {}),
}
POST_ONLY = {"console:dashboard-refresh", "data:import", "data:export", "accounts:logout"}
OK = "200 or 302"
# The worklist's queues are separate lists.
WORKLIST_QUEUES = ["failures", "system", "binding", "funds", "repair", "overdue", "approvals"]


def _cases():
    for name, (params, paged, base) in PAGES.items():
        for param in [*params, "\x00"]:  # every parameter, and a parameter whose name holds the NUL
            yield pytest.param(name, {**base, param: NUL}, 400, id=f"{name}-{param!r}-nul")
        # A page that is not paged ignores ?page= (the login page sends a signed-in user on: 302).
        yield pytest.param(name, {**base, "page": HUGE_PAGE}, 404 if paged else OK, id=f"{name}-huge-page")
    for queue in WORKLIST_QUEUES:  # an absurd page number is refused whatever the queue
        yield pytest.param("console:worklist", {"queue": queue, "page": HUGE_PAGE}, 404, id=f"{queue}-huge-page")


def _pages_without_path_arguments() -> set[str]:
    names = set()
    for namespace in ("console", "data", "accounts"):
        resolver = get_resolver().namespace_dict[namespace][1]
        for name in resolver.reverse_dict:
            if isinstance(name, str):
                try:
                    reverse(f"{namespace}:{name}")
                except NoReverseMatch:
                    continue  # takes path arguments: see the path-segment cases below
                names.add(f"{namespace}:{name}")
    return names


def test_the_walk_covers_every_console_page_without_path_arguments():
    assert _pages_without_path_arguments() - POST_ONLY == set(PAGES), "add the new page and its parameters to PAGES"


@pytest.mark.parametrize(("name", "params", "status"), list(_cases()))
def test_console_pages_answer_a_nul_with_400_and_a_huge_page_with_404_never_500(
    name, params, status, client, admin_user
):
    client.force_login(admin_user)
    response = client.get(reverse(name) + "?" + urlencode(params))
    assert response.status_code in ((200, 302) if status == OK else (status,))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if status == 400:
        assert "holds a control character" in body.decode()
        assert NUL not in body.decode()  # the value is never echoed
    if status == 404:
        assert "There is no page" in body.decode()


@pytest.fixture
def bill(db) -> Bill:
    return Bill.objects.filter(status=BillStatus.OVERDUE).select_related("customer").order_by("id").first()


@pytest.mark.parametrize(
    ("name", "method", "kwargs"),
    [
        ("console:customer-detail", "get", {"customer_no": NUL}),
        ("console:binding-repair", "get", {"customer_no": NUL}),
        ("console:binding-confirm", "get", {"customer_no": NUL}),
        ("console:extension-request", "get", {"bill_no": NUL}),
        ("console:waiver-request", "get", {"bill_no": NUL}),
        ("console:customer-reveal", "post", {"customer_no": NUL}),
        ("console:note-add", "post", {"customer_no": NUL}),
        ("console:bill-retry", "post", {"bill_no": NUL}),
        ("console:bill-claim", "post", {"bill_no": NUL}),
        ("data:template", "get", {"resource": NUL}),
    ],
)
def test_a_nul_in_a_path_segment_is_a_400(name, method, kwargs, client, admin_user, bill):
    client.force_login(admin_user)
    full = {"customer_no": bill.customer.customer_no, "bill_no": bill.bill_no}
    url = reverse(name, kwargs=_kwargs_for(name, kwargs, full))
    assert "%00" in url
    response = getattr(client, method)(url)
    assert response.status_code == 400
    assert "The address holds a control character" in response.content.decode()


def _kwargs_for(name: str, nul: dict, full: dict) -> dict:
    """The URL's arguments: the NUL where the case puts it, real numbers elsewhere."""
    needs = {
        "console:customer-detail": ["customer_no"],
        "console:binding-repair": ["customer_no"],
        "console:binding-confirm": ["customer_no"],
        "console:extension-request": ["customer_no", "bill_no"],
        "console:waiver-request": ["customer_no", "bill_no"],
        "console:customer-reveal": ["customer_no"],
        "console:note-add": ["customer_no"],
        "console:bill-retry": ["customer_no", "bill_no"],
        "console:bill-claim": ["bill_no"],
        "data:template": ["resource"],
    }[name]
    return {key: nul.get(key, full.get(key)) for key in needs}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("console:search", {"q": NUL}),
        ("console:note-add", {"body": "called\r\nno answer " + NUL}),
        ("console:customer-reveal", {"field": "phone", "reason": NUL + " ticket 42"}),
        ("console:incident-declare", {"bank_code": NUL, "description": "x"}),
    ],
)
def test_a_nul_in_a_form_field_is_a_400_naming_the_field(name, data, client, admin_user, bill):
    client.force_login(admin_user)
    kwargs = (
        {"customer_no": bill.customer.customer_no} if name in ("console:note-add", "console:customer-reveal") else {}
    )
    response = client.post(reverse(name, kwargs=kwargs), data)
    assert response.status_code == 400
    field = next(key for key, value in data.items() if "\x00" in value)
    assert f"The form field “{field}” holds a control character" in response.content.decode()


def test_a_nul_in_the_login_form_is_a_400_and_no_failed_login(client):
    response = client.post(reverse("accounts:login"), {"username": NUL, "password": "x"})
    assert response.status_code == 400


def test_line_breaks_and_tabs_in_a_note_are_still_accepted(client, admin_user, bill):
    client.force_login(admin_user)
    url = reverse("console:note-add", kwargs={"customer_no": bill.customer.customer_no})
    response = client.post(url, {"body": "called twice\r\n\tno answer"})
    assert response.status_code == 302


def test_a_page_past_the_end_of_a_list_is_a_404_and_the_first_page_of_an_empty_list_is_not(client, auditor, agent):
    audit_record(actor=agent, action="note.add", customer_no="EDGE-1")
    client.force_login(auditor)
    url = reverse("accounts:audit")
    assert client.get(url, {"customer": "EDGE-1"}).status_code == 200
    assert client.get(url, {"customer": "NOBODY"}).status_code == 200  # empty, but it is the list
    past = client.get(url, {"customer": "EDGE-1", "page": "2"})
    assert past.status_code == 404
    assert "Page 2 is past the end of this list" in past.content.decode()


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "１２", HUGE_PAGE, str(MAX_PAGE + 1), quote("\x00")])
def test_a_page_number_that_is_not_a_whole_number_from_one_is_a_404(raw):
    with pytest.raises(Http404, match="There is no page"):
        page_number(QueryDict(f"page={raw}"))


@pytest.mark.parametrize(("raw", "number"), [("", 1), ("1", 1), (" 7 ", 7), (str(MAX_PAGE), MAX_PAGE)])
def test_a_page_number_is_read_from_the_query_string(raw, number):
    assert page_number(QueryDict(f"page={quote(raw)}")) == number
    assert page_number(QueryDict("")) == 1
