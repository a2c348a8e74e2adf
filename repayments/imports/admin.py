"""Admin import/export for the analyst resources (django-import-export's admin mixin)."""

from __future__ import annotations

from typing import ClassVar

from import_export.admin import ImportExportMixin

from repayments.imports.resources import RESOURCE_CLASSES


class AnalystImportExportMixin(ImportExportMixin):
    """Admin import/export (django-import-export) for the analyst resources.

    Preview first (a dry run with row errors), then confirm; a file with any
    problem is rolled back whole. Imports and exports are audited; exports are
    masked and formula-safe. Needs ``repayments.import_data`` / ``export_data``.
    """

    analyst_resource: ClassVar[str]

    def get_resource_classes(self, request):
        return [RESOURCE_CLASSES[self.analyst_resource]]

    def get_import_formats(self):
        from repayments.imports.formats import formats_for

        return formats_for(self.analyst_resource)

    def get_export_formats(self):
        from repayments.imports.formats import formats_for

        return formats_for(self.analyst_resource)

    def has_import_permission(self, request):
        return request.user.has_perm("repayments.import_data")

    def has_export_permission(self, request):
        return request.user.has_perm("repayments.export_data")

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"actor": request.user}

    def get_export_resource_kwargs(self, request, **kwargs):
        return {"actor": request.user}

    def add_data_read_fail_error_to_form(self, form, e):
        """A file the reader refuses (over a limit, unknown columns, a footer row …) shows
        its problems, each naming the row, column and value; other errors as django-import-export does."""
        from repayments.imports.report import FileRefused

        if not isinstance(e, FileRefused):
            return super().add_data_read_fail_error_to_form(form, e)
        for problem in e.problems:
            form.add_error("import_file", str(problem))

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        from accounts.services import audit_record

        audit_record(
            actor=request.user,
            action="data.import",
            target_type=f"repayments.{self.analyst_resource}",
            after={
                "resource": self.analyst_resource,
                "via": "admin",
                "created": result.totals.get("new", 0),
                "updated": result.totals.get("update", 0),
                "unchanged": result.totals.get("skip", 0),
                "rows": result.total_rows,
            },
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        return super().process_result(result, request)

    def get_export_data(self, file_format, request, queryset, **kwargs):
        from accounts.services import audit_record

        data = super().get_export_data(file_format, request, queryset, **kwargs)
        audit_record(
            actor=request.user,
            action="data.export",
            target_type=f"repayments.{self.analyst_resource}",
            after={"resource": self.analyst_resource, "via": "admin", "masked": True},
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        return data
