"""Extensions (展期) and late-fee waivers (减免) with maker-checker approval.

Policy (``settings.EXTENSION_POLICY``, ``settings.WAIVER_AGENT_LIMIT``; explained in
``docs/console.md``):

* An agent may grant an extension of up to ``agent_max_days`` days, once per bill
  and at most ``agent_max_per_customer`` times per customer in the trailing
  ``window_days``, when it moves the due date at most ``agent_max_shift_days``
  (the *shift*: days asked plus days already late, :func:`extension_shift`). Such
  a request is approved on the spot (``by_policy``). No extension, approved or
  not, shifts a due date more than ``max_days``: a delinquency that old is not
  cured by an extension.
* Anything beyond that waits for a supervisor; the approver is never the
  requester (checked here and by a database constraint).
* A waiver up to ``WAIVER_AGENT_LIMIT`` yuan is applied on the spot; above it, the
  same maker-checker rule applies.

Effect of an approved extension (:func:`extension_effect`, the one rule that both
the preview and the apply use; ``docs/repayment-engine.md``, "Extensions"):

* ``days`` are counted from the bill's **anchor** — the date its lateness counts
  from (the oldest missed due date, else the due date) — or from **today** (the
  business date, Asia/Shanghai) when that date has passed. An extension of an
  overdue bill is therefore "``days`` days from today": 30 days on a bill 37 days
  late makes it current, its past-due date 30 days ahead. The due date and the
  past-due schedule move by the same number of days (the *shift*).
* Status and DPD are recomputed for today (the bill is current again); the next
  debit is on the moved anchor at the collection start hour, never in the past.
* The late fee is waived when the reason is a system fault (the customer is not
  punished for our outage).
* A bureau-suppression record keeps the bill out of credit-bureau lateness
  reporting until the new due date plus grace, never a past date.

An extension waiting for a supervisor is recomputed for the day it is approved
(the days count from that day); it is refused when the bill's due date moved
since the request (a relief batch or another change: ask again).

Every request carries a ``request_token`` from its form: submitting the same form
twice returns the first result. Every request carries the bill's ``updated_at``
as the agent saw it: if the bill changed meanwhile, the request is refused.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from baitiao.business_time import business_datetime, business_today
from baitiao.money import ZERO, format_money, to_money
from repayments.models import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_BILL_STATUSES,
    ApprovalStatus,
    Bill,
    BillStatus,
    BureauSuppression,
    Extension,
    ExtensionReason,
    RepaymentAttempt,
    Waiver,
)
from repayments.services.delinquency import bill_close_paid, bill_restate
from repayments.services.errors import RuleViolation


def _locked_bill(bill_id: int, bill_version: str | None) -> Bill:
    bill = Bill.objects.select_for_update().select_related("customer", "credit_line").get(pk=bill_id)
    if bill_version and bill.updated_at.isoformat() != bill_version:
        raise RuleViolation(
            "__all__",
            _("Bill %(bill)s changed while you were looking at it. Reload the page and check it again.")
            % {"bill": bill.bill_no},
        )
    return bill


@dataclass(frozen=True)
class ExtensionPreview:
    """What an extension does to a bill when applied on ``as_of`` (computed, nothing written).

    Dates are business dates (Asia/Shanghai); ``next_debit_at`` is an aware datetime
    (UTC in the database, shown in business time); money in the bill's currency (yuan).
    """

    as_of: dt.date  # the business date it is computed for (the request's or the approval's day)
    days: int  # days requested, counted from the anchor or from today when that has passed
    shift_days: int  # days the due date and the past-due schedule move
    due_date_before: dt.date
    due_date_after: dt.date
    status_before: str  # a BillStatus value
    status_after: str
    dpd_before: int
    dpd_after: int
    next_debit_at: dt.datetime  # the collection run's next debit of the bill, never before ``as_of``
    suppress_until: dt.date  # not reported to the credit bureau up to this date (inclusive)
    late_fee_waived: Decimal  # waived by a system-fault extension, else 0.00
    currency: str

    @property
    def status_before_label(self) -> str:
        return str(BillStatus(self.status_before).label)

    @property
    def status_after_label(self) -> str:
        return str(BillStatus(self.status_after).label)


def _anchor(bill: Bill) -> dt.date:
    """The date the bill's lateness counts from: its oldest missed due date, else its due date."""
    return min(bill.past_due_since or bill.due_date, bill.due_date)


def _check_extendable(bill: Bill) -> None:
    if bill.status not in OPEN_BILL_STATUSES or bill.outstanding <= ZERO:
        raise RuleViolation(
            "__all__",
            _("Bill %(bill)s is %(status)s: nothing to extend.")
            % {"bill": bill.bill_no, "status": bill.get_status_display()},
        )


def extension_shift(*, bill: Bill, days: int, today: dt.date) -> int:
    """Calendar days the bill's due date moves for an extension of ``days`` granted on ``today``.

    ``days`` plus the days the bill is already late (from its anchor to ``today``, a
    business date, Asia/Shanghai): 7 days on a bill 170 days late move it 177 days.
    The policy limits (``max_days`` for anyone, ``agent_max_days`` without approval)
    apply to this shift, not only to the days typed.
    """
    return days + max((today - _anchor(bill)).days, 0)


def _check_days(days: int) -> None:
    max_days = settings.EXTENSION_POLICY["max_days"]
    if not 1 <= days <= max_days:
        raise RuleViolation(
            "days", _("Days must be between 1 and %(max)s; got %(days)s.") % {"max": max_days, "days": days}
        )


def _check_shift(bill: Bill, *, days: int, today: dt.date) -> None:
    """Refuse an extension whose shift (days asked plus days already late) passes ``max_days``."""
    max_days = settings.EXTENSION_POLICY["max_days"]
    shift = extension_shift(bill=bill, days=days, today=today)
    if shift > max_days:
        raise RuleViolation(
            "days",
            _(
                "%(days)s days on a bill %(late)s days late would move its due date %(shift)s days; "
                "no extension moves it more than %(max)s days."
            )
            % {"days": days, "late": shift - days, "shift": shift, "max": max_days},
        )


def _extension_effect(bill: Bill, *, days: int, reason: str, now: dt.datetime) -> tuple[ExtensionPreview, list[str]]:
    """Apply the extension rule (module docstring) to ``bill`` in memory; return the preview and changed fields.

    The one definition of the rule: :func:`extension_preview` runs it on a copy,
    ``_extension_apply`` on the locked bill.
    """
    today = timezone.localdate(now)
    status_before, dpd_before, due_before = bill.status, bill.dpd, bill.due_date
    # Days count from the anchor, or from today when the anchor has passed: the
    # customer gets ``days`` days from now, and the bill is current again.
    shift = extension_shift(bill=bill, days=days, today=today)
    bill.due_date = due_before + dt.timedelta(days=shift)
    # The past-due schedule (missed minimums of earlier statements included) moves
    # with the due date: DPD counts from the oldest missed due date, moved.
    if bill.past_due_since is not None:
        bill.past_due_since += dt.timedelta(days=shift)
    fields = bill_restate(bill, today=today)
    # The next debit: on the moved anchor (today + days at the earliest) at the
    # collection start hour, whether or not the bill was debited before; the
    # collection run picks up retry_at. It is never in the past.
    bill.retry_at = business_datetime(_anchor(bill), dt.time(settings.COLLECTION_START_HOUR, 0))
    waived = ZERO
    if reason == ExtensionReason.SYSTEM_FAULT:
        waived = bill.late_fee - bill.late_fee_waived
        bill.late_fee_waived = bill.late_fee
    preview = ExtensionPreview(
        as_of=today,
        days=days,
        shift_days=shift,
        due_date_before=due_before,
        due_date_after=bill.due_date,
        status_before=status_before,
        status_after=bill.status,
        dpd_before=dpd_before,
        dpd_after=bill.dpd,
        next_debit_at=bill.retry_at,
        suppress_until=bill.due_date + dt.timedelta(days=settings.GRACE_PERIOD_DAYS),
        late_fee_waived=waived,
        currency=bill.credit_line.currency,
    )
    return preview, ["due_date", "retry_at", "late_fee_waived", *fields]


def extension_preview(*, bill: Bill, days: int, reason: str = "", now: dt.datetime | None = None) -> ExtensionPreview:
    """What extending ``bill`` by ``days`` would do if applied at ``now``; nothing is written.

    The same rule the request (within policy) and the approval apply
    (``_extension_effect``): the form shows it before submitting, the approver
    sees it computed for the day of approval.

    Args:
        bill: the bill as loaded (with ``credit_line``); it is not changed.
        days: calendar days requested (1 … ``EXTENSION_POLICY["max_days"]``).
        reason: an :class:`ExtensionReason` value; "system_fault" also waives the late fee.
        now: the moment it would apply (aware; default now); its business date is "today".

    Returns:
        An :class:`ExtensionPreview`.

    Raises:
        RuleViolation: ``days`` out of range, or the shift (``days`` plus the days already
            late) above ``max_days`` (field ``days``); or the bill is closed or owes nothing.
    """
    now = now or timezone.now()
    _check_days(days)
    _check_extendable(bill)
    _check_shift(bill, days=days, today=timezone.localdate(now))
    preview, _fields = _extension_effect(copy.copy(bill), days=days, reason=reason, now=now)
    return preview


def extension_within_policy(*, bill: Bill, days: int, as_of: dt.date | None = None) -> tuple[bool, str]:
    """Whether an agent may grant ``days`` on ``bill`` without approval, and if not, why.

    Args:
        bill: the bill (its extensions and its customer's are counted).
        days: calendar days requested.
        as_of: business date (Asia/Shanghai) ending the trailing window (default: today).

    Returns:
        ``(True, "")`` or ``(False, why not)``, the reason in the active language.
    """
    policy = settings.EXTENSION_POLICY
    as_of = as_of or business_today()
    if days > policy["agent_max_days"]:
        return False, _("more than %(days)s days") % {"days": policy["agent_max_days"]}
    shift = extension_shift(bill=bill, days=days, today=as_of)
    if shift > policy["agent_max_shift_days"]:
        message = _("the bill is %(late)s days late: its due date would move %(shift)s days (more than %(max)s)")
        return False, message % {"late": shift - days, "shift": shift, "max": policy["agent_max_shift_days"]}
    granted = Extension.objects.filter(status=ApprovalStatus.APPROVED)
    if granted.filter(bill=bill).count() >= policy["agent_max_per_bill"]:
        return False, _("this bill has already been extended")
    since = timezone.make_aware(dt.datetime.combine(as_of - dt.timedelta(days=policy["window_days"]), dt.time(0, 0)))
    if granted.filter(customer_id=bill.customer_id, decided_at__gte=since).count() >= policy["agent_max_per_customer"]:
        message = _("%(count)s extensions for this customer in the last %(window)s days already")
        return False, message % {"count": policy["agent_max_per_customer"], "window": policy["window_days"]}
    return True, ""


def extension_request(
    *,
    bill_id: int,
    requested_by: User,
    days: int,
    reason: str,
    note: str = "",
    request_token: uuid.UUID,
    bill_version: str | None = None,
    now: dt.datetime | None = None,
) -> Extension:
    """Ask for an extension of ``bill_id`` by ``days`` calendar days.

    Within the agent policy it is approved and applied at once; otherwise it
    waits in the supervisors' approvals inbox.

    Args:
        bill_id: the bill to extend.
        requested_by: the agent (needs ``repayments.request_extension``).
        days: calendar days (1 … ``max_days``) from the bill's oldest missed due date, else its
            due date, or from today when that has passed (the rule: module docstring).
        reason: an :class:`ExtensionReason` value.
        note: free text; required when the reason is "other".
        request_token: the form's one-time token; a second submit returns the first extension.
        bill_version: the bill's ``updated_at`` (ISO 8601) the agent saw.
        now: the moment of the request (aware; default now); its business date is "today".

    Raises:
        RuleViolation: no permission, the bill is closed or changed, days or reason
            out of range, a debit is in flight, or a request for the bill is already waiting.
    """
    if not requested_by.has_perm("repayments.request_extension"):
        raise RuleViolation("__all__", _("You may not request extensions."))
    existing = Extension.objects.filter(request_token=request_token).first()
    if existing is not None:
        return existing  # the same form submitted twice
    if reason not in ExtensionReason.values:
        raise RuleViolation("reason", _("Unknown reason “%(reason)s”.") % {"reason": reason})
    if reason == ExtensionReason.OTHER and not note.strip():
        raise RuleViolation("note", _("Say why in the note when the reason is “Other”."))
    _check_days(days)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            bill = _locked_bill(bill_id, bill_version)
            _check_extendable(bill)
            _check_no_debit_in_flight(bill)
            if Extension.objects.filter(bill=bill, status=ApprovalStatus.PENDING).exists():
                raise RuleViolation(
                    "__all__", _("An extension of %(bill)s is already awaiting approval.") % {"bill": bill.bill_no}
                )
            within, why_not = extension_within_policy(bill=bill, days=days, as_of=timezone.localdate(now))
            preview = extension_preview(bill=bill, days=days, reason=reason, now=now)
            extension = Extension.objects.create(
                bill=bill,
                customer_id=bill.customer_id,
                days=days,
                reason=reason,
                note=note.strip(),
                requested_by=requested_by,
                request_token=request_token,
                # The due date the request was made against: approval refuses if it moved.
                due_date_before=bill.due_date,
            )
            audit_record(
                actor=requested_by,
                action="extension.request",
                target=extension,
                customer=bill.customer,
                reason=note.strip() or reason,
                after={
                    "bill": bill.bill_no,
                    "days": days,
                    "reason": reason,
                    "needs_approval": why_not,
                    "preview_due_date": preview.due_date_after,
                },
            )
            if within:
                _extension_apply(extension, bill, decided_by=None, now=now)
            return extension
    except IntegrityError:
        # Another agent's request for the same bill (or this same form) committed first.
        existing = Extension.objects.filter(request_token=request_token).first()
        if existing is not None:
            return existing
        raise RuleViolation(
            "__all__", _("Another extension of this bill was just requested. Reload the page.")
        ) from None


def extension_decide(
    *, extension_id: int, decided_by: User, approve: bool, note: str = "", now: dt.datetime | None = None
) -> Extension:
    """Approve (and apply) or reject a pending extension.

    An approval is recomputed for the day it is made: the days count from that
    day (:func:`extension_preview` with the same ``now`` shows the result).

    Args:
        extension_id: the pending extension.
        decided_by: the supervisor (needs ``repayments.approve_extension``; never the requester).
        approve: ``True`` applies it to the bill at once; ``False`` rejects it.
        note: the decision's note, kept on the extension and in the audit trail.
        now: the moment of the decision (aware; default now); its business date is "today".

    Raises:
        RuleViolation: no permission, the decider is the requester, it is no longer
            pending; on approval: the bill has closed or owes nothing, its due date
            moved since the request, or a debit is at the bank.
    """
    now = now or timezone.now()
    if not decided_by.has_perm("repayments.approve_extension"):
        raise RuleViolation("__all__", _("You may not approve extensions."))
    with transaction.atomic():
        extension = Extension.objects.select_for_update().filter(pk=extension_id).first()
        if extension is None:
            raise RuleViolation("__all__", _("No such extension request; it may have been withdrawn."))
        if extension.requested_by_id == decided_by.pk:
            raise RuleViolation("__all__", _("You cannot decide on your own request; another supervisor must."))
        if extension.status != ApprovalStatus.PENDING:
            raise RuleViolation(
                "__all__",
                _("This extension is already decided: %(status)s.") % {"status": extension.get_status_display()},
            )
        bill = _locked_bill(extension.bill_id, None)
        if approve and (bill.status not in OPEN_BILL_STATUSES or bill.outstanding <= ZERO):
            raise RuleViolation(
                "__all__",
                _("Bill %(bill)s is %(status)s now: reject instead.")
                % {"bill": bill.bill_no, "status": bill.get_status_display()},
            )
        if approve and extension.due_date_before is not None and bill.due_date != extension.due_date_before:
            # The request was made against another due date (a relief batch or a
            # correction moved it): what the requester asked for no longer holds.
            raise RuleViolation(
                "__all__",
                _(
                    "The due date of %(bill)s moved from %(requested)s to %(now)s since this request: "
                    "reject it and ask again if the customer still needs time."
                )
                % {"bill": bill.bill_no, "requested": extension.due_date_before, "now": bill.due_date},
            )
        extension.decision_note = note.strip()
        if approve:
            _check_no_debit_in_flight(bill)
            _check_shift(bill, days=extension.days, today=timezone.localdate(now))  # later, the bill is later
            _extension_apply(extension, bill, decided_by=decided_by, now=now)
        else:
            extension.status, extension.decided_by, extension.decided_at = (
                ApprovalStatus.REJECTED,
                decided_by,
                now,
            )
            extension.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
        audit_record(
            actor=decided_by,
            action="extension.approve" if approve else "extension.reject",
            target=extension,
            customer=bill.customer,
            reason=note.strip(),
            after={"bill": bill.bill_no, "days": extension.days, "due_date": bill.due_date},
        )
    return extension


def _extension_apply(extension: Extension, bill: Bill, *, decided_by: User | None, now: dt.datetime) -> None:
    """Apply the extension rule to the (locked) bill at ``now`` (``_extension_effect``), record it and audit."""
    before = bill.due_date
    preview, fields = _extension_effect(bill, days=extension.days, reason=extension.reason, now=now)
    waived = preview.late_fee_waived
    bill.save(update_fields=fields)
    extension.status = ApprovalStatus.APPROVED
    extension.decided_by = decided_by
    extension.by_policy = decided_by is None
    extension.decided_at = now
    extension.due_date_before, extension.due_date_after = before, bill.due_date
    extension.late_fee_waived = waived
    extension.save(
        update_fields=[
            "status",
            "decided_by",
            "by_policy",
            "decided_at",
            "decision_note",
            "due_date_before",
            "due_date_after",
            "late_fee_waived",
            "updated_at",
        ]
    )
    BureauSuppression.objects.create(
        bill=bill,
        extension=extension,
        suppress_until=preview.suppress_until,
        reason=extension.reason,
    )
    audit_record(
        actor=decided_by,
        action="extension.apply",
        target=bill,
        customer=bill.customer,
        before={"due_date": before},
        after={
            "due_date": bill.due_date,
            "shift_days": preview.shift_days,
            "status": bill.status,
            "dpd": bill.dpd,
            "next_debit_at": bill.retry_at,
            "suppress_until": preview.suppress_until,
            "late_fee_waived": waived,
        },
    )


def waiver_request(
    *,
    bill_id: int,
    requested_by: User,
    amount: Decimal | str,
    reason: str,
    note: str = "",
    request_token: uuid.UUID,
    bill_version: str | None = None,
) -> Waiver:
    """Ask to waive ``amount`` yuan (the bill's currency) of the bill's unwaived late fee.

    While the waivers an agent has granted on the bill, this one included, stay
    within ``settings.WAIVER_AGENT_LIMIT`` (in the bill's currency) it is applied at
    once; beyond, it waits for a supervisor who is not the requester.

    Args:
        bill_id: the bill.
        requested_by: the agent (needs ``repayments.request_waiver``).
        amount: the amount to waive, in the bill's currency (``Decimal`` or decimal string, never float).
        reason: an :class:`ExtensionReason` value; "other" needs a note.
        note: free text.
        request_token: the form's one-time token; a second submit returns the first waiver.
        bill_version: the bill's ``updated_at`` (ISO 8601) the agent saw.

    Raises:
        RuleViolation: no permission, amount not positive or above the unwaived late
            fee, the bill changed or is closed, a debit is in flight, or a waiver is already waiting.
    """
    if not requested_by.has_perm("repayments.request_waiver"):
        raise RuleViolation("__all__", _("You may not request waivers."))
    existing = Waiver.objects.filter(request_token=request_token).first()
    if existing is not None:
        return existing
    try:
        amount = to_money(amount)
    except (ValueError, TypeError, ArithmeticError):
        raise RuleViolation("amount", _("“%(amount)s” is not an amount.") % {"amount": amount}) from None
    if amount <= ZERO:
        raise RuleViolation("amount", _("The amount must be more than zero; got %(amount)s.") % {"amount": amount})
    if reason not in ExtensionReason.values:
        raise RuleViolation("reason", _("Unknown reason “%(reason)s”.") % {"reason": reason})
    if reason == ExtensionReason.OTHER and not note.strip():
        raise RuleViolation("note", _("Say why in the note when the reason is “Other”."))
    try:
        with transaction.atomic():
            bill = _locked_bill(bill_id, bill_version)
            _check_waivable(bill, amount)
            _check_no_debit_in_flight(bill)
            if Waiver.objects.filter(bill=bill, status=ApprovalStatus.PENDING).exists():
                raise RuleViolation(
                    "__all__", _("A waiver on %(bill)s is already awaiting approval.") % {"bill": bill.bill_no}
                )
            waiver = Waiver.objects.create(
                bill=bill,
                customer_id=bill.customer_id,
                amount=amount,
                reason=reason,
                note=note.strip(),
                requested_by=requested_by,
                request_token=request_token,
            )
            audit_record(
                actor=requested_by,
                action="waiver.request",
                target=waiver,
                customer=bill.customer,
                reason=note.strip() or reason,
                after={"bill": bill.bill_no, "amount": amount},
            )
            # The agent limit is per bill, summed over the waivers granted within it, so
            # a large fee cannot be waived without a second person in small steps.
            granted = Waiver.objects.filter(bill=bill, status=ApprovalStatus.APPROVED, by_policy=True).aggregate(
                total=Coalesce(Sum("amount"), ZERO)
            )["total"]
            if granted + amount <= settings.WAIVER_AGENT_LIMIT:
                _waiver_apply(waiver, bill, decided_by=None)
            return waiver
    except IntegrityError:
        existing = Waiver.objects.filter(request_token=request_token).first()
        if existing is not None:
            return existing
        raise RuleViolation("__all__", _("Another waiver on this bill was just requested. Reload the page.")) from None


def waiver_decide(*, waiver_id: int, decided_by: User, approve: bool, note: str = "") -> Waiver:
    """Approve (and apply) or reject a pending waiver.

    Args:
        waiver_id: the pending waiver.
        decided_by: the supervisor (needs ``repayments.approve_waiver``; never the requester).
        approve: ``True`` applies it to the bill at once; ``False`` rejects it.
        note: the decision's note.

    Raises:
        RuleViolation: no permission, the decider is the requester, no longer pending,
            or the late fee left is now smaller than the amount.
    """
    if not decided_by.has_perm("repayments.approve_waiver"):
        raise RuleViolation("__all__", _("You may not approve waivers."))
    with transaction.atomic():
        waiver = Waiver.objects.select_for_update().filter(pk=waiver_id).first()
        if waiver is None:
            raise RuleViolation("__all__", _("No such waiver request; it may have been withdrawn."))
        if waiver.requested_by_id == decided_by.pk:
            raise RuleViolation("__all__", _("You cannot decide on your own request; another supervisor must."))
        if waiver.status != ApprovalStatus.PENDING:
            raise RuleViolation(
                "__all__", _("This waiver is already decided: %(status)s.") % {"status": waiver.get_status_display()}
            )
        bill = _locked_bill(waiver.bill_id, None)
        waiver.decision_note = note.strip()
        if approve:
            _check_waivable(bill, waiver.amount)
            _check_no_debit_in_flight(bill)
            _waiver_apply(waiver, bill, decided_by=decided_by)
        else:
            waiver.status, waiver.decided_by, waiver.decided_at = ApprovalStatus.REJECTED, decided_by, timezone.now()
            waiver.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
        audit_record(
            actor=decided_by,
            action="waiver.approve" if approve else "waiver.reject",
            target=waiver,
            customer=bill.customer,
            reason=note.strip(),
            after={"bill": bill.bill_no, "amount": waiver.amount},
        )
    return waiver


def _check_no_debit_in_flight(bill: Bill) -> None:
    """Refuse while a debit is at the bank: its amount was fixed from the bill as it was."""
    if RepaymentAttempt.objects.filter(bill=bill, status__in=IN_FLIGHT_ATTEMPT_STATUSES).exists():
        raise RuleViolation(
            "__all__",
            _("A debit of %(bill)s is at the bank right now. Wait for its result (a minute or two), then try again.")
            % {"bill": bill.bill_no},
        )


def _check_waivable(bill: Bill, amount: Decimal) -> None:
    left = bill.late_fee - bill.late_fee_waived
    if bill.status not in OPEN_BILL_STATUSES:
        raise RuleViolation(
            "__all__",
            _("Bill %(bill)s is %(status)s: nothing to waive.")
            % {"bill": bill.bill_no, "status": bill.get_status_display()},
        )
    if amount > left:
        currency = bill.credit_line.currency
        raise RuleViolation(
            "amount",
            _("%(amount)s is more than the late fee left to waive (%(left)s).")
            % {"amount": format_money(amount, currency), "left": format_money(left, currency)},
        )


def _waiver_apply(waiver: Waiver, bill: Bill, *, decided_by: User | None) -> None:
    now = timezone.now()
    before = bill.late_fee_waived
    bill.late_fee_waived += waiver.amount
    fields = ["late_fee_waived", "updated_at"]
    if bill.outstanding == ZERO:  # the fee was all that was left
        fields += bill_close_paid(bill, now=now)
    bill.save(update_fields=fields)
    waiver.status, waiver.decided_by, waiver.decided_at = ApprovalStatus.APPROVED, decided_by, now
    waiver.by_policy = decided_by is None
    waiver.save(update_fields=["status", "decided_by", "decided_at", "by_policy", "decision_note", "updated_at"])
    audit_record(
        actor=decided_by,
        action="waiver.apply",
        target=bill,
        customer=bill.customer,
        before={"late_fee_waived": before},
        after={"late_fee_waived": bill.late_fee_waived, "status": bill.status},
    )
