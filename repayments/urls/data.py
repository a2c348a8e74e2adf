"""The analysts' imports and exports (issue #6): included at ``console/data/``, namespace "data"."""

from django.urls import path

from repayments.views import data

app_name = "data"

urlpatterns = [
    path("", data.data_home, name="home"),
    path("import/", data.import_upload, name="import"),
    path("import/<int:job_id>/", data.import_job, name="import-job"),
    path("import/<int:job_id>/apply/", data.import_apply, name="import-apply"),
    path("import/<int:job_id>/errors.csv", data.import_job_errors, name="import-job-errors"),
    path("templates/<str:resource>.csv", data.template_download, name="template"),
    path("export/", data.export_download, name="export"),
    path("export/<int:job_id>/", data.export_job, name="export-job"),
    path("export/<int:job_id>/download/", data.export_job_download, name="export-job-download"),
]
