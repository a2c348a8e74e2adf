"""Every console page, as every role, in English and Simplified Chinese: accessible, valid, translated, legible.

One browser; one context per role and language, logged in once. From the
navigation and the links of each page the crawl discovers the console's pages
(new pages are found without a change here), plus a few detail and filter
addresses no menu links to. On each page (docs/console.md, "How the crawl works"):

* **axe-core** (npm, ``tests/e2e/package.json``) finds no serious or critical
  violation of WCAG 2.0/2.1 A and AA;
* no two elements share an ``id``;
* no table overflows its panel at 1366×768 (all ``<details>`` opened first);
* no date-time in ISO 8601 (``2026-12-07T22:41:39+08:00``), audit snapshots
  included, and no money or count of four digits or more without separators;
* in zh-hans: no visible text (nor ``title``, ``placeholder``, ``aria-label``) that
  is a msgid of the message catalogue, and no raw code: ``DPD``, failure codes
  and families, extension reasons, import resource slugs, ``docs/*.md`` names.
  Text marked ``translate="no"`` (user names, customer and bill numbers, audit
  action names and snapshots) is data, not interface, and is not checked for it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from functools import reduce
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.utils import timezone, translation

from repayments.imports.columns import RESOURCES
from repayments.models import ExtensionReason, FailureCode, FailureFamily
from repayments.services.dashboard import dashboard_refresh
from repayments.services.extensions import extension_request
from repayments.services.imports import import_job_create
from repayments.services.incidents import incident_declare
from tests.e2e.conftest import PASSWORD
from tests.e2e.test_console_flows import _bad_binding_customer, _queue_filler
from tests.e2e.test_dashboard import _overdue_bills
from tests.factories import BillFactory
from tests.repayments.test_dashboard import add_dashboard_activity

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
VIEWPORT = {"width": 1366, "height": 768}
PAGES_PER_SESSION = 45
PAGES_PER_ROUTE = 2  # e.g. two customers, two pages of one list: enough to see a template's faults
SKIP = re.compile(r"(/admin/|/api/|/accounts/|/static/|\.csv|/export|/refresh/|/reveal/|[?&]lang=)")


# --- the message catalogue ---------------------------------------------------------------


def _po_string(lines: list[str]) -> str:
    return "".join(line.strip()[1:-1] for line in lines).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def catalogue_entries(path: Path = CATALOGUE) -> list[tuple[list[str], list[str]]]:
    """``[(msgids, msgstrs)]`` of a gettext catalogue: its singular and plural ids, its translations.

    A small reader of the PO format (polib is not a dependency): ``msgctxt``,
    ``msgid``, ``msgid_plural``, ``msgstr`` and ``msgstr[n]`` with continuation
    lines; obsolete (``#~``) entries are skipped.
    """
    entries: list[tuple[list[str], list[str]]] = []
    fields: dict[str, list[str]] = {}
    current: str | None = None

    def flush() -> None:
        if "msgid" in fields:
            ids = [_po_string(fields["msgid"])] + (
                [_po_string(fields["msgid_plural"])] if "msgid_plural" in fields else []
            )
            strs = [_po_string(value) for key, value in sorted(fields.items()) if key.startswith("msgstr")]
            entries.append((ids, strs))
        fields.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            if not line:
                flush()
                current = None
            continue
        if line.startswith('"'):
            if current is not None:
                fields[current].append(line)
            continue
        key, _, rest = line.partition(" ")
        if key == "msgid" and "msgid" in fields:
            flush()
        current = key
        fields[key] = [rest]
    flush()
    return [(ids, strs) for ids, strs in entries if ids[0]]  # the header has an empty msgid


def untranslated_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """The catalogue's English msgids as patterns over a text, placeholders as wildcards.

    A msgid the catalogue "translates" to itself (``CSV``, ``Baitiao Ops``) is
    English in both languages and not looked for.
    """
    patterns = []
    placeholder = re.compile(r"%\(\w+\)[sd]|%[sd]")
    for ids, strs in catalogue_entries():
        for msgid in ids:
            if msgid in strs or not re.search(r"[A-Za-z]{2}", placeholder.sub("", msgid)):
                continue
            pieces = placeholder.split(msgid.strip())
            body = ".+?".join(
                r"\s+".join(map(re.escape, re.split(r"\s+", piece.replace("%%", "%")))) for piece in pieces
            )
            patterns.append((msgid, re.compile(r"(?<![A-Za-z])" + body + r"(?![A-Za-z])")))
    return patterns


def raw_code_pattern() -> re.Pattern[str]:
    """Codes that must never reach a zh-hans reader as they are stored."""
    codes = {"DPD"}
    codes |= {code.value for code in FailureCode} | {family.value for family in FailureFamily}
    codes |= {reason.value for reason in ExtensionReason} | set(RESOURCES)
    words = "|".join(sorted((re.escape(code) for code in codes), key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z_])(?:{words})(?![A-Za-z_])|docs/[\w./-]+\.md")


ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
UNGROUPED_NUMBER = re.compile(r"(?<![\d,.\w-])\d{4,}\.\d\d(?!\d)")


# --- what the browser reads from a page ----------------------------------------------------

READ_PAGE = """() => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const texts = [], data = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement, text = node.textContent.replace(/\\s+/g, " ").trim();
    if (!text || element.closest("script, style, noscript, template")) continue;
    if (element.closest("option") ? !element.closest("select").checkVisibility() : !element.checkVisibility()) continue;
    (element.closest("[translate=no], code, kbd, samp") ? data : texts).push(text);
  }
  document.querySelectorAll("[title], [placeholder], [aria-label], img[alt]").forEach((element) => {
    if (element.closest("[translate=no]")) return;
    for (const name of ["title", "placeholder", "aria-label", "alt"]) {
      const value = element.getAttribute(name);
      if (value && value.trim()) texts.push(value.trim());
    }
  });
  texts.push(document.title);
  const seen = {}, duplicates = [];
  document.querySelectorAll("[id]").forEach((element) => {
    if (seen[element.id]) duplicates.push(element.id);
    seen[element.id] = true;
  });
  const overflowing = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    overflowing.push("the page scrolls sideways (" + document.documentElement.scrollWidth + " px)");
  document.querySelectorAll("table").forEach((table) => {
    if (!table.checkVisibility()) return;
    const panel = table.parentElement, right = table.getBoundingClientRect().right;
    const edge = panel.getBoundingClientRect().right - parseFloat(getComputedStyle(panel).paddingRight || 0);
    if (panel.scrollWidth > panel.clientWidth + 1 || right > edge + 1) {
      const section = table.closest("section");
      const label = table.dataset.testid || (section && section.id) || table.className;
      const width = Math.round(table.getBoundingClientRect().width);
      overflowing.push("table " + label + " is " + width + " px in a panel of " + panel.clientWidth + " px");
    }
  });
  const links = Array.from(document.querySelectorAll("a[href]"), (a) => a.href);
  return {texts, data, duplicates, overflowing, links};
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.impact + " " + v.id + ": " + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""


def _route(url: str) -> tuple[str, tuple[str, ...]]:
    """A page's route: the path with its identifiers blanked, and the names of its query parameters."""
    parts = urlsplit(url)
    path = "/".join("*" if re.search(r"\d", segment) else segment for segment in parts.path.split("/"))
    return path, tuple(sorted({key for key, _ in parse_qsl(parts.query)}))


class Crawl:
    """One role in one language: visit, check, follow links; problems are collected, not raised."""

    def __init__(self, browser, base_url: str, user, language: str, *, names: tuple[str, ...] = ()):
        self.base_url, self.language, self.who = base_url, language, f"{user.username}/{language}"
        self.context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)  # bypass: to inject axe
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.goto(f"{base_url}/accounts/login/")
        self.page.fill("#id_username", user.username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{base_url}/")
        if language != "en":
            self.page.select_option("select[name=language]", language)  # submits itself (console.js)
            self.page.wait_for_selector(f"html[lang='{language}']")
        self.problems: list[str] = []
        self.visited: list[str] = []
        self.names = names  # staff user names: data wherever they appear (requester, actor, approver)

    def run(self, seeds: list[str], *, untranslated, raw_codes) -> list[str]:
        queue = ["/", *seeds]
        seen = set(queue)
        per_route: dict[tuple, int] = {}
        while queue and len(self.visited) < PAGES_PER_SESSION:
            address = queue.pop(0)
            route = _route(address)
            if per_route.get(route, 0) >= PAGES_PER_ROUTE:
                continue
            per_route[route] = per_route.get(route, 0) + 1
            links = self.check(address, untranslated=untranslated, raw_codes=raw_codes)
            for link in links:
                parts = urlsplit(link)
                if parts.netloc != urlsplit(self.base_url).netloc or SKIP.search(link):
                    continue
                local = parts.path + (f"?{parts.query}" if parts.query else "")
                if local not in seen:
                    seen.add(local)
                    queue.append(local)
        self.context.close()
        return self.problems

    def check(self, address: str, *, untranslated, raw_codes) -> list[str]:
        response = self.page.goto(self.base_url + address)
        self.page.wait_for_load_state("load")
        self.visited.append(address)
        where = f"{self.who} {address}"
        if response is None or response.status >= 500:
            self.problems.append(f"{where}: answered {response.status if response else 'nothing'}")
            return []
        seen = self.page.evaluate(READ_PAGE)
        self.page.add_script_tag(path=str(AXE))
        self.problems += [f"{where}: axe {violation}" for violation in self.page.evaluate(AXE_RUN)]
        self.problems += [f"{where}: duplicate id {name!r}" for name in sorted(set(seen["duplicates"]))]
        self.problems += [f"{where}: {message}" for message in seen["overflowing"]]
        for text in seen["texts"] + seen["data"]:
            if match := ISO_DATETIME.search(text):
                self.problems.append(f"{where}: ISO date-time {match.group()!r} in {text[:80]!r}")
        for text in seen["texts"]:
            if match := UNGROUPED_NUMBER.search(text):
                self.problems.append(f"{where}: number without separators {match.group()!r} in {text[:80]!r}")
        if self.language != "en":
            for text in {reduce(lambda text, name: text.replace(name, ""), self.names, text) for text in seen["texts"]}:
                for msgid, pattern in untranslated:
                    if pattern.search(text):
                        self.problems.append(f"{where}: untranslated {msgid!r} in {text[:80]!r}")
                if match := raw_codes.search(text):
                    self.problems.append(f"{where}: raw code {match.group()!r} in {text[:80]!r}")
        return seen["links"] if response.status < 400 else []


def _a_day_of_work(*, agent, supervisor, analyst) -> dict[str, str]:
    """Rows for every page to show: failures of each family, casework, an open incident, an import job."""
    _overdue_bills(40)
    add_dashboard_activity(agent=agent, supervisor=supervisor)
    customer, bill = _bad_binding_customer()
    _queue_filler(6)
    extension_request(
        bill_id=bill.pk, requested_by=agent, days=20, reason="hardship", note="", request_token=uuid.uuid4()
    )  # beyond the agent's limit: waits in the approvals inbox
    incident = incident_declare(
        declared_by=supervisor,
        bank_code="ICBC",
        channel="",
        started_at=timezone.now() - dt.timedelta(hours=2),
        ended_at=None,
        description="工行网关超时",  # staff write in their language: data, not interface
    )
    rows = (
        "customer_no,name,phone,national_id,credit_score,risk_tier\n"
        "WEB-1,张三,13800138000,11010519491231002X,700,low\n"
        "WEB-2,,123,,x,nope\n"  # a rejected row: the job page lists its problems
    )
    with translation.override("zh-hans"):  # the job's messages are written in the uploader's language
        job = import_job_create(
            actor=analyst, resource="customers", filename="客户.csv", content=rows.encode(), options={"dry_run": True}
        )
    return {
        "customer": f"/console/customers/{customer.customer_no}/",
        "extension": f"/console/customers/{customer.customer_no}/bills/{bill.bill_no}/extension/",
        "waiver": f"/console/customers/{customer.customer_no}/bills/{bill.bill_no}/waiver/",
        "repair": f"/console/customers/{customer.customer_no}/binding/",
        "incident": f"/console/incidents/{incident.pk}/",
        "job": f"/console/data/import/{job.pk}/",
    }


def test_every_page_as_every_role_in_both_languages_is_accessible_valid_and_translated(
    empty_domain, browser, live_server, agent, supervisor, analyst, auditor, admin_user
):
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed: run `npm ci --prefix tests/e2e` (missing {AXE})")
    places = _a_day_of_work(agent=agent, supervisor=supervisor, analyst=analyst)
    seeds = [
        places["customer"],
        places["extension"],
        places["waiver"],
        places["repair"],
        places["incident"],
        places["job"],
        "/console/incidents/declare/",
        "/console/?" + urlencode({"queue": "failures", "family": "binding", "bucket": "M1"}),
        "/console/?" + urlencode({"queue": "overdue", "dpd_min": "1", "dpd_max": "60", "assignee": "unassigned"}),
        "/console/?queue=approvals",
        "/console/audit/?system=1",
        "/console/bureau-ledger/?revoked=1",
    ]
    untranslated, raw_codes = untranslated_patterns(), raw_code_pattern()
    problems, visited = [], {}
    names = tuple(user.username for user in (agent, supervisor, analyst, auditor, admin_user))
    for user in (agent, supervisor, analyst, auditor, admin_user):
        for language in ("en", "zh-hans"):
            crawl = Crawl(browser, live_server.url, user, language, names=names)
            problems += crawl.run(seeds, untranslated=untranslated, raw_codes=raw_codes)
            visited[crawl.who] = len(crawl.visited)
    assert all(count >= 5 for count in visited.values()), visited
    assert not problems, f"{len(problems)} problems on {sum(visited.values())} pages:\n" + "\n".join(
        dict.fromkeys(problems)
    )


def test_a_chart_without_figures_says_so_instead_of_a_blank_canvas(empty_domain, login, analyst):
    """A cycle whose only bill owes nothing has no collection rate: the chart is a message, the table stays."""
    BillFactory(amount_due=Decimal("0.00"), minimum_due=Decimal("0.00"))
    assert dashboard_refresh(trigger="command").refreshed
    for language, message in (
        ("en", "No figures to chart for these filters."),
        ("zh-hans", "当前筛选条件下没有可绘制图表的数据。"),
    ):
        page = login(analyst, language)
        page.goto(page.url.rstrip("/") + "/console/dashboard/")
        empty = page.wait_for_selector("[data-testid=chart-empty-collection]")
        assert empty.inner_text() == message
        assert page.locator("#collection canvas").count() == 0
        assert page.locator("#collection table tbody tr").count() == 1  # the figures are still there, as a table
        # No chart on the page is left blank: each is drawn or replaced by its message.
        assert page.locator("canvas[data-chart]:not([data-drawn='1'])").count() == 0
