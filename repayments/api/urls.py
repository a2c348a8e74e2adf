"""``/api/v1/`` routes (namespace ``api``)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from repayments.api import views
from repayments.api.callbacks import gateway_callback

app_name = "api"

router = SimpleRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("credit-lines", views.CreditLineViewSet, basename="credit-line")
router.register("bills", views.BillViewSet, basename="bill")
router.register("attempts", views.AttemptViewSet, basename="attempt")
router.register("reminders", views.ReminderViewSet, basename="reminder")
router.register("extensions", views.ExtensionViewSet, basename="extension")
router.register("waivers", views.WaiverViewSet, basename="waiver")
router.register("binding-repairs", views.BindingRepairViewSet, basename="binding-repair")
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("relief-batches", views.ReliefBatchViewSet, basename="relief-batch")

urlpatterns = [
    path("gateway/callbacks/", gateway_callback, name="gateway-callback"),
    *router.urls,
    # Anything else under /api/v1/ is a JSON 404 in the standard error shape, not the HTML page.
    re_path(r"^.*$", views.not_found),
]
