"""Set-based loading of mapped holders: COPY into staging tables, then merge.

Merging uses ``INSERT … SELECT … ON CONFLICT (natural key) DO NOTHING``, so a
load that is run twice leaves every row as the first run wrote it. Foreign keys
are resolved through per-chunk id tables filled by ``RETURNING``, so the cost of
a chunk does not grow with the size of the domain tables.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from repayments.datasets.copyrows import EncodedChunk

_STAGING = {
    "stage_customer": """
        customer_no text, name text, phone text, phone_hash text, phone_last4 text,
        national_id text, national_id_hash text, national_id_last4 text, email text,
        credit_score smallint, risk_tier text, is_synthetic boolean, source text, source_ref text""",
    "stage_credit_line": """
        customer_no text, credit_limit numeric(14,2), available_credit numeric(14,2),
        currency text, status text""",
    "stage_card_binding": """
        customer_no text, gateway_token text, bin text, last4 text, bank_code text, bank_name text,
        card_type text, reserved_phone text, reserved_phone_last4 text, status text,
        bound_at timestamptz, is_synthetic boolean""",
    "stage_bill": """
        bill_no text, customer_no text, period date, statement_date date, due_date date,
        original_due_date date, statement_balance numeric(14,2), amount_due numeric(14,2),
        minimum_due numeric(14,2), amount_paid numeric(14,2), late_fee numeric(14,2), status text,
        dpd smallint, dpd_as_of date, carried_forward numeric(14,2), past_due_amount numeric(14,2),
        past_due_since date, cycles_past_due smallint""",
    "stage_attempt": """
        attempt_no text, bill_no text, gateway_token text, channel text, amount numeric(14,2),
        status text, requested_at timestamptz, completed_at timestamptz""",
}

# Each step inserts what is new and records the ids of the rows it created in a
# small temporary id table, so later steps join temp tables of one chunk instead
# of the growing domain tables. A step that skipped conflicting rows (a re-run)
# adds the existing ids with one lookup join (_EXISTING).
_IDS = {
    "ids_customer": "customer_no text PRIMARY KEY, id bigint",
    "ids_credit_line": "customer_no text PRIMARY KEY, id bigint",
    "ids_card_binding": "gateway_token text PRIMARY KEY, id bigint",
    "ids_bill": "bill_no text PRIMARY KEY, id bigint",
}

_STEPS = [
    (
        "customers",
        "stage_customer",
        """
    WITH ins AS (
        INSERT INTO repayments_customer (customer_no, name, phone, phone_hash, phone_last4, national_id,
            national_id_hash, national_id_last4, email, credit_score, risk_tier, is_synthetic, source,
            source_ref, language, created_at, updated_at)
        SELECT s.*, 'zh-hans', now(), now() FROM stage_customer s
        ON CONFLICT (customer_no) DO NOTHING
        RETURNING id, customer_no)
    INSERT INTO ids_customer SELECT customer_no, id FROM ins
    """,
        """
    INSERT INTO ids_customer SELECT c.customer_no, c.id FROM stage_customer s
      JOIN repayments_customer c USING (customer_no) ON CONFLICT DO NOTHING
    """,
    ),
    (
        "credit_lines",
        "stage_credit_line",
        """
    WITH ins AS (
        INSERT INTO repayments_creditline (customer_id, credit_limit, available_credit, currency, status,
            created_at, updated_at)
        SELECT i.id, s.credit_limit, s.available_credit, s.currency, s.status, now(), now()
        FROM stage_credit_line s JOIN ids_customer i USING (customer_no)
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING id, customer_id)
    INSERT INTO ids_credit_line SELECT i.customer_no, ins.id FROM ins JOIN ids_customer i ON i.id = ins.customer_id
    """,
        """
    INSERT INTO ids_credit_line SELECT i.customer_no, l.id FROM ids_customer i
      JOIN repayments_creditline l ON l.customer_id = i.id ON CONFLICT DO NOTHING
    """,
    ),
    (
        "card_bindings",
        "stage_card_binding",
        """
    WITH ins AS (
        INSERT INTO repayments_cardbinding (customer_id, gateway_token, bin, last4, bank_code, bank_name,
            card_type, reserved_phone, reserved_phone_last4, status, status_reason, bound_at, is_synthetic,
            created_at, updated_at)
        SELECT i.id, s.gateway_token, s.bin, s.last4, s.bank_code, s.bank_name, s.card_type,
            s.reserved_phone, s.reserved_phone_last4, s.status, '', s.bound_at, s.is_synthetic, now(), now()
        FROM stage_card_binding s JOIN ids_customer i USING (customer_no)
        ON CONFLICT (gateway_token) DO NOTHING
        RETURNING id, gateway_token)
    INSERT INTO ids_card_binding SELECT gateway_token, id FROM ins
    """,
        """
    INSERT INTO ids_card_binding SELECT b.gateway_token, b.id FROM stage_card_binding s
      JOIN repayments_cardbinding b USING (gateway_token) ON CONFLICT DO NOTHING
    """,
    ),
    (
        "bills",
        "stage_bill",
        """
    WITH ins AS (
        INSERT INTO repayments_bill (bill_no, customer_id, credit_line_id, period, statement_date, due_date,
            original_due_date, statement_balance, amount_due, minimum_due, amount_paid, late_fee, late_fee_waived,
            status, dpd, dpd_as_of, debit_attempts, carried_forward, past_due_amount, past_due_since,
            cycles_past_due, created_at, updated_at)
        SELECT s.bill_no, c.id, l.id, s.period, s.statement_date, s.due_date, s.original_due_date,
            s.statement_balance, s.amount_due, s.minimum_due, s.amount_paid, s.late_fee, 0, s.status, s.dpd,
            s.dpd_as_of, 0, s.carried_forward, s.past_due_amount, s.past_due_since, s.cycles_past_due, now(), now()
        FROM stage_bill s
        JOIN ids_customer c USING (customer_no)
        JOIN ids_credit_line l USING (customer_no)
        ON CONFLICT (bill_no) DO NOTHING
        RETURNING id, bill_no)
    INSERT INTO ids_bill SELECT bill_no, id FROM ins
    """,
        """
    INSERT INTO ids_bill SELECT b.bill_no, b.id FROM stage_bill s
      JOIN repayments_bill b USING (bill_no) ON CONFLICT DO NOTHING
    """,
    ),
    (
        "attempts",
        "stage_attempt",
        """
    INSERT INTO repayments_repaymentattempt (attempt_no, bill_id, card_binding_id, channel, amount, status,
        failure_code, failure_family, failure_message, gateway_reference, requested_at, completed_at,
        created_at, updated_at)
    SELECT s.attempt_no, b.id, cb.id, s.channel, s.amount, s.status, '', '', '', '', s.requested_at,
        s.completed_at, now(), now()
    FROM stage_attempt s
    JOIN ids_bill b USING (bill_no)
    LEFT JOIN ids_card_binding cb USING (gateway_token)
    ON CONFLICT (attempt_no) DO NOTHING
    """,
        None,
    ),
]


def holders_bulk_merge(*, chunks: Iterable[EncodedChunk]) -> dict[str, int]:
    """COPY encoded holders into temporary staging tables and merge them, in one transaction.

    Args:
        chunks: COPY text per staging table (``repayments.datasets.copyrows.encode_holders``),
            rows keyed by natural keys.

    Returns:
        The number of rows newly inserted per table (``customers``, ``credit_lines``,
        ``card_bindings``, ``bills``, ``attempts``); zero everywhere on a re-run.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        for table, columns in _STAGING.items():
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP")  # noqa: S608
        staged = dict.fromkeys(_STAGING, 0)
        parts: dict[str, list[bytes]] = {table: [] for table in _STAGING}
        for chunk in chunks:
            for table, (count, data) in chunk.items():
                staged[table] += count
                parts[table].append(data)
        # One COPY at a time: the protocol allows a single COPY per connection.
        for table, blocks in parts.items():
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:  # noqa: S608 - fixed names
                for block in blocks:
                    copy.write(block)
        for table, columns in _IDS.items():
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP")  # noqa: S608
        counts = {}
        for name, stage, insert_new, add_existing in _STEPS:
            cursor.execute(insert_new)
            counts[name] = cursor.rowcount
            if add_existing and counts[name] < staged[stage]:
                cursor.execute(add_existing)  # a re-run: some rows were there already
        for table in (*_STAGING, *_IDS):
            cursor.execute(f"DROP TABLE {table}")  # noqa: S608 - fixed names
    return counts
