"""Top-level URL configuration: each app's routes, included by dotted path (``baitiao`` imports no app code)."""

from django.contrib import admin
from django.urls import include, path

from baitiao import probes

admin.site.site_header = "Baitiao Ops back office"
admin.site.site_title = "Baitiao Ops"

urlpatterns = [
    path("", include("repayments.urls")),
    path("console/data/", include("repayments.urls.data")),
    path("", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # Normally answered by baitiao.probes.OpsEndpointsMiddleware first; here for reverse() and without it.
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.metrics, name="metrics"),
    path("api/v1/", include("repayments.api.urls")),
    path("api/", include("repayments.api.schema_urls")),
]
