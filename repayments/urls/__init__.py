"""The console: worklist, customers, approvals, incidents, bureau ledger, dashboard (namespace "console")."""

from django.urls import path

from repayments.views import approvals, bills, customers, dashboard, incidents, overview, worklist

app_name = "console"

customer = "console/customers/<str:customer_no>/"
bill = customer + "bills/<str:bill_no>/"

urlpatterns = [
    path("", overview.home, name="home"),
    path("console/", worklist.worklist, name="worklist"),
    path("console/search/", worklist.search, name="search"),
    path("console/bills/", bills.bill_list, name="bills"),
    path("console/bills/<str:bill_no>/claim/", worklist.claim, name="bill-claim"),
    path(customer, customers.customer_view, name="customer-detail"),
    path(customer + "reveal/", customers.reveal, name="customer-reveal"),
    path(customer + "notes/", customers.note_create, name="note-add"),
    path(customer + "binding/", customers.binding_repair, name="binding-repair"),
    path(customer + "binding/confirm/", customers.binding_confirm, name="binding-confirm"),
    path(bill + "extension/", customers.extension_create, name="extension-request"),
    path(bill + "waiver/", customers.waiver_create, name="waiver-request"),
    path(bill + "retry/", customers.retry, name="bill-retry"),
    path("console/approvals/", approvals.approvals, name="approvals"),
    path("console/approvals/<str:kind>/<int:pk>/", approvals.decide, name="approval-decide"),
    path("console/incidents/", incidents.incident_list, name="incidents"),
    path("console/incidents/declare/", incidents.incident_declare_view, name="incident-declare"),
    path("console/incidents/<int:pk>/", incidents.incident_detail, name="incident-detail"),
    path("console/incidents/<int:pk>/resolve/", incidents.incident_resolve_view, name="incident-resolve"),
    path("console/incidents/<int:pk>/withdraw/", incidents.incident_withdraw_view, name="incident-withdraw"),
    path("console/incidents/<int:pk>/affected.csv", incidents.incident_affected_csv, name="incident-affected-export"),
    path("console/incidents/<int:pk>/relief/", incidents.relief_request_view, name="relief-request"),
    path("console/incidents/relief/<int:batch_id>/approve/", incidents.relief_approve_view, name="relief-approve"),
    path("console/incidents/relief/<int:batch_id>/reverse/", incidents.relief_reverse_view, name="relief-reverse"),
    path("console/bureau-ledger/", incidents.bureau_ledger, name="bureau-ledger"),
    path("console/bureau-ledger/export.csv", incidents.bureau_ledger_export, name="bureau-ledger-export"),
    path("console/dashboard/", dashboard.dashboard, name="dashboard"),
    path("console/dashboard/export.csv", dashboard.dashboard_export, name="dashboard-export"),
    path("console/dashboard/refresh/", dashboard.dashboard_refresh_now, name="dashboard-refresh"),
]
