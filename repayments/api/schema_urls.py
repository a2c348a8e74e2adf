"""``/api/schema/`` and ``/api/docs/``: the OpenAPI schema and its Swagger UI (no namespace).

Both are for signed-in staff only (``SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]``, docs/api.md).
"""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from repayments.api.docs import ApiDocsView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets inline style attributes; styles only (never scripts) are relaxed, on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(ApiDocsView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
