"""What an agent does on a customer's record besides extensions and bindings.

Looking a customer up by a full personal identifier, revealing personal data,
notes, claiming a bill from the worklist and a manual debit retry. Each writes an
audit event in the same transaction as its change.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from baitiao.money import ZERO
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    Bill,
    CardBinding,
    CardBindingStatus,
    Customer,
    CustomerNote,
    RepaymentAttempt,
)
from repayments.selectors.customers import SearchResult, customer_search, full_identifier_kind
from repayments.services.collection import collect_customer_soon
from repayments.services.errors import RuleViolation

REVEALABLE_FIELDS = {
    # form field -> attribute holding the clear value (reserved_phone: on the binding)
    "name": "name",
    "phone": "phone",
    "national_id": "national_id",
    "email": "email",
    "reserved_phone": "reserved_phone",
}
MIN_REASON_LENGTH = 5


LOOKUP_PERMISSION = "repayments.reveal_personal_data"


def customer_lookup(*, query: str, actor: User, ip_address: str | None = None) -> SearchResult:
    """The console's search as ``actor``: a lookup by a full personal identifier is a reveal.

    A whole phone number or resident ID tells who holds it (PIPL: contact data
    used for its stated purpose only), so it needs the permission a reveal needs
    (agents and supervisors) and is audited (``customer.lookup``, the kind of
    identifier, its last four digits and the customers found; never the value).
    Every other query (customer or bill number, last four digits) is a plain search.

    Args:
        query: what was typed in the search box.
        actor: the staff user searching.
        ip_address: the request's client address, for the audit event.

    Returns:
        The search result (``repayments.selectors.customers.customer_search``).

    Raises:
        RuleViolation: a full identifier from a user without ``repayments.reveal_personal_data``.
    """
    kind = full_identifier_kind(query)
    if not kind:
        return customer_search(query)
    if not actor.has_perm(LOOKUP_PERMISSION):
        raise RuleViolation(
            "q", _("Searching by a full phone number or ID is a personal-data lookup your role may not make.")
        )
    with transaction.atomic():
        result = customer_search(query)
        audit_record(
            actor=actor,
            action="customer.lookup",
            target_type="repayments.customer",
            customer_no=result.customers[0].customer_no if len(result.customers) == 1 else "",
            after={
                "identifier": kind,
                "last4": query.strip()[-4:],
                "found": [customer.customer_no for customer in result.customers],
            },
            ip_address=ip_address,
        )
    return result


def customer_reveal(*, customer: Customer, field: str, actor: User, reason: str, ip_address: str | None = None) -> str:
    """Return one personal field of ``customer`` in clear, and audit that ``actor`` saw it.

    Args:
        customer: whose data.
        field: one of ``REVEALABLE_FIELDS`` (``reserved_phone`` is the active binding's).
        actor: needs ``repayments.reveal_personal_data``.
        reason: why (at least ``MIN_REASON_LENGTH`` characters); stored in the audit event.
        ip_address: the request's client address.

    Returns:
        The clear value ("" when the customer has none). The value is never written
        to the audit trail, only the field's name.

    Raises:
        RuleViolation: no permission, unknown field, or no reason.
    """
    if not actor.has_perm("repayments.reveal_personal_data"):
        raise RuleViolation("__all__", _("You may not reveal personal data."))
    if field not in REVEALABLE_FIELDS:
        raise RuleViolation("field", _("Unknown field “%(field)s”.") % {"field": field})
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise RuleViolation("reason", _("Give a reason (what the customer asked for, or the ticket number)."))
    if field == "reserved_phone":
        binding = (
            CardBinding.objects.filter(customer=customer)
            .exclude(status=CardBindingStatus.REPLACED)
            .order_by("-bound_at")
            .first()
        )
        value = binding.reserved_phone if binding else ""
    else:
        value = getattr(customer, REVEALABLE_FIELDS[field])
    audit_record(
        actor=actor,
        action="customer.reveal",
        target=customer,
        reason=reason.strip(),
        after={"field": field},
        ip_address=ip_address,
    )
    return value


def note_add(*, customer: Customer, author: User, body: str, bill: Bill | None = None) -> CustomerNote:
    """Add a note to the customer's record.

    Args:
        customer: whose record.
        author: the agent (needs ``repayments.work_cases``).
        body: the text, at most 2,000 characters.
        bill: the bill it is about, if any.

    Raises:
        RuleViolation: no permission, an empty note, or more than 2,000 characters.
    """
    if not author.has_perm("repayments.work_cases"):
        raise RuleViolation("__all__", _("You may not add notes."))
    body = body.strip()
    if not body:
        raise RuleViolation("body", _("The note is empty."))
    if len(body) > 2000:
        raise RuleViolation(
            "body", _("Keep notes under 2,000 characters (this one has %(length)s).") % {"length": f"{len(body):,}"}
        )
    with transaction.atomic():
        note = CustomerNote.objects.create(customer=customer, author=author, body=body, bill=bill)
        audit_record(actor=author, action="note.add", target=note, customer=customer)
    return note


def bill_claim(*, bill_id: int, actor: User, release: bool = False) -> Bill:
    """Assign a bill on the worklist to ``actor`` (or release it).

    A conditional UPDATE: a bill another agent has claimed stays theirs.

    Args:
        bill_id: the bill on the worklist.
        actor: the agent (needs ``repayments.work_cases``).
        release: give the bill back instead of claiming it.

    Raises:
        RuleViolation: no permission, or the bill is claimed by someone else (or, on
            release, not by ``actor``).
    """
    if not actor.has_perm("repayments.work_cases"):
        raise RuleViolation("__all__", _("You may not claim worklist items."))
    with transaction.atomic():
        if release:
            changed = Bill.objects.filter(pk=bill_id, assigned_to=actor).update(
                assigned_to=None, updated_at=timezone.now()
            )
        else:
            changed = Bill.objects.filter(pk=bill_id, assigned_to__isnull=True).update(
                assigned_to=actor, updated_at=timezone.now()
            )
        bill = Bill.objects.select_related("customer", "assigned_to").get(pk=bill_id)
        if not changed and bill.assigned_to_id != (None if release else actor.pk):
            holder = bill.assigned_to.get_username() if bill.assigned_to else _("nobody")
            raise RuleViolation(
                "__all__", _("Bill %(bill)s is assigned to %(holder)s.") % {"bill": bill.bill_no, "holder": holder}
            )
        if changed:
            audit_record(
                actor=actor, action="bill.release" if release else "bill.claim", target=bill, customer=bill.customer
            )
    return bill


def bill_retry_manual(*, bill_id: int, actor: User, bill_version: str | None = None) -> Bill:
    """Ask the collection run to debit the bill now (idempotent: asking twice debits once).

    Sets ``retry_at`` to now and starts a collection run after commit; the
    database's one-in-flight rule means a second request cannot make a second debit.

    Raises:
        RuleViolation: no permission, nothing owed, a debit already in flight, no
            active card, or the bill changed since the page was loaded.
    """
    if not actor.has_perm("repayments.retry_debit"):
        raise RuleViolation("__all__", _("You may not retry debits."))
    with transaction.atomic():
        bill = Bill.objects.select_for_update().select_related("customer").get(pk=bill_id)
        if bill_version and bill.updated_at.isoformat() != bill_version:
            raise RuleViolation(
                "__all__",
                _("Bill %(bill)s changed while you were looking at it. Reload the page.") % {"bill": bill.bill_no},
            )
        if bill.status not in OPEN_BILL_STATUSES or bill.outstanding <= ZERO:
            raise RuleViolation("__all__", _("Bill %(bill)s has nothing to collect.") % {"bill": bill.bill_no})
        if RepaymentAttempt.objects.filter(bill=bill, status__in=IN_FLIGHT_ATTEMPT_STATUSES).exists():
            raise RuleViolation(
                "__all__", _("A debit for %(bill)s is already in flight; wait for its result.") % {"bill": bill.bill_no}
            )
        if bill.retry_at is not None and bill.retry_at <= timezone.now():
            return bill  # already queued for the next run: asking twice changes nothing
        if not CardBinding.objects.filter(customer_id=bill.customer_id, status=CardBindingStatus.ACTIVE).exists():
            raise RuleViolation("__all__", _("The customer has no working card. Repair the binding first."))
        now = timezone.now()
        Bill.objects.filter(pk=bill.pk).update(retry_at=now, updated_at=now)
        audit_record(actor=actor, action="bill.retry_manual", target=bill, customer=bill.customer)
        collect_customer_soon(bill.customer_id)
    bill.refresh_from_db()
    return bill
