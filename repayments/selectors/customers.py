"""Reads for the console's search, customer view and approvals inbox."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import DateField, DecimalField, Exists, F, IntegerField, OuterRef, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEvent, User
from baitiao.masking import phone_digits
from baitiao.pii import pii_hash
from repayments.models import (
    ApprovalStatus,
    Bill,
    BindingRepairCase,
    CardBinding,
    CreditLine,
    Customer,
    CustomerNote,
    Extension,
    ExtensionReason,
    Notification,
    RepairCaseStatus,
    RepaymentAttempt,
    Waiver,
)
from repayments.selectors.incidents import relief_pending
from repayments.services.errors import RuleViolation
from repayments.services.extensions import ExtensionPreview, extension_preview

SEARCH_LIMIT = 50
BILL_LIMIT = 24  # two years of monthly bills
TIMELINE_LIMIT = 50


@dataclass
class SearchResult:
    customers: list[Customer]
    how: str  # what the query was taken to be, shown to the agent


def full_identifier_kind(query: str) -> str:
    """``"phone"`` or ``"national_id"`` when ``query`` is a whole personal identifier, else ``""``.

    A full mainland mobile number (11 digits starting with 1, with or without +86,
    spaces, brackets or dashes) or an 18-character resident ID: what
    :func:`customer_search` looks up exactly by keyed hash. Such a lookup tells who
    holds the identifier, so it is a personal-data access (``customer_lookup``).
    """
    raw = query.strip()
    digits = phone_digits(raw) if re.fullmatch(r"[+\d\s()-]{11,20}", raw) else ""
    if len(digits) == 11 and digits.startswith("1"):
        return "phone"
    if re.fullmatch(r"\d{17}[\dXx]", raw):
        return "national_id"
    return ""


def customer_search(query: str) -> SearchResult:
    """Find customers by customer_no, bill_no, full phone (keyed hash) or last four digits.

    * a full mainland mobile number (11 digits, with or without +86/spaces): exact, via ``phone_hash``;
    * four characters (digits, or three digits and X): last four of phone, card or national ID;
    * an 18-character resident ID: exact, via ``national_id_hash``;
    * anything else: customer_no, then bill_no, exactly.

    Never a scan of encrypted columns: every branch reads an index.
    """
    raw = query.strip()
    if not raw:
        return SearchResult([], "")
    base = Customer.objects.select_related("credit_line").order_by("customer_no")
    kind = full_identifier_kind(raw)
    if kind == "phone":
        digits = phone_digits(raw)
        return SearchResult(list(base.filter(phone_hash=pii_hash(digits))[:SEARCH_LIMIT]), _("phone"))
    if kind == "national_id":
        return SearchResult(list(base.filter(national_id_hash=pii_hash(raw.upper()))[:SEARCH_LIMIT]), _("national ID"))
    if re.fullmatch(r"\d{3}[\dXx]", raw):
        last4 = raw.upper()
        # One index read per column (an OR across them would scan every customer).
        ids = (
            Customer.objects.filter(phone_last4=last4)
            .values_list("id", flat=True)
            .union(
                Customer.objects.filter(national_id_last4=last4).values_list("id", flat=True),
                CardBinding.objects.filter(last4=last4).values_list("customer_id", flat=True),
            )
        )
        found = base.filter(id__in=list(ids))
        return SearchResult(list(found[:SEARCH_LIMIT]), _("last four digits"))
    by_no = list(base.filter(customer_no=raw)[:1])
    if by_no:
        return SearchResult(by_no, _("customer number"))
    bill = Bill.objects.filter(bill_no=raw).values("customer_id").first()
    if bill:
        return SearchResult(list(base.filter(id=bill["customer_id"])), _("bill number"))
    return SearchResult([], _("customer or bill number"))


def customer_detail(customer_no: str, *, with_audit: bool = True) -> dict:
    """Everything the customer view shows, in a fixed number of queries (about ten).

    Every documented state of a customer is a page: without a credit line (customers
    imported on their own, docs/csv.md), without a card binding, without bills.

    Args:
        customer_no: the customer's number.
        with_audit: include the customer's audit events (for roles that work the
            case or audit it; the events carry staff's free-text reasons).

    Returns:
        A template context: ``customer``; ``credit_line`` (``None`` when the customer
        has none) and ``currency`` (its ISO code, ``""`` without one: the amounts of
        every bill, attempt and waiver on the page are in it, the customer's one line);
        ``bindings``, ``bills``, ``attempts``, ``notifications``, ``casework``,
        ``pending``, ``notes``; ``audit_events`` (``None`` without ``with_audit``).

    Raises:
        Customer.DoesNotExist: no such customer.
    """
    customer = Customer.objects.select_related("credit_line").get(customer_no=customer_no)
    try:
        credit_line = customer.credit_line
    except CreditLine.DoesNotExist:
        credit_line = None
    bills = list(
        Bill.objects.filter(customer=customer)
        .with_bucket()
        .select_related("assigned_to")
        .order_by("-period")[:BILL_LIMIT]
    )
    casework = customer_casework(customer)
    return {
        "customer": customer,
        "credit_line": credit_line,
        "currency": credit_line.currency if credit_line else "",
        "bindings": list(
            CardBinding.objects.filter(customer=customer)
            .annotate(
                open_cases=Exists(
                    BindingRepairCase.objects.filter(card_binding=OuterRef("pk"), status=RepairCaseStatus.OPEN)
                )
            )
            .order_by("-bound_at")
        ),
        "bills": bills,
        "attempts": list(
            RepaymentAttempt.objects.filter(bill__customer=customer)
            .select_related("bill", "card_binding")
            .order_by("-requested_at", "-id")[:TIMELINE_LIMIT]
        ),
        "notifications": list(
            Notification.objects.filter(customer=customer).select_related("bill").order_by("-sent_at")[:TIMELINE_LIMIT]
        ),
        "casework": casework,
        "pending": [row for row in casework if row["status"] == ApprovalStatus.PENDING],
        "notes": list(CustomerNote.objects.filter(customer=customer).select_related("author", "bill")[:TIMELINE_LIMIT]),
        "audit_events": list(AuditEvent.objects.filter(customer_no=customer.customer_no)[:TIMELINE_LIMIT])
        if with_audit
        else None,
    }


def customer_casework(customer: Customer, limit: int = 50) -> list[dict]:
    """The customer's extensions and waivers, newest first, in one query (a UNION ALL).

    Each row: ``kind`` ("extension"/"waiver"), ``created_at``, ``bill_no``, ``requested_by``,
    ``decided_by`` (usernames), ``status``, ``reason``, ``days`` or ``amount``,
    ``due_date_after``, ``by_policy``, plus ``status_label`` and ``reason_label``.
    """
    common = {
        "bill_no": F("bill__bill_no"),
        "requester": F("requested_by__username"),
        "decider": F("decided_by__username"),
    }
    extensions = (
        Extension.objects.filter(customer=customer)
        .annotate(kind=Value("extension"), amount=Value(None, output_field=DecimalField()), **common)
        .values(*ROW_FIELDS)
    )
    waivers = (
        Waiver.objects.filter(customer=customer)
        .annotate(
            kind=Value("waiver"),
            days=Value(None, output_field=IntegerField()),
            due_date_after=Value(None, output_field=DateField()),
            **common,
        )
        .values(*ROW_FIELDS)
    )
    rows = list(extensions.union(waivers, all=True).order_by("-created_at")[:limit])
    statuses, reasons = dict(ApprovalStatus.choices), dict(ExtensionReason.choices)
    for row in rows:
        row["status_label"] = statuses.get(row["status"], row["status"])
        row["reason_label"] = reasons.get(row["reason"], row["reason"])
    return rows


ROW_FIELDS = (
    "kind",
    "id",
    "created_at",
    "bill_no",
    "requester",
    "decider",
    "status",
    "reason",
    "days",
    "amount",
    "due_date_after",
    "by_policy",
)


APPROVAL_PERMISSIONS = ("repayments.approve_extension", "repayments.approve_waiver", "repayments.manage_incident")


def user_can_approve(user: User) -> bool:
    """Whether ``user`` decides anything of the approvals inbox (extensions, waivers or relief batches)."""
    return any(user.has_perm(permission) for permission in APPROVAL_PERMISSIONS)


def approvals_pending(*, user: User) -> dict[str, list]:
    """Extensions, waivers and relief batches awaiting a decision the user may take, oldest first (at most 100 each).

    Only the kinds the user may approve are listed; the user's own requests are
    listed apart: they can see them but never decide on them.
    """
    related = ("bill__credit_line", "customer", "requested_by")
    result: dict[str, list] = {"extensions": [], "waivers": [], "own_extensions": [], "own_waivers": []}
    for kind, model, permission in (
        ("extensions", Extension, "repayments.approve_extension"),
        ("waivers", Waiver, "repayments.approve_waiver"),
    ):
        if not user.has_perm(permission):
            continue
        pending = model.objects.filter(status=ApprovalStatus.PENDING).select_related(*related).order_by("created_at")
        result[kind] = list(pending.exclude(requested_by=user)[:100])
        result[f"own_{kind}"] = list(pending.filter(requested_by=user)[:100])
    # What approving each extension would do today (issue #16): the same rule the
    # approval applies, computed for the day of approval, or why it cannot apply.
    now = timezone.now()
    result["extension_rows"] = [(e, *_extension_preview_or_refusal(e, now)) for e in result["extensions"]]
    result.update(relief_pending(user=user))
    return result


def _extension_preview_or_refusal(extension: Extension, now: dt.datetime) -> tuple[ExtensionPreview | None, str]:
    try:
        return extension_preview(bill=extension.bill, days=extension.days, reason=extension.reason, now=now), ""
    except RuleViolation as exc:
        return None, str(exc)
