"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Baitiao Ops back office"
admin.site.site_title = "Baitiao Ops"

urlpatterns = [
    path("", include("repayments.urls")),
    path("console/data/", include("repayments.urls_data")),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
