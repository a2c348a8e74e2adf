"""The customer view and the actions an agent takes on it."""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from baitiao.masking import mask_email, mask_name, mask_national_id, mask_phone
from baitiao.money import format_money
from baitiao.pii import pii_decrypt, pii_encrypt
from repayments.forms import (
    BindingConfirmForm,
    BindingStartForm,
    ExtensionForm,
    ExtensionPreviewForm,
    NoteForm,
    RevealForm,
    WaiverForm,
)
from repayments.gateway.client import BindChallenge
from repayments.models import IN_FLIGHT_ATTEMPT_STATUSES, OPEN_BILL_STATUSES, ApprovalStatus, Bill, Customer
from repayments.selectors.customers import customer_detail
from repayments.services.bindings import card_binding_confirm, card_binding_start
from repayments.services.casework import bill_retry_manual, customer_reveal, note_add
from repayments.services.errors import RuleViolation
from repayments.services.extensions import (
    ExtensionPreview,
    extension_preview,
    extension_request,
    extension_within_policy,
    waiver_request,
)

CHALLENGE_SESSION_KEY = "binding_challenge"


def _client_ip(request: AuthenticatedHttpRequest) -> str | None:
    """The client's address as django-axes reads it (behind PROXY_COUNT proxies)."""
    return get_client_ip_address(request)


def _detail_context(request: AuthenticatedHttpRequest, customer_no: str) -> dict:
    user = request.user
    with_audit = user.has_perm("accounts.view_audit_trail") or user.has_perm("repayments.work_cases")
    try:
        context = customer_detail(customer_no, with_audit=with_audit)
    except Customer.DoesNotExist:
        raise Http404(_("No customer %(no)s.") % {"no": customer_no}) from None
    customer = context["customer"]
    active = next((b for b in context["bindings"] if b.status != "replaced"), None)
    context["masked_fields"] = [
        ("name", _("Name"), mask_name(customer.name)),
        ("phone", _("Mobile phone"), mask_phone(customer.phone)),
        ("national_id", _("National ID"), mask_national_id(customer.national_id)),
        ("email", _("Email"), mask_email(customer.email)),
        ("reserved_phone", _("Reserved phone (card)"), mask_phone(active.reserved_phone) if active else ""),
    ]
    now = timezone.now()
    # While a debit is in flight or due, the bills panel refreshes itself (htmx) to show the result.
    context["polling"] = any(a.status in IN_FLIGHT_ATTEMPT_STATUSES for a in context["attempts"][:5]) or any(
        b.retry_at is not None and b.retry_at <= now and b.status in OPEN_BILL_STATUSES for b in context["bills"]
    )
    context["note_form"] = NoteForm()
    context["revealed"] = {}
    return context


@login_required
@permission_required("repayments.view_customer", raise_exception=True)
def customer_view(request: AuthenticatedHttpRequest, customer_no: str) -> HttpResponse:
    """Masked identity and contact, credit line, bills, attempts, messages, extensions, notes, audit."""
    return render(request, "console/customer.html", _detail_context(request, customer_no))


@login_required
@permission_required("repayments.reveal_personal_data", raise_exception=True)
@require_POST
def reveal(request: AuthenticatedHttpRequest, customer_no: str) -> HttpResponse:
    """Show one masked field in clear, once, after a reason; audited. Never stored in the session.

    The audit event commits with the page that shows the value: a page that fails
    to render showed nothing, and leaves no record of a reveal.
    """
    customer = get_object_or_404(Customer, customer_no=customer_no)
    form = RevealForm(request.POST)
    value, error = None, ""
    field = request.POST.get("field", "")
    with transaction.atomic():
        if form.is_valid():
            try:
                value = customer_reveal(
                    customer=customer,
                    field=form.cleaned_data["field"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    ip_address=_client_ip(request),
                )
            except RuleViolation as exc:
                error = str(exc)
        elif "field" in form.errors:
            error = _("That field cannot be revealed.")
        else:
            error = _("Give a reason of at least five characters to reveal this field.")
        if request.htmx:
            response = render(
                request,
                "console/_revealed.html",
                {"field": field, "value": value, "error": error, "customer": customer},
            )
        else:
            context = _detail_context(request, customer_no)
            if value is not None:
                context["revealed"] = {field: value or _("(empty)")}
            else:
                messages.error(request, error)
            response = render(request, "console/customer.html", context)
    response["Cache-Control"] = "no-store"  # the clear value must not stay in a browser cache
    return response


@login_required
@permission_required("repayments.work_cases", raise_exception=True)
@require_POST
def note_create(request: AuthenticatedHttpRequest, customer_no: str) -> HttpResponse:
    customer = get_object_or_404(Customer, customer_no=customer_no)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note_add(customer=customer, author=request.user, body=form.cleaned_data["body"])
            messages.success(request, _("Note added."))
        except RuleViolation as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("The note is empty or too long."))
    return redirect("console:customer-detail", customer_no=customer_no)


@sensitive_post_parameters("card_number", "reserved_phone")
@login_required
@permission_required("repayments.repair_card_binding", raise_exception=True)
def binding_repair(request: AuthenticatedHttpRequest, customer_no: str) -> HttpResponse:
    """Step 1: the new card and reserved phone; the bank texts a code to the phone."""
    customer = get_object_or_404(Customer.objects.select_related("credit_line"), customer_no=customer_no)
    form = BindingStartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            challenge = card_binding_start(
                customer=customer,
                card_number=form.cleaned_data["card_number"],
                reserved_phone=form.cleaned_data["reserved_phone"],
                actor=request.user,
            )
        except RuleViolation as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            # Only the bank's request id, BIN and last four, and the phone encrypted; never the card number.
            request.session[CHALLENGE_SESSION_KEY] = {
                "customer_no": customer_no,
                "bind_request_id": challenge.bind_request_id,
                "bin": challenge.bin,
                "last4": challenge.last4,
                "bank_code": challenge.bank_code,
                "bank_name": challenge.bank_name,
                "card_type": challenge.card_type,
                "reserved_phone": pii_encrypt(form.cleaned_data["reserved_phone"]),
            }
            return redirect("console:binding-confirm", customer_no=customer_no)
    if form.is_bound:
        data = request.POST.copy()  # form.data: a bound form here was bound to request.POST
        data["card_number"] = ""  # never echo a card number back into the page
        form.data = data
    return render(request, "console/binding_repair.html", {"customer": customer, "form": form, "step": 1})


@sensitive_post_parameters("sms_code")
@login_required
@permission_required("repayments.repair_card_binding", raise_exception=True)
def binding_confirm(request: AuthenticatedHttpRequest, customer_no: str) -> HttpResponse:
    """Step 2: the SMS code the customer reads out; the old binding is replaced and bills retried."""
    customer = get_object_or_404(Customer.objects.select_related("credit_line"), customer_no=customer_no)
    pending = request.session.get(CHALLENGE_SESSION_KEY)
    if not pending or pending.get("customer_no") != customer_no:
        messages.error(request, _("Start the binding again: enter the new card first."))
        return redirect("console:binding-repair", customer_no=customer_no)
    form = BindingConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        challenge = BindChallenge(
            bind_request_id=pending["bind_request_id"],
            bin=pending["bin"],
            last4=pending["last4"],
            bank_code=pending["bank_code"],
            bank_name=pending["bank_name"],
            card_type=pending["card_type"],
        )
        try:
            binding = card_binding_confirm(
                customer=customer,
                challenge=challenge,
                sms_code=form.cleaned_data["sms_code"],
                reserved_phone=pii_decrypt(pending["reserved_phone"]),
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except RuleViolation as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            del request.session[CHALLENGE_SESSION_KEY]
            messages.success(
                request,
                _("Card %(bank)s ****%(last4)s is bound. The customer's failed and overdue bills are being retried.")
                % {"bank": binding.bank_name, "last4": binding.last4},
            )
            return redirect("console:customer-detail", customer_no=customer_no)
    return render(
        request,
        "console/binding_repair.html",
        {"customer": customer, "form": form, "step": 2, "pending": pending},
    )


def _bill_for(customer_no: str, bill_no: str) -> Bill:
    return get_object_or_404(
        Bill.objects.select_related("customer", "credit_line"), bill_no=bill_no, customer__customer_no=customer_no
    )


def _bill_request(request: AuthenticatedHttpRequest, bill: Bill, form, submit, done) -> HttpResponse | None:
    """The shared half of the extension and waiver forms: validate, call the service, report.

    ``submit(data)`` calls the service with the form's data (the one-time token and
    the bill version included); ``done(result)`` gives the message for an approved
    or a pending request. Returns the redirect after success, or ``None`` to render
    the form again with the service's refusal on its field.
    """
    if request.method != "POST" or not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        result = submit({**data, "bill_version": data["bill_version"] or None})
    except RuleViolation as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return None
    approved = result.status == ApprovalStatus.APPROVED
    messages.add_message(request, messages.SUCCESS if approved else messages.INFO, done(result, approved))
    return redirect("console:customer-detail", customer_no=bill.customer.customer_no)


def _extension_preview_for(bill: Bill, data) -> tuple[ExtensionPreview | None, str]:
    """The preview of the days and reason in ``data`` (a form's POST), or why there is none."""
    form = ExtensionPreviewForm(data)
    if not form.is_valid():
        return None, " ".join(str(error) for error in form.errors.get("days", [])) or _(
            "Enter the days to see the result."
        )
    try:
        return extension_preview(bill=bill, days=form.cleaned_data["days"], reason=form.cleaned_data["reason"]), ""
    except RuleViolation as exc:
        return None, str(exc)


@login_required
@permission_required("repayments.request_extension", raise_exception=True)
def extension_create(request: AuthenticatedHttpRequest, customer_no: str, bill_no: str) -> HttpResponse:
    """Request an extension; within policy it applies at once, otherwise it awaits a supervisor.

    A POST with ``preview`` (the "Preview" button, or htmx on each change of the
    days or the reason) shows what the extension would do and submits nothing.
    """
    bill = _bill_for(customer_no, bill_no)
    previewing = request.method == "POST" and "preview" in request.POST
    preview, preview_error = (None, "")
    if request.method == "POST":
        preview, preview_error = _extension_preview_for(bill, request.POST)
    if previewing and request.htmx:
        return render(
            request,
            "console/_extension_preview.html",
            {"bill": bill, "preview": preview, "preview_error": preview_error},
        )
    if previewing:
        # The values as typed, not validated: a preview is no submission (no errors shown).
        keep = ("days", "reason", "note", "request_token", "bill_version")
        form = ExtensionForm(initial={key: request.POST.get(key, "") for key in keep})
    else:
        form = ExtensionForm(request.POST or None, initial={"bill_version": bill.updated_at.isoformat()})
    response = None
    if not previewing:
        response = _bill_request(
            request,
            bill,
            form,
            submit=lambda data: extension_request(
                bill_id=bill.id,
                requested_by=request.user,
                days=data["days"],
                reason=data["reason"],
                note=data["note"],
                request_token=data["request_token"],
                bill_version=data["bill_version"],
            ),
            done=lambda extension, approved: (
                _("Extension granted: %(bill)s is now due %(date)s.")
                % {"bill": bill_no, "date": extension.due_date_after}
                if approved
                else _("Extension of %(bill)s sent for a supervisor's approval.") % {"bill": bill_no}
            ),
        )
    if response is not None:
        return response
    days = request.POST.get("days") if request.method == "POST" else None
    policy_note = ""
    if days and str(days).isdigit():
        within, why_not = extension_within_policy(bill=bill, days=int(days))
        policy_note = "" if within else why_not
    return render(
        request,
        "console/bill_action.html",
        {
            "bill": bill,
            "form": form,
            "action": "extension",
            "policy": policy_note,
            "policy_rules": settings.EXTENSION_POLICY,
            "preview": preview,
            "preview_error": preview_error if request.method == "POST" else "",
        },
    )


@login_required
@permission_required("repayments.request_waiver", raise_exception=True)
def waiver_create(request: AuthenticatedHttpRequest, customer_no: str, bill_no: str) -> HttpResponse:
    """Request a late-fee waiver; above the agent limit it awaits a supervisor."""
    bill = _bill_for(customer_no, bill_no)
    form = WaiverForm(request.POST or None, initial={"bill_version": bill.updated_at.isoformat()})
    response = _bill_request(
        request,
        bill,
        form,
        submit=lambda data: waiver_request(
            bill_id=bill.id,
            requested_by=request.user,
            amount=data["amount"],
            reason=data["reason"],
            note=data["note"],
            request_token=data["request_token"],
            bill_version=data["bill_version"],
        ),
        done=lambda waiver, approved: (
            _("Late fee waived on %(bill)s.") % {"bill": bill_no}
            if approved
            else _("Waiver on %(bill)s sent for a supervisor's approval.") % {"bill": bill_no}
        ),
    )
    if response is not None:
        return response
    limit = format_money(settings.WAIVER_AGENT_LIMIT, bill.credit_line.currency)
    return render(
        request, "console/bill_action.html", {"bill": bill, "form": form, "action": "waiver", "waiver_limit": limit}
    )


@login_required
@permission_required("repayments.retry_debit", raise_exception=True)
@require_POST
def retry(request: AuthenticatedHttpRequest, customer_no: str, bill_no: str) -> HttpResponse:
    """Debit the bill again now (asking twice debits once)."""
    bill = _bill_for(customer_no, bill_no)
    try:
        bill_retry_manual(bill_id=bill.id, actor=request.user, bill_version=request.POST.get("bill_version") or None)
        messages.success(request, _("Debit of %(bill)s queued; the result appears below.") % {"bill": bill_no})
    except RuleViolation as exc:
        messages.error(request, str(exc))
    return redirect("console:customer-detail", customer_no=customer_no)
