"""Console views: thin; they read through selectors and write through services."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from accounts.http import AuthenticatedHttpRequest
from repayments.selectors.receivables import portfolio_summary


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Landing page: customers, open and overdue bills, balance per delinquency bucket."""
    return render(request, "console/home.html", {"summary": portfolio_summary()})
