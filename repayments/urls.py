from django.urls import path

from repayments import api
from repayments.views import approvals, customers, overview, worklist

app_name = "console"

customer = "console/customers/<str:customer_no>/"
bill = customer + "bills/<str:bill_no>/"

urlpatterns = [
    path("", overview.home, name="home"),
    path("console/", worklist.worklist, name="worklist"),
    path("console/search/", worklist.search, name="search"),
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
    path("console/audit/", approvals.audit, name="audit"),
    path("console/audit/export.csv", approvals.audit_export, name="audit-export"),
    path("api/v1/gateway/callbacks/", api.gateway_callback, name="gateway-callback"),
]
