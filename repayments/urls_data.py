"""Console pages for analysts' imports and exports (issue #6): included at ``console/data/``."""

from django.urls import path

from repayments import views_data

app_name = "data"

urlpatterns = [
    path("", views_data.data_home, name="home"),
    path("import/", views_data.import_upload, name="import"),
    path("import/<int:job_id>/", views_data.import_job, name="import-job"),
    path("import/<int:job_id>/errors.csv", views_data.import_job_errors, name="import-job-errors"),
    path("templates/<str:resource>.csv", views_data.template_download, name="template"),
    path("export/", views_data.export_download, name="export"),
]
