"""``python manage.py sandbox_gateway serve|outage``: run the sandbox bank or flip its outage switch."""

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from repayments.gateway.sandbox import SandboxConfig, serve


class Command(BaseCommand):
    help = "Run the sandbox bank (serve) or switch its outage mode (outage --start/--stop)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("serve", help="run the sandbox bank until interrupted")
        run.add_argument("--host", default="127.0.0.1")
        run.add_argument("--port", type=int, default=8099)
        run.add_argument("--callback-url", default=settings.GATEWAY_CALLBACK_URL)
        run.add_argument("--latency-ms", type=int, nargs=2, default=[50, 300], metavar=("MIN", "MAX"))
        run.add_argument("--duplicate-rate", type=float, default=0.1, help="share of callbacks delivered twice")
        run.add_argument("--hold-seconds", type=float, default=settings.GATEWAY_TIMEOUT_SECONDS + 3)
        run.add_argument("--seed", type=int, default=None)
        run.add_argument("--ledger", default=None, help="journal of debits (JSON lines), replayed on start")
        run.add_argument(
            "--system-failure-rate",
            type=float,
            default=settings.SANDBOX_SYSTEM_FAILURE_RATE,
            help="share of debits (0-1) failed with bank_system_error or channel_unavailable (make run: 0.03)",
        )
        outage = sub.add_parser("outage", help="switch the running sandbox's outage mode")
        group = outage.add_mutually_exclusive_group(required=True)
        group.add_argument("--start", action="store_true")
        group.add_argument("--stop", action="store_true")
        outage.add_argument("--mode", choices=["error", "timeout"], default="error")
        outage.add_argument("--only", nargs="+", default=[], metavar="PART", help="only tokens containing one of these")
        outage.add_argument("--url", default=settings.GATEWAY_URL)

    def handle(self, *args, **options):
        if options["action"] == "serve":
            if not 0 <= options["system_failure_rate"] <= 1:
                raise CommandError(
                    f"--system-failure-rate must be between 0 and 1, not {options['system_failure_rate']}"
                )
            config = SandboxConfig(
                secret=settings.GATEWAY_SECRET,
                callback_url=options["callback_url"],
                latency_ms=tuple(options["latency_ms"]),
                duplicate_rate=options["duplicate_rate"],
                hold_seconds=options["hold_seconds"],
                seed=options["seed"],
                ledger_path=options["ledger"],
                system_failure_rate=options["system_failure_rate"],
            )
            self.stdout.write(f"Sandbox bank on http://{options['host']}:{options['port']}")
            serve(options["host"], options["port"], config)
            return
        mode = options["mode"] if options["start"] else "off"
        try:
            response = httpx.post(
                options["url"].rstrip("/") + "/sandbox/outage",
                json={"mode": mode, "only": options["only"]},
                timeout=5,
            )
        except httpx.HTTPError as exc:
            raise CommandError(f"The sandbox at {options['url']} did not answer: {exc}") from exc
        if response.status_code != 200:
            raise CommandError(f"The sandbox refused: {response.text}")
        self.stdout.write(self.style.SUCCESS(f"Sandbox outage mode: {mode}"))
