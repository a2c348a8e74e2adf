"""Reads of the accounts app: the audit trail as the auditors' view filters it."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEvent


def audit_events_filtered(params) -> tuple[QuerySet[AuditEvent], list[str]]:
    """The audit trail narrowed by the auditor's filters, newest first, and the refused inputs.

    Args:
        params: a mapping (``request.GET``) with any of ``actor`` (username at the
            time), ``action`` (prefix, e.g. ``customer.reveal``), ``customer``
            (customer_no), ``since`` and ``until`` (business dates YYYY-MM-DD, inclusive),
            ``system`` ("1" to include the jobs' own events, which are left out by default:
            they are many and name no staff member).

    Returns:
        The queryset and a list of messages naming each value that was not applied.
    """
    events = AuditEvent.objects.all()
    if params.get("system") != "1":
        events = events.filter(actor__isnull=False)
    if params.get("actor"):
        events = events.filter(actor_label=params["actor"].strip())
    if params.get("action"):
        events = events.filter(action__startswith=params["action"].strip())
    if params.get("customer"):
        events = events.filter(customer_no=params["customer"].strip())
    errors: list[str] = []
    labels = {"since": _("From"), "until": _("To")}
    for name, lookup in (("since", "occurred_at__gte"), ("until", "occurred_at__lt")):
        raw = params.get(name, "").strip()
        if not raw:
            continue
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            errors.append(_("%(name)s: “%(raw)s” is not a date (YYYY-MM-DD).") % {"name": labels[name], "raw": raw})
            continue
        if name == "until":
            if day == dt.date.max:
                continue  # "until the end of time" filters nothing
            day += dt.timedelta(days=1)  # inclusive
        events = events.filter(**{lookup: timezone.make_aware(dt.datetime.combine(day, dt.time(0, 0)))})
    since, until = params.get("since", "").strip(), params.get("until", "").strip()
    if since and until and not errors and since > until:
        errors.append(
            _("“From” %(since)s is after “To” %(until)s: nothing can match.") % {"since": since, "until": until}
        )
    return events.order_by("-occurred_at", "-id"), errors
