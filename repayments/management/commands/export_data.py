"""``manage.py export_data RESOURCE``: export analyst data as CSV or XLSX (docs/csv.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from repayments.imports.columns import RESOURCES


class Command(BaseCommand):
    help = "Export a resource; personal data masked unless --unmask --reason TEXT --actor USER (audited)."

    def add_arguments(self, parser):
        parser.add_argument("resource", choices=sorted(RESOURCES))
        parser.add_argument("--out", type=Path, help="output file (default: standard output)")
        parser.add_argument("--format", choices=["csv", "xlsx"], default=None, help="default: from --out, else csv")
        parser.add_argument("--unmask", action="store_true", help="personal data in clear (needs --reason, --actor)")
        parser.add_argument("--reason", default="", help="why the unmasked export is needed (audited)")
        parser.add_argument("--actor", help="username recorded in the audit trail (default: system)")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default="en",
            help="language of the messages (default: en)",
        )

    def handle(self, *args, **options):
        # English unless asked, as ``import_data``.
        with translation.override(options["language"]):
            self._export(options)

    def _export(self, options):
        from accounts.models import User
        from repayments.services.exports import data_export

        out: Path | None = options["out"]
        fmt = options["format"] or ("xlsx" if out and out.suffix.lower() == ".xlsx" else "csv")
        if fmt == "xlsx" and out is None:
            raise CommandError(_("--format xlsx needs --out PATH"))
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(_("%(user)s: no such user") % {"user": options["actor"]})
        if options["unmask"] and (actor is None or not options["reason"].strip()):
            raise CommandError(
                _("--unmask needs --actor USER (with the personal-data export permission) and --reason TEXT")
            )
        try:
            if out is None:
                rows = data_export(
                    resource=options["resource"],
                    out=sys.stdout.buffer,
                    actor=actor,
                    fmt=fmt,
                    unmask=options["unmask"],
                    reason=options["reason"],
                )
            else:
                with out.open("wb") as handle:
                    rows = data_export(
                        resource=options["resource"],
                        out=handle,
                        actor=actor,
                        fmt=fmt,
                        unmask=options["unmask"],
                        reason=options["reason"],
                    )
        except PermissionDenied as exc:
            if out is not None:
                out.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        if options["unmask"]:
            message = _("%(rows)d rows exported (%(format)s, unmasked)")
        else:
            message = _("%(rows)d rows exported (%(format)s, masked)")
        self.stderr.write(message % {"rows": rows, "format": fmt})
