"""Top-level URL configuration."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from baitiao import probes
from repayments.api.docs import ApiDocsView

admin.site.site_header = "Baitiao Ops back office"
admin.site.site_title = "Baitiao Ops"

urlpatterns = [
    path("", include("repayments.urls")),
    path("console/data/", include("repayments.urls_data")),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # Normally answered by baitiao.probes.OpsEndpointsMiddleware first; here for reverse() and without it.
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", probes.metrics, name="metrics"),
    path("api/v1/", include("repayments.api.urls")),
    # Both for signed-in staff only (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"], docs/api.md).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets inline style attributes; styles only (never scripts) are relaxed, on this page only.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(ApiDocsView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
