"""Staff sign-in and the audit trail (included at the site root)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="accounts/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/audit/", views.audit, name="audit"),
    path("console/audit/<int:pk>/", views.audit_event, name="audit-event"),
    path("console/audit/export.csv", views.audit_export, name="audit-export"),
]
