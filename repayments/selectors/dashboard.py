"""Receivables dashboard (issue #7): reads of the materialized rollups only.

Every query here reads a ``dashboard_*_rollup`` view (``0005_dashboard``), a few
thousand rows at most whatever the size of the base tables, so a dashboard
request answers in milliseconds on 10,000,000 attempts. The numbers are only as
fresh as the last refresh (:func:`last_refresh`). What each number means and how
it is computed: ``docs/dashboard.md``.

Money is ``Decimal`` in the currency of its row; amounts of different currencies
are never added (each money row or chart series carries one currency). Months
are business-time calendar months, given as the first day of the month.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from baitiao.business_time import bucket_ranges
from baitiao.db_routers import reporting_db
from repayments.bins import BankCode, bank_is_known, bank_label
from repayments.filters import DashboardFilter
from repayments.models import (
    SQL_CODES,
    ApprovalStatus,
    BillStatus,
    FailureFamily,
    IncidentStatus,
    NotificationChannel,
    RiskTier,
)
from repayments.templatetags.console import failure_label

RECOVERY_CHANNELS = ("retry", "reminder", "agent", "extension")  # the recoveries, charted
PAYMENT_SOURCES = (*RECOVERY_CHANNELS, "first_debit", "customer")  # every succeeded payment, tabled
OPEN_STATUSES: tuple[str, ...] = (BillStatus.PENDING.value, BillStatus.OVERDUE.value)  # a drill-down to open bills
_CHART_BANKS = 8  # failures by bank and by reason: the chart draws the banks with the most failures; the table has all


@dataclass(frozen=True)
class DashboardFilters:
    """The filters of every section; empty means "all"."""

    month_from: dt.date | None = None  # first day of a business month, inclusive
    month_to: dt.date | None = None  # first day of a business month, inclusive
    bank: str = ""  # bank code, e.g. "ICBC"
    risk_tier: str = ""  # RiskTier value
    currency: str = ""  # ISO 4217

    def as_params(self) -> dict[str, str]:
        """The filters as query-string values (for the CSV links)."""
        values = {
            "month_from": self.month_from.strftime("%Y-%m") if self.month_from else "",
            "month_to": self.month_to.strftime("%Y-%m") if self.month_to else "",
            "bank": self.bank,
            "risk_tier": self.risk_tier,
            "currency": self.currency,
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class FilterChoices:
    banks: list[str]
    currencies: list[str]


@dataclass
class Section:
    """One dashboard section: a chart, its table (the same numbers) and a CSV download."""

    key: str
    title: str
    definition: str  # one sentence: what the number is (docs/dashboard.md has the detail)
    columns: list[str]
    numeric: list[bool]  # per column: right-aligned number
    rows: list[list] = field(default_factory=list)  # cells: str, int, Decimal or None
    chart: dict = field(default_factory=dict)  # {"type", "labels", "datasets": [{"label", "data"}], "percent"}
    # Drill-down: per row, the query parameters of the list that holds its bills (parallel
    # to ``rows``; empty when the section has none), and that list's URL name.
    drill: list[dict[str, str | list[str]]] = field(default_factory=list)
    drill_to: str = ""
    links: list[str] = field(default_factory=list)  # per row, the drill-down URL (set by the view)

    @property
    def linked_rows(self) -> list[tuple[str, list]]:
        """``(link or "", row)`` per row, for the table."""
        return [(self.links[index] if index < len(self.links) else "", row) for index, row in enumerate(self.rows)]


@dataclass(frozen=True)
class RefreshInfo:
    finished_at: dt.datetime | None  # UTC; None = never refreshed since the rollups were created
    duration_ms: int | None
    trigger: str

    @property
    def duration_seconds(self) -> Decimal | None:
        """The refresh's wall-clock time in seconds, one decimal place."""
        if self.duration_ms is None:
            return None
        return (Decimal(self.duration_ms) / 1000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _fetch(sql: str, params: list | None = None) -> list[tuple]:
    # Reporting reads: the read replica when DATABASE_REPLICA_URL is set (baitiao/db_routers.py);
    # the rollups are replicated with the rest of the cluster.
    with connections[reporting_db()].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def last_refresh() -> RefreshInfo:
    """When the rollups were last rebuilt (one query)."""
    rows = _fetch("SELECT finished_at, duration_ms, trigger FROM dashboard_refresh ORDER BY finished_at DESC LIMIT 1")
    if not rows:
        return RefreshInfo(finished_at=None, duration_ms=None, trigger="")
    return RefreshInfo(*rows[0])


def filter_choices() -> FilterChoices:
    """Banks and currencies present in the rollups, for the filter form (one query)."""
    rows = _fetch(
        "SELECT 'bank', bank_code FROM dashboard_bill_rollup WHERE bank_code <> '' GROUP BY 2"
        " UNION SELECT 'bank', bank_code FROM dashboard_attempt_rollup WHERE bank_code <> '' GROUP BY 2"
        " UNION SELECT 'currency', currency FROM dashboard_bill_rollup GROUP BY 2"
    )
    return FilterChoices(
        # Only banks we know (the BIN table): a code nobody issues cards under is no choice.
        banks=sorted(value for kind, value in rows if kind == "bank" and bank_is_known(value)),
        currencies=sorted(value for kind, value in rows if kind == "currency"),
    )


def parse_dashboard_filters(params: Mapping[str, str], choices: FilterChoices) -> tuple[DashboardFilters, list[str]]:
    """Read the filter query string with :class:`repayments.filters.DashboardFilter`.

    Args:
        params: ``month_from`` / ``month_to`` (``YYYY-MM``), ``bank`` (a bank code in
            the data), ``risk_tier`` (low, medium, high), ``currency`` (ISO 4217 code
            in the data), any case. Blank values mean "all".
        choices: what the data holds (:func:`filter_choices`).

    Returns:
        ``(filters, errors)``: a bad value is named with its field in ``errors``
        and left out of ``filters``; callers show no figures (the page) or refuse
        (the export) while ``errors`` is not empty, so nothing is widened.
    """
    filterset = DashboardFilter(params, banks=choices.banks, currencies=choices.currencies)
    problems = filterset.problems()
    refused = {problem.param for problem in problems}
    cleaned = getattr(filterset.form, "cleaned_data", {})

    def value(name: str):
        return None if name in refused else (cleaned.get(name) or None)

    filters = DashboardFilters(
        month_from=value("month_from"),
        month_to=value("month_to"),
        bank=value("bank") or "",
        risk_tier=value("risk_tier") or "",
        currency=value("currency") or "",
    )
    return filters, [problem.message for problem in problems]


def _where(
    f: DashboardFilters, *, bank: bool = True, tier: bool = True, currency: bool = True
) -> tuple[str, list[dt.date | str]]:
    """SQL conditions (joined by AND, starting with TRUE) and parameters for the filters."""
    clauses: list[str] = ["TRUE"]
    params: list[dt.date | str] = []
    if f.month_from:
        clauses.append("month >= %s")
        params.append(f.month_from)
    if f.month_to:
        clauses.append("month <= %s")
        params.append(f.month_to)
    if bank and f.bank:
        clauses.append("bank_code = %s")
        params.append(f.bank)
    if tier and f.risk_tier:
        clauses.append("risk_tier = %s")
        params.append(f.risk_tier)
    if currency and f.currency:
        clauses.append("currency = %s")
        params.append(f.currency)
    return " AND ".join(clauses), params


def _percent(part, whole) -> Decimal | None:
    """``part / whole`` in percent, two places, half up; None when ``whole`` is zero."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _month(value: dt.date) -> str:
    return value.strftime("%Y-%m")


def _chart_number(value) -> str | int | None:
    # Money never becomes a float: a Decimal travels to the chart as its exact decimal
    # string, as amounts do in the API and CSV; Chart.js's linear scale parses it (+raw).
    return None if value is None else (value if isinstance(value, int) else str(value))


def _series_chart(kind: str, labels: list[str], series: dict[str, dict[str, object]], *, percent=False, stacked=False):
    return {
        "type": kind,
        "labels": labels,
        "percent": percent,
        "stacked": stacked,
        "datasets": [
            {"label": name, "data": [_chart_number(points.get(label)) for label in labels]}
            for name, points in series.items()
        ],
    }


def _label(choices, value: str) -> str:
    return str(dict(choices).get(value, value or _("none")))


# --- sections -------------------------------------------------------------------------


def section_buckets(f: DashboardFilters) -> Section:
    """Open bills (pending, overdue) by delinquency bucket of their DPD: count and balance per currency."""
    ranges = bucket_ranges()
    whens, params = [], []
    for name, lower, upper in ranges:
        if upper is None:
            whens.append("WHEN dpd >= %s THEN %s")
            params += [lower, name]
        else:
            whens.append("WHEN dpd BETWEEN %s AND %s THEN %s")
            params += [lower, upper, name]
    where, where_params = _where(f)
    rows = _fetch(
        f"SELECT CASE {' '.join(whens)} END AS bucket, currency, sum(bills)::bigint, sum(outstanding)"  # noqa: S608
        f" FROM dashboard_bill_rollup WHERE status IN (%s, %s) AND {where} GROUP BY 1, 2",
        [*params, SQL_CODES["bill_pending"], SQL_CODES["bill_overdue"], *where_params],
    )
    found = {(bucket, currency): (bills, balance) for bucket, currency, bills, balance in rows}
    currencies = sorted({currency for _, currency in found})
    section = Section(
        key="buckets",
        title=_("Receivables by delinquency bucket"),
        definition=_(
            "Open bills (pending or overdue) by the bucket of their days past due; balance is what is still owed."
        ),
        columns=[_("Bucket"), _("Currency"), _("Open bills"), _("Balance")],
        numeric=[False, False, True, True],
        drill_to="console:bills",
    )
    labels = [name for name, _lower, _upper in ranges]
    series: dict[str, dict[str, object]] = {}
    for currency in currencies:
        for name in labels:
            bills, balance = found.get((name, currency), (0, Decimal("0.00")))
            section.rows.append([name, currency, bills, balance])
            section.drill.append({"bucket": name, "currency": currency})
            series.setdefault(_("Balance (%(currency)s)") % {"currency": currency}, {})[name] = balance
    section.chart = _series_chart("bar", labels, series)
    return section


def _cycles(f: DashboardFilters) -> list[tuple]:
    where, params = _where(f)
    return _fetch(
        "SELECT month, currency, sum(bills_due)::bigint, sum(amount_due), sum(collected),"  # noqa: S608
        " coalesce(sum(bills) FILTER (WHERE status = %s), 0)::bigint,"
        " coalesce(sum(outstanding) FILTER (WHERE status = %s), 0), sum(carried_forward)"
        f" FROM dashboard_bill_rollup WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2",
        [SQL_CODES["bill_overdue"], SQL_CODES["bill_overdue"], *params],
    )


def section_collection(f: DashboardFilters, cycles: list[tuple] | None = None) -> Section:
    """Per billing cycle and currency: amount collected over amount due."""
    section = Section(
        key="collection",
        title=_("Collection rate per cycle"),
        definition=_(
            "Per billing month: collected (paid, up to the amount due, per statement) over the amount due. "
            "A revolving account carries the rest into the next statement, where it is owed (carried forward); "
            "collected + carried forward + still owed = amount due."
        ),
        columns=[
            _("Cycle"),
            _("Currency"),
            _("Bills with an amount due"),
            _("Amount due"),
            _("Collected"),
            _("Rate %"),
            _("Carried forward"),
        ],
        numeric=[False, False, True, True, True, True, True],
        drill_to="console:bills",
    )
    series: dict[str, dict[str, object]] = {}
    labels: list[str] = []
    rows = cycles if cycles is not None else _cycles(f)
    for month, currency, bills_due, due, collected, _overdue, _balance, carried in rows:
        rate = _percent(collected, due)
        section.rows.append([_month(month), currency, bills_due, due, collected, rate, carried])
        section.drill.append({"month_from": _month(month), "month_to": _month(month), "currency": currency})
        labels.append(_month(month))
        series.setdefault(currency, {})[_month(month)] = rate
    section.chart = _series_chart("line", sorted(set(labels)), series, percent=True)
    return section


def section_overdue(f: DashboardFilters, cycles: list[tuple] | None = None) -> Section:
    """Per billing cycle and currency: bills overdue today over bills with an amount due, and their balance."""
    section = Section(
        key="overdue",
        title=_("Overdue rate by cycle"),
        definition=_("Per billing month: bills overdue now over bills with an amount due; balance still owed on them."),
        columns=[
            _("Cycle"),
            _("Currency"),
            _("Bills with an amount due"),
            _("Overdue bills"),
            _("Overdue rate %"),
            _("Overdue balance"),
        ],
        numeric=[False, False, True, True, True, True],
        drill_to="console:bills",
    )
    series: dict[str, dict[str, object]] = {}
    labels: list[str] = []
    for month, currency, bills_due, _due, _collected, overdue, balance, _carried in (
        cycles if cycles is not None else _cycles(f)
    ):
        rate = _percent(overdue, bills_due)
        section.rows.append([_month(month), currency, bills_due, overdue, rate, balance])
        section.drill.append(
            {"status": SQL_CODES["bill_overdue"], "month_from": _month(month), "month_to": _month(month),
             "currency": currency}
        )  # fmt: skip
        labels.append(_month(month))
        series.setdefault(currency, {})[_month(month)] = rate
    section.chart = _series_chart("line", sorted(set(labels)), series, percent=True)
    return section


def section_failures_family(f: DashboardFilters) -> Section:
    """Failed debit attempts per month of request and failure family."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT month, failure_family, sum(attempts)::bigint FROM dashboard_attempt_rollup"  # noqa: S608
        f" WHERE status = %s AND {where} GROUP BY 1, 2 ORDER BY 1, 2",
        [SQL_CODES["attempt_failed"], *params],
    )
    section = Section(
        key="failures_family",
        title=_("Failed debits by family"),
        definition=_("Failed repayment attempts per month they were requested, by failure family."),
        columns=[_("Month"), _("Family"), _("Failed attempts")],
        numeric=[False, False, True],
        drill_to="console:bills",
    )
    series: dict[str, dict[str, object]] = {_label(FailureFamily.choices, v): {} for v in FailureFamily.values}
    for month, family, count in rows:
        name = _label(FailureFamily.choices, family)
        section.rows.append([_month(month), name, count])
        section.drill.append({"status": list(OPEN_STATUSES), "last_failure_family": family})
        series.setdefault(name, {})[_month(month)] = count
    labels = sorted({_month(month) for month, _family, _count in rows})
    section.chart = _series_chart("bar", labels, {k: v for k, v in series.items() if v}, stacked=True)
    return section


def section_failures_bank(f: DashboardFilters) -> Section:
    """Per month and bank of the debited card: failed attempts, finished attempts and the failure rate."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT month, bank_code, coalesce(sum(attempts) FILTER (WHERE status = %s), 0)::bigint,"  # noqa: S608
        " sum(attempts)::bigint FROM dashboard_attempt_rollup"
        f" WHERE status IN (%s, %s) AND {where} GROUP BY 1, 2 ORDER BY 1, 2",
        [SQL_CODES["attempt_failed"], SQL_CODES["attempt_failed"], SQL_CODES["attempt_succeeded"], *params],
    )
    section = Section(
        key="failures_bank",
        title=_("Failed debits by bank"),
        definition=_(
            "Per month and bank of the debited card: failed attempts over finished (failed or succeeded) ones."
        ),
        columns=[_("Month"), _("Bank"), _("Failed attempts"), _("Finished attempts"), _("Failure rate %")],
        numeric=[False, False, True, True, True],
        drill_to="console:bills",
    )
    totals: dict[str, int] = defaultdict(int)
    series: dict[str, dict[str, object]] = defaultdict(dict)
    for month, code, failed, finished in rows:
        section.drill.append({"status": list(OPEN_STATUSES), "bank": code} if code else {})
        # The table shows the bank's label and its CSV the code (BankCode); the chart its label.
        bank = bank_label(code) if code else _("unknown")
        section.rows.append(
            [_month(month), BankCode(code) if code else bank, failed, finished, _percent(failed, finished)]
        )
        totals[bank] += failed
        series[bank][_month(month)] = failed
    top = sorted((bank for bank in totals if totals[bank]), key=lambda bank: (-totals[bank], bank))[:_CHART_BANKS]
    labels = sorted({_month(month) for month, *_rest in rows})
    section.chart = _series_chart("line", labels, {bank: series[bank] for bank in top})
    return section


class CodeCell(str):
    """A machine code shown as such in a table (the bank's reason code): ``<code translate="no">``.

    Pages render ``__html__`` (a code, not words to translate); CSV files write the code.
    """

    __slots__ = ()

    def __html__(self) -> str:
        from django.utils.html import escape

        return f'<code translate="no">{escape(str(self))}</code>'


def section_failures_reason(f: DashboardFilters) -> Section:
    """Failed debit attempts per month of request, family and the bank's reason code (most frequent first)."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT month, failure_family, failure_code, sum(attempts)::bigint"  # noqa: S608
        f" FROM dashboard_failure_reason_rollup WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC, 3",
        params,
    )
    section = Section(
        key="failures_reason",
        title=_("Failed debits by reason"),
        definition=_("Failed repayment attempts per month they were requested, by the bank's reason code."),
        columns=[_("Month"), _("Family"), _("Reason"), _("Code"), _("Failed attempts")],
        numeric=[False, False, False, False, True],
        drill_to="console:bills",
    )
    totals: dict[str, int] = defaultdict(int)
    series: dict[str, dict[str, object]] = defaultdict(dict)
    for month, family, code, count in rows:
        label = failure_label(code)
        reason = _("none") if not code else (_("Other") if label == code else label)  # a code the bank alone knows
        section.rows.append([_month(month), _label(FailureFamily.choices, family), reason, CodeCell(code), count])
        section.drill.append({"status": list(OPEN_STATUSES), "last_failure_family": family, "last_failure_code": code})
        totals[reason] += count
        series[reason][_month(month)] = count
    top = sorted(totals, key=lambda reason: (-totals[reason], reason))[:_CHART_BANKS]
    labels = sorted({_month(row[0]) for row in rows})
    section.chart = _series_chart("bar", labels, {reason: series[reason] for reason in top}, stacked=True)
    return section


def recovery_label(source: str) -> str:
    return {
        "retry": _("Automatic retry"),
        "reminder": _("After a reminder"),
        "agent": pgettext("recovery channel", "Agent"),
        "extension": _("Extension"),
        "first_debit": _("First debit (not a recovery)"),
        "customer": _("Customer, unprompted (not a recovery)"),
    }[source]


def section_recovery(f: DashboardFilters) -> Section:
    """Succeeded payments per month and attribution (docs/dashboard.md: agent > extension > retry > reminder)."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT month, recovery, currency, sum(attempts)::bigint, sum(amount) FROM dashboard_attempt_rollup"  # noqa: S608
        f" WHERE status = %s AND {where} GROUP BY 1, 2, 3 ORDER BY 1, 3",
        [SQL_CODES["attempt_succeeded"], *params],
    )
    order = {source: index for index, source in enumerate(PAYMENT_SOURCES)}
    rows.sort(key=lambda row: (row[0], row[2], order[row[1]]))
    section = Section(
        key="recovery",
        title=_("Recovery by channel"),
        definition=_(
            "Succeeded payments per month, attributed to one channel: agent, then extension, then automatic retry, "
            "then reminder (within 3 days after one)."
        ),
        columns=[_("Month"), _("Channel"), _("Currency"), _("Payments"), _("Amount")],
        numeric=[False, False, False, True, True],
    )
    series: dict[str, dict[str, object]] = {recovery_label(source): {} for source in RECOVERY_CHANNELS}
    for month, source, currency, count, amount in rows:
        section.rows.append([_month(month), recovery_label(source), currency, count, amount])
        if source in RECOVERY_CHANNELS:
            points = series[recovery_label(source)]
            points[_month(month)] = points.get(_month(month), 0) + count  # counts add across currencies
    labels = sorted({_month(row[0]) for row in rows})
    section.chart = _series_chart("bar", labels, series, stacked=True)
    return section


def section_reminders(f: DashboardFilters) -> Section:
    """Reminder messages sent, and the share followed by a succeeded debit within 72 hours, by tier and channel."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT risk_tier, channel, sum(sent)::bigint, sum(paid_within_3_days)::bigint"  # noqa: S608
        f" FROM dashboard_reminder_rollup WHERE {where} GROUP BY 1, 2",
        params,
    )
    tiers = {tier: index for index, tier in enumerate(RiskTier.values)}
    channels = {channel: index for index, channel in enumerate(NotificationChannel.values)}
    rows.sort(key=lambda row: (tiers.get(row[0], 99), channels.get(row[1], 99)))
    section = Section(
        key="reminders",
        title=_("Reminder effectiveness"),
        definition=_(
            "Reminder messages sent, and the share whose bill was paid within 3 days after, by risk tier and channel."
        ),
        columns=[_("Risk tier"), _("Channel"), _("Reminders sent"), _("Paid within 3 days"), _("Share %")],
        numeric=[False, False, True, True, True],
    )
    series: dict[str, dict[str, object]] = {}
    labels = [_label(RiskTier.choices, tier) for tier in RiskTier.values]
    for tier, channel, sent, paid in rows:
        share = _percent(paid, sent)
        section.rows.append(
            [_label(RiskTier.choices, tier), _label(NotificationChannel.choices, channel), sent, paid, share]
        )
        series.setdefault(_label(NotificationChannel.choices, channel), {})[_label(RiskTier.choices, tier)] = share
    section.chart = _series_chart("bar", labels, series, percent=True)
    return section


def section_relief(f: DashboardFilters) -> Section:
    """Extensions and waivers per month requested: how many, by status, days granted and late fees waived."""
    where, params = _where(f)
    rows = _fetch(
        "SELECT month, kind, status, currency, sum(requests)::bigint, sum(days)::bigint, sum(amount)"  # noqa: S608
        f" FROM dashboard_relief_rollup WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        params,
    )
    section = Section(
        key="relief",
        title=_("Extensions and waivers"),
        definition=_(
            "Extensions and late-fee waivers per month requested, by status: days granted and late fees waived."
        ),
        columns=[
            _("Month"),
            _("Kind"),
            _("Status"),
            _("Currency"),
            _("Requests"),
            _("Days granted"),
            _("Late fees waived"),
        ],
        numeric=[False, False, False, False, True, True, True],
    )
    kinds = {"extension": _("Extensions"), "waiver": _("Waivers")}
    series: dict[str, dict[str, object]] = {label: {} for label in kinds.values()}
    for month, kind, status, currency, requests, days, amount in rows:
        section.rows.append(
            [_month(month), kinds[kind], _label(ApprovalStatus.choices, status), currency, requests, days, amount]
        )
        points = series[kinds[kind]]
        points[_month(month)] = points.get(_month(month), 0) + requests
    labels = sorted({_month(row[0]) for row in rows})
    section.chart = _series_chart("bar", labels, series)
    return section


def section_incidents(f: DashboardFilters) -> Section:
    """Incidents started in the period (on the filtered bank or on every bank): failures and relief reached."""
    clauses: list[str] = ["TRUE"]
    params: list[dt.date | str] = []
    if f.month_from:
        clauses.append("month >= %s")
        params.append(f.month_from)
    if f.month_to:
        clauses.append("month <= %s")
        params.append(f.month_to)
    if f.bank:
        clauses.append("bank_code IN (%s, '')")
        params.append(f.bank)
    if f.currency:
        clauses.append("currency IN (%s, '')")
        params.append(f.currency)
    rows = _fetch(
        "SELECT incident_id, bank_code, channel, status, started_at, ended_at, system_failures, currency,"  # noqa: S608
        " relief_bills, relief_applied, relief_reversed, amount_owed FROM dashboard_incident_rollup"
        f" WHERE {' AND '.join(clauses)} ORDER BY started_at DESC, incident_id DESC, currency LIMIT 200",
        params,
    )
    section = Section(
        key="incidents",
        title=_("Incident impact"),
        definition=_("Per incident: system-family failures in its window and scope, and the bills its relief reached."),
        columns=[
            _("Incident"),
            _("Bank"),
            _("Started"),
            _("Ended"),
            _("Status"),
            _("System failures"),
            _("Currency"),
            _("Bills in relief"),
            _("Relieved"),
            _("Reversed"),
            _("Owed on relieved bills"),
        ],
        numeric=[False, False, False, False, False, True, False, True, True, True, True],
    )
    series: dict[str, dict[str, object]] = {_("System failures"): {}}
    labels = []
    for (
        incident_id,
        bank,
        _channel,
        status,
        started,
        ended,
        failures,
        currency,
        bills,
        applied,
        reversed_,
        owed,
    ) in rows:
        started_local = timezone.localtime(started).strftime("%Y-%m-%d %H:%M")
        ended_local = timezone.localtime(ended).strftime("%Y-%m-%d %H:%M") if ended else ""
        section.rows.append(
            [
                f"#{incident_id}",
                BankCode(bank) if bank else _("all banks"),
                started_local,
                ended_local,
                _label(IncidentStatus.choices, status),
                failures,
                currency,
                bills,
                applied,
                reversed_,
                owed if currency else None,
            ]
        )
        label = f"#{incident_id}"
        if label not in series[_("System failures")]:
            labels.append(label)
            series[_("System failures")][label] = failures
    section.chart = _series_chart("bar", labels, series)
    return section


SECTIONS: dict[str, Callable[[DashboardFilters], Section]] = {
    "buckets": section_buckets,
    "collection": section_collection,
    "overdue": section_overdue,
    "failures_family": section_failures_family,
    "failures_bank": section_failures_bank,
    "failures_reason": section_failures_reason,
    "recovery": section_recovery,
    "reminders": section_reminders,
    "relief": section_relief,
    "incidents": section_incidents,
}


def dashboard_sections(f: DashboardFilters) -> list[Section]:
    """Every section, in page order, in eight queries (the two cycle sections share one)."""
    cycles = _cycles(f)
    sections = []
    for key, build in SECTIONS.items():
        if key == "collection":
            sections.append(section_collection(f, cycles))
        elif key == "overdue":
            sections.append(section_overdue(f, cycles))
        else:
            sections.append(build(f))
    return sections


__all__ = [
    "DashboardFilters",
    "SECTIONS",
    "dashboard_sections",
    "filter_choices",
    "last_refresh",
    "parse_dashboard_filters",
]
