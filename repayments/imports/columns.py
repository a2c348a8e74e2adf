"""The columns of each import/export resource, their Chinese names and status words.

``docs/csv.md`` is written from this table; a test checks that it names every
column in both languages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from baitiao.masking import mask_name, mask_national_id, mask_phone, mask_token


@dataclass(frozen=True)
class Column:
    name: str  # the English header, also the key in the code
    chinese: str  # the Chinese header analysts' templates use
    required: bool
    aliases: tuple[str, ...] = ()  # more headers accepted on import
    description: str = ""
    # How a masked export shows the column (personal data, the card's gateway token);
    # ``None``: shown as stored.
    mask: Callable[[str], str] | None = None


RESOURCES: dict[str, tuple[Column, ...]] = {
    "customers": (
        Column("customer_no", "客户编号", True, ("客户号",), "the customer's number; the key"),
        Column("name", "姓名", False, ("客户姓名",), "full name; encrypted at rest", mask_name),
        Column("phone", "手机号", False, ("手机号码", "手机", "联系电话"), "mainland mobile; encrypted", mask_phone),
        Column(
            "national_id",
            "身份证号",
            False,
            ("身份证号码", "证件号码", "身份证"),
            "18 characters; encrypted",
            mask_national_id,
        ),
        Column("credit_score", "信用分", False, ("信用评分",), "350–950"),
        Column("risk_tier", "风险等级", False, ("风险级别",), "low / medium / high"),
    ),
    "credit-lines": (
        Column("customer_no", "客户编号", True, ("客户号",), "an existing customer; the key"),
        Column("limit", "授信额度", True, ("信用额度", "额度", "credit_limit"), "amount"),
        Column("currency", "币种", False, ("货币",), "ISO 4217 (CNY, TWD); default CNY"),
        Column("status", "状态", False, ("额度状态",), "active / frozen / closed"),
    ),
    "card-bindings": (
        Column("customer_no", "客户编号", True, ("客户号",), "an existing customer"),
        Column("card_number", "卡号", False, ("银行卡号",), "refused: see docs/csv.md"),
        Column("gateway_token", "支付令牌", False, ("令牌",), "the gateway's token; the key", mask_token),
        Column("bin", "卡BIN", False, ("BIN",), "issuer prefix, 3–10 digits"),
        Column("last4", "卡号后四位", False, ("后四位",), "4 digits"),
        Column("bank_name", "银行名称", False, ("开户行", "银行"), "default: from the BIN table"),
        Column("reserved_phone", "预留手机号", False, ("银行预留手机号",), "mainland mobile; encrypted", mask_phone),
        Column("status", "状态", False, ("绑卡状态",), "active / invalid / replaced"),
    ),
    "bills": (
        Column("bill_no", "账单编号", True, ("账单号",), "the key"),
        Column("customer_no", "客户编号", True, ("客户号",), "an existing customer"),
        Column("period", "账期", True, ("账单月份", "账单周期"), "billing month"),
        Column("statement_date", "账单日", True, ("出账日",), "date"),
        Column("due_date", "到期日", True, ("还款日", "最后还款日"), "date, not before the statement date"),
        Column("statement_balance", "账单金额", False, ("本期账单金额",), "amount; may be negative"),
        Column("amount_due", "应还金额", True, ("本期应还金额",), "amount"),
        Column("minimum_due", "最低还款额", True, ("最低应还",), "amount, at most amount_due"),
        Column("amount_paid", "已还金额", False, ("已还款金额",), "amount; default 0"),
        Column("status", "状态", False, ("账单状态",), "pending / overdue / carried_forward / paid / no_balance"),
    ),
    "repayment-attempts": (
        Column("attempt_no", "扣款编号", True, ("流水号", "交易流水号"), "the key"),
        Column("bill_no", "账单编号", True, ("账单号",), "an existing bill"),
        Column("channel", "渠道", False, ("扣款渠道", "还款渠道"), "auto_debit / agent / customer"),
        Column("amount", "金额", True, ("扣款金额", "还款金额"), "amount, above zero"),
        Column("status", "状态", True, ("扣款状态",), "succeeded / failed / …"),
        Column("failure_code", "失败代码", False, ("失败原因代码", "错误码"), "the bank's code"),
        Column("requested_at", "发起时间", True, ("请求时间",), "date and time"),
        Column("completed_at", "完成时间", False, ("结束时间",), "date and time"),
    ),
}

# How a masked export shows each masked column, per resource: one definition for the
# exports (``repayments.services.exports``), the admin's export and the import, which reads
# a cell in this form that matches the stored value as "keep the stored value" (``docs/csv.md``).
EXPORT_MASKS: dict[str, dict[str, Callable[[str], str]]] = {
    resource: {column.name: column.mask for column in columns if column.mask is not None}
    for resource, columns in RESOURCES.items()
    if any(column.mask is not None for column in columns)
}

# Lower-case word → stored value. English values and labels, then Chinese words.
RISK_TIER_WORDS = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "低": "low",
    "低风险": "low",
    "中": "medium",
    "中风险": "medium",
    "高": "high",
    "高风险": "high",
}
CREDIT_LINE_STATUS_WORDS = {
    "active": "active",
    "frozen": "frozen",
    "closed": "closed",
    "正常": "active",
    "有效": "active",
    "冻结": "frozen",
    "已冻结": "frozen",
    "关闭": "closed",
    "已关闭": "closed",
    "注销": "closed",
}
BINDING_STATUS_WORDS = {
    "active": "active",
    "invalid": "invalid",
    "replaced": "replaced",
    "正常": "active",
    "有效": "active",
    "已绑定": "active",
    "失效": "invalid",
    "无效": "invalid",
    "已替换": "replaced",
    "已更换": "replaced",
}
# "open" is the word statements use for a bill still to be paid: our ``pending``. A
# statement closed with only the minimum paid ("revolving", 最低还款) carries its unpaid
# rest into the next statement: our ``carried_forward`` (issue #14).
BILL_STATUS_WORDS = {
    "pending": "pending",
    "open": "pending",
    "overdue": "overdue",
    "carried_forward": "carried_forward",
    "carried forward": "carried_forward",
    "revolving": "carried_forward",
    "paid": "paid",
    "no_balance": "no_balance",
    "nothing due": "no_balance",
    "待还": "pending",
    "待还款": "pending",
    "未还": "pending",
    "未还款": "pending",
    "逾期": "overdue",
    "已逾期": "overdue",
    "结转": "carried_forward",
    "已结转": "carried_forward",
    "最低还款": "carried_forward",
    "已还最低": "carried_forward",
    "已还": "paid",
    "已还清": "paid",
    "已结清": "paid",
    "无需还款": "no_balance",
    "无欠款": "no_balance",
}
ATTEMPT_STATUS_WORDS = {
    "pending": "pending",
    "processing": "processing",
    "unknown": "unknown",
    "succeeded": "succeeded",
    "success": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
    "待处理": "pending",
    "处理中": "processing",
    "未知": "unknown",
    "成功": "succeeded",
    "扣款成功": "succeeded",
    "失败": "failed",
    "扣款失败": "failed",
    "已取消": "cancelled",
}
CHANNEL_WORDS = {
    "auto_debit": "auto_debit",
    "agent": "agent",
    "customer": "customer",
    "自动扣款": "auto_debit",
    "代扣": "auto_debit",
    "客服": "agent",
    "坐席": "agent",
    "客户": "customer",
    "主动还款": "customer",
}


def header_lookup(resource: str) -> dict[str, str]:
    """Every accepted header (English, Chinese, aliases; case- and space-insensitive) → column name."""
    lookup: dict[str, str] = {}
    for column in RESOURCES[resource]:
        for header in (column.name, column.chinese, *column.aliases):
            lookup[header_key(header)] = column.name
    return lookup


def header_key(header: str) -> str:
    """How headers are compared: NFKC, lower case, spaces, ``*`` and ``_`` ignored."""
    import unicodedata

    text = unicodedata.normalize("NFKC", header or "").strip().lower()
    return "".join(ch for ch in text if ch not in " _*\ufeff")


# Each resource as readers see it (the console's choices, titles and template links); the
# slug stays the key in URLs, files and the command line.
RESOURCE_LABELS = {
    "customers": _("Customers"),
    "credit-lines": _("Credit lines"),
    "card-bindings": _("Card bindings"),
    "bills": _("Bills"),
    "repayment-attempts": _("Repayment attempts"),
}
