"""``manage.py import_data RESOURCE FILE``: import an analyst CSV/XLSX file (docs/csv.md)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from repayments.imports.columns import RESOURCES


class Command(BaseCommand):
    help = (
        "Import customers, credit-lines, card-bindings, bills or repayment-attempts from CSV/XLSX. "
        "All rows or none; exit status 0 when applied (or a clean dry run), 1 with a row-by-row report."
    )

    def add_arguments(self, parser):
        parser.add_argument("resource", choices=sorted(RESOURCES))
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument("--encoding", default="auto", help="auto (UTF-8, then GB18030) or a codec: utf-8, gbk…")
        parser.add_argument("--header-row", type=int, default=None, help="spreadsheet row holding the headers")
        parser.add_argument("--skip-footer", action="store_true", help="skip a 合计/Total row and all rows below")
        parser.add_argument("--apply-valid-rows", action="store_true", help="apply the valid rows; report the others")
        parser.add_argument("--error-report", type=Path, help="also write the problems to this CSV file")
        parser.add_argument("--actor", help="username recorded in the audit trail (default: system)")
        parser.add_argument("--fast-path", choices=["auto", "on", "off"], default="auto")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default="en",
            help="language of the problems, notes and error report (default: en)",
        )

    def handle(self, *args, **options):
        # English unless asked: the report must not depend on the shell's or caller's locale.
        with translation.override(options["language"]):
            self._import(options)

    def _import(self, options):
        from accounts.models import User
        from repayments.services.imports import data_import

        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(_("%(path)s: no such file") % {"path": path})
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None or not actor.has_perm("repayments.import_data"):
                raise CommandError(_("%(user)s: no such user with the import permission") % {"user": options["actor"]})
        with path.open("rb") as file:  # read as a stream: memory stays flat whatever the size
            outcome = self._run(data_import, file, path, actor, options)
        self._report(outcome, path, options)

    def _run(self, data_import, file, path: Path, actor, options):
        return data_import(
            resource=options["resource"],
            content=file,
            actor=actor,
            filename=path.name,
            dry_run=options["dry_run"],
            encoding=options["encoding"],
            header_row=options["header_row"],
            skip_footer=options["skip_footer"],
            apply_valid_rows=options["apply_valid_rows"],
            fast_path={"auto": None, "on": True, "off": False}[options["fast_path"]],
        )

    def _report(self, outcome, path: Path, options):
        for note in outcome.notes:
            self.stdout.write(note)
        for problem in outcome.problems:
            self.stderr.write(f"{path.name}: {problem}")
        if options["error_report"] and outcome.problems:
            options["error_report"].write_bytes(outcome.error_report())
        self.stdout.write(
            _(
                "%(status)s: %(rows)d rows (%(encoding)s), %(created)d created, %(updated)d updated, "
                "%(unchanged)d unchanged, %(problems)d problems"
            )
            % {
                "status": outcome.status,
                "rows": outcome.rows,
                "encoding": outcome.encoding,
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "problems": len(outcome.problems),
            }
        )
        if outcome.problems or not (outcome.applied or outcome.dry_run):
            raise SystemExit(1)
