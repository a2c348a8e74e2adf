from django.urls import path

from repayments import api, views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("api/v1/gateway/callbacks/", api.gateway_callback, name="gateway-callback"),
]
