"""The supervisors' approvals inbox."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from repayments.forms import DecisionForm
from repayments.selectors.customers import approvals_pending, user_can_approve
from repayments.services.errors import RuleViolation
from repayments.services.extensions import extension_decide, waiver_decide


@login_required
def approvals(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Extensions, waivers and relief batches waiting for a supervisor; one's own requests listed apart."""
    if not user_can_approve(request.user):
        raise PermissionDenied
    return render(request, "console/approvals.html", {"approvals": approvals_pending(user=request.user)})


@login_required
@require_POST
def decide(request: AuthenticatedHttpRequest, kind: str, pk: int) -> HttpResponse:
    """Approve or reject one extension or waiver (never one's own)."""
    permission = {"extension": "repayments.approve_extension", "waiver": "repayments.approve_waiver"}.get(kind)
    if permission is None or not request.user.has_perm(permission):
        raise PermissionDenied
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject."))
        return redirect("console:approvals")
    approve = form.cleaned_data["decision"] == "approve"
    note = form.cleaned_data["note"]
    try:
        if kind == "extension":
            extension_decide(extension_id=pk, decided_by=request.user, approve=approve, note=note)
        else:
            waiver_decide(waiver_id=pk, decided_by=request.user, approve=approve, note=note)
        messages.success(request, _("Approved and applied.") if approve else _("Rejected."))
    except RuleViolation as exc:
        messages.error(request, str(exc))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "console:approvals")
