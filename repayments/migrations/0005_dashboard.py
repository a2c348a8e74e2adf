"""Receivables dashboard (issue #7): materialized rollups and their refresh log.

The dashboard reads only these small rollups, never the base tables, so every
request costs the same with 10,000 or 10,000,000 attempts. Each view is grouped
by the dashboard's filter dimensions (month, bank, risk tier, currency) and has
a unique index over all its grouping columns, which ``REFRESH MATERIALIZED VIEW
CONCURRENTLY`` needs (readers are never blocked). Grouping columns are never
NULL (``''`` stands for "none"), so the unique index covers every row.
Definitions of every number: ``docs/dashboard.md``.

Months are business-time (Asia/Shanghai) calendar months, the first day of the
month as a date. The views are created WITH DATA (cheap on a fresh database; on
a big one ``migrate`` pays for one build, like an index).
"""

from django.db import migrations

# The bank of a customer's card: the active binding's bank code ('' when none).
BILL_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_bill_rollup AS
SELECT b.period AS month,
       coalesce(cb.bank_code, '') AS bank_code,
       c.risk_tier,
       cl.currency,
       b.status,
       CASE WHEN b.status IN ('pending', 'overdue') THEN b.dpd ELSE 0 END AS dpd,
       count(*) AS bills,
       count(*) FILTER (WHERE b.amount_due > 0) AS bills_due,
       sum(b.amount_due) AS amount_due,
       sum(LEAST(b.amount_paid, b.amount_due)) AS collected,
       sum(GREATEST(b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid, 0)) AS outstanding
  FROM repayments_bill b
  JOIN repayments_customer c ON c.id = b.customer_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
 GROUP BY 1, 2, 3, 4, 5, 6
"""

# One row group per month of request, bank of the debited card (the customer's
# active card when the attempt names none), tier, currency, channel, outcome,
# failure family and, for successes, the recovery channel (precedence documented
# in docs/dashboard.md: agent > extension > retry > reminder > first debit / customer).
# CASE evaluates its branches in order, so each EXISTS probe runs only when needed.
ATTEMPT_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_attempt_rollup AS
SELECT date_trunc('month', a.requested_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       coalesce(acb.bank_code, ccb.bank_code, '') AS bank_code,
       c.risk_tier,
       cl.currency,
       a.channel,
       a.status,
       a.failure_family,
       CASE
           WHEN a.status <> 'succeeded' THEN ''
           WHEN a.channel = 'agent' OR EXISTS (
               SELECT 1 FROM repayments_bindingrepaircase rc
                WHERE rc.new_binding_id = a.card_binding_id AND rc.status = 'resolved'
                  AND a.requested_at >= rc.resolved_at AND a.requested_at < rc.resolved_at + interval '3 days'
           ) THEN 'agent'
           WHEN EXISTS (
               SELECT 1 FROM repayments_extension e
                WHERE e.bill_id = a.bill_id AND e.status = 'approved' AND e.decided_at <= a.requested_at
           ) THEN 'extension'
           WHEN a.channel = 'auto_debit' AND EXISTS (
               SELECT 1 FROM repayments_repaymentattempt p
                WHERE p.bill_id = a.bill_id AND (p.requested_at, p.id) < (a.requested_at, a.id)
           ) THEN 'retry'
           WHEN EXISTS (
               SELECT 1 FROM repayments_reminder r
                WHERE r.bill_id = a.bill_id AND r.status = 'sent'
                  AND r.sent_at <= a.requested_at AND r.sent_at > a.requested_at - interval '3 days'
           ) THEN 'reminder'
           WHEN a.channel = 'auto_debit' THEN 'first_debit'
           ELSE 'customer'
       END AS recovery,
       count(*) AS attempts,
       sum(a.amount) AS amount
  FROM repayments_repaymentattempt a
  JOIN repayments_bill b ON b.id = a.bill_id
  JOIN repayments_customer c ON c.id = b.customer_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding acb ON acb.id = a.card_binding_id
  LEFT JOIN repayments_cardbinding ccb ON ccb.customer_id = b.customer_id AND ccb.status = 'active'
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""

# One row group per month a reminder message went out, bank, the reminder's tier
# (the cadence it was planned with), currency and message channel: how many were
# sent and how many were followed by a succeeded debit of the bill within 72 hours.
REMINDER_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_reminder_rollup AS
SELECT date_trunc('month', n.sent_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       coalesce(cb.bank_code, '') AS bank_code,
       r.risk_tier,
       cl.currency,
       n.channel,
       count(*) AS sent,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM repayments_repaymentattempt a
            WHERE a.bill_id = r.bill_id AND a.status = 'succeeded'
              AND a.completed_at >= n.sent_at AND a.completed_at <= n.sent_at + interval '3 days'
       )) AS paid_within_3_days
  FROM repayments_notification n
  JOIN repayments_reminder r ON r.id = n.reminder_id
  JOIN repayments_bill b ON b.id = r.bill_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
 WHERE n.status = 'sent'
 GROUP BY 1, 2, 3, 4, 5
"""

# Extensions and waivers by the month they were requested. ``amount`` is the late
# fee waived: by the extension (system faults) or the waiver's amount.
RELIEF_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_relief_rollup AS
SELECT x.kind, x.month, coalesce(cb.bank_code, '') AS bank_code, c.risk_tier, cl.currency, x.status, x.reason,
       count(*) AS requests, sum(x.days) AS days, sum(x.amount) AS amount
  FROM (
      SELECT 'extension' AS kind, date_trunc('month', e.created_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
             e.bill_id, e.status, e.reason, e.days, e.late_fee_waived AS amount
        FROM repayments_extension e
      UNION ALL
      SELECT 'waiver', date_trunc('month', w.created_at AT TIME ZONE 'Asia/Shanghai')::date,
             w.bill_id, w.status, w.reason, 0, w.amount
        FROM repayments_waiver w
  ) x
  JOIN repayments_bill b ON b.id = x.bill_id
  JOIN repayments_customer c ON c.id = b.customer_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
 GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

# Per incident and currency of the relieved bills ('' when no relief yet): the
# system-family failures inside its window and scope, and what relief reached.
INCIDENT_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_incident_rollup AS
SELECT i.id AS incident_id, i.bank_code, i.channel, i.status, i.started_at,
       i.ended_at,  -- NULL while open
       date_trunc('month', i.started_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       (SELECT count(*) FROM repayments_repaymentattempt a
          LEFT JOIN repayments_cardbinding acb ON acb.id = a.card_binding_id
         WHERE a.status = 'failed' AND a.failure_family = 'system'
           AND a.requested_at >= i.started_at AND (i.ended_at IS NULL OR a.requested_at <= i.ended_at)
           AND (i.bank_code = '' OR acb.bank_code = i.bank_code)
           AND (i.channel = '' OR a.channel = i.channel)) AS system_failures,
       coalesce(r.currency, '') AS currency,
       coalesce(r.bills, 0) AS relief_bills,
       coalesce(r.applied, 0) AS relief_applied,
       coalesce(r.reversed, 0) AS relief_reversed,
       coalesce(r.amount_owed, 0) AS amount_owed
  FROM repayments_incident i
  LEFT JOIN (
      SELECT rb.incident_id, cl.currency, count(*) AS bills,
             count(*) FILTER (WHERE ri.applied AND NOT ri.reversed) AS applied,
             count(*) FILTER (WHERE ri.reversed) AS reversed,
             sum(ri.amount_owed) FILTER (WHERE ri.applied AND NOT ri.reversed) AS amount_owed
        FROM repayments_reliefitem ri
        JOIN repayments_reliefbatch rb ON rb.id = ri.batch_id
        JOIN repayments_bill b ON b.id = ri.bill_id
        JOIN repayments_creditline cl ON cl.id = b.credit_line_id
       WHERE rb.status <> 'reversed'
       GROUP BY 1, 2
  ) r ON r.incident_id = i.id
"""

REFRESH_LOG = """
CREATE TABLE dashboard_refresh (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    trigger varchar(16) NOT NULL,   -- 'schedule', 'manual', 'command'
    actor_id bigint NULL            -- the staff user of a manual refresh
);
CREATE INDEX dashboard_refresh_finished_idx ON dashboard_refresh (finished_at DESC);
"""

UNIQUE_INDEXES = """
CREATE UNIQUE INDEX dashboard_bill_rollup_key
    ON dashboard_bill_rollup (month, bank_code, risk_tier, currency, status, dpd);
CREATE UNIQUE INDEX dashboard_attempt_rollup_key
    ON dashboard_attempt_rollup (month, bank_code, risk_tier, currency, channel, status, failure_family, recovery);
CREATE UNIQUE INDEX dashboard_reminder_rollup_key
    ON dashboard_reminder_rollup (month, bank_code, risk_tier, currency, channel);
CREATE UNIQUE INDEX dashboard_relief_rollup_key
    ON dashboard_relief_rollup (kind, month, bank_code, risk_tier, currency, status, reason);
CREATE UNIQUE INDEX dashboard_incident_rollup_key ON dashboard_incident_rollup (incident_id, currency);
"""

VIEWS = (
    "dashboard_bill_rollup",
    "dashboard_attempt_rollup",
    "dashboard_reminder_rollup",
    "dashboard_relief_rollup",
    "dashboard_incident_rollup",
)


class Migration(migrations.Migration):
    dependencies = [("repayments", "0004_api")]

    operations = [
        migrations.RunSQL(BILL_ROLLUP, "DROP MATERIALIZED VIEW dashboard_bill_rollup"),
        migrations.RunSQL(ATTEMPT_ROLLUP, "DROP MATERIALIZED VIEW dashboard_attempt_rollup"),
        migrations.RunSQL(REMINDER_ROLLUP, "DROP MATERIALIZED VIEW dashboard_reminder_rollup"),
        migrations.RunSQL(RELIEF_ROLLUP, "DROP MATERIALIZED VIEW dashboard_relief_rollup"),
        migrations.RunSQL(INCIDENT_ROLLUP, "DROP MATERIALIZED VIEW dashboard_incident_rollup"),
        migrations.RunSQL(UNIQUE_INDEXES, migrations.RunSQL.noop),
        migrations.RunSQL(REFRESH_LOG, "DROP TABLE dashboard_refresh"),
    ]
