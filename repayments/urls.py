from django.urls import path

from repayments import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
]
