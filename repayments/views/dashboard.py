"""Receivables dashboard (issue #7): rollup reads, per-section CSV, "refresh now"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from baitiao.csvfiles import csv_lines, csv_response
from repayments.selectors.dashboard import (
    SECTIONS,
    DashboardFilters,
    Section,
    dashboard_sections,
    filter_choices,
    last_refresh,
    parse_dashboard_filters,
)
from repayments.services.dashboard import dashboard_export_record, dashboard_refresh_request

# "Refresh now" is for supervisors and admins: the dashboard roles that also run incidents.
REFRESH_PERMISSION = "repayments.refresh_dashboard"
# Which of the page's filters a drill-down list understands (the same names: repayments/filters.py).
# Failures are counted by the month they were requested, not the bill's period: their links keep
# bank, tier and currency and leave the months out.
_CARRIED = {
    "month": ("month_from", "month_to", "bank", "risk_tier", "currency"),
    "other": ("bank", "risk_tier", "currency"),
}


def _drill_links(section: Section, filters: DashboardFilters) -> list[str]:
    """Per row of ``section``, the URL of the list of its bills: the row's keys over the page's filters."""
    if not section.drill_to:
        return []
    carried = _CARRIED["month" if section.key in ("buckets", "collection", "overdue") else "other"]
    page = {name: value for name, value in filters.as_params().items() if name in carried}
    base = reverse(section.drill_to)
    return [f"{base}?{urlencode({**page, **keys}, doseq=True)}" if keys else "" for keys in section.drill]


@login_required
@permission_required("repayments.view_dashboard", raise_exception=True)
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every section (chart + table + CSV link) for the filters in the query string.

    A refused filter value is shown and no figures are: figures for a wider
    selection than the one asked for would be read as the answer.
    """
    choices = filter_choices()
    filters, errors = parse_dashboard_filters(request.GET, choices)
    sections = [] if errors else dashboard_sections(filters)
    if request.user.has_perm("repayments.view_bill"):
        for section in sections:
            section.links = _drill_links(section, filters)
    context = {
        "sections": sections,
        "charts": {section.key: section.chart for section in sections},
        "filters": filters,
        "filter_query": urlencode(filters.as_params()),
        "choices": choices,
        "errors": errors,
        "refresh": last_refresh(),
        "can_refresh": request.user.has_perm(REFRESH_PERMISSION),
    }
    return render(request, "console/dashboard.html", context)


@login_required
@permission_required("repayments.view_dashboard", raise_exception=True)
def dashboard_export(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """One section's table as CSV (``?section=…`` plus the page's filters); formula-safe, audited."""
    section_key = request.GET.get("section", "")
    if section_key not in SECTIONS:
        message = _("Section: “%(value)s” is not one of %(choices)s.") % {
            "value": section_key,
            "choices": ", ".join(SECTIONS),
        }
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    filters, errors = parse_dashboard_filters(request.GET, filter_choices())
    if errors:  # never widen an export because a filter was mistyped
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain; charset=utf-8")
    section = SECTIONS[section_key](filters)
    dashboard_export_record(
        actor=request.user, section=section_key, filters=filters.as_params(), rows=len(section.rows)
    )
    return csv_response(f"dashboard-{section_key}.csv", csv_lines(section.columns, section.rows))


@login_required
@require_POST
def dashboard_refresh_now(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Queue a rebuild of the rollups now (supervisors and admins); audited."""
    if not (request.user.has_perm("repayments.view_dashboard") and request.user.has_perm(REFRESH_PERMISSION)):
        raise PermissionDenied
    dashboard_refresh_request(actor=request.user)
    messages.success(request, _("Refresh queued: the figures update in a minute or two; reload the page."))
    return redirect("console:dashboard")
