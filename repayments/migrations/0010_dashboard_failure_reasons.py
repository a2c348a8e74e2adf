"""The dashboard's failed debits by reason code (issue #16): a sixth rollup.

A new, small view rather than a wider ``dashboard_attempt_rollup``: failed attempts
only, grouped by the filter dimensions, the failure family and the bank's failure
code. Its unique index over every grouping column lets it be refreshed
``CONCURRENTLY`` like the others (``repayments/services/dashboard.py``).
"""

from django.db import migrations

FAILURE_REASON_ROLLUP = """
CREATE MATERIALIZED VIEW dashboard_failure_reason_rollup AS
SELECT date_trunc('month', a.requested_at AT TIME ZONE 'Asia/Shanghai')::date AS month,
       coalesce(acb.bank_code, ccb.bank_code, '') AS bank_code,
       c.risk_tier,
       cl.currency,
       a.failure_family,
       a.failure_code,
       count(*) AS attempts
  FROM repayments_repaymentattempt a
  JOIN repayments_bill b ON b.id = a.bill_id
  JOIN repayments_customer c ON c.id = b.customer_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding acb ON acb.id = a.card_binding_id
  LEFT JOIN repayments_cardbinding ccb ON ccb.customer_id = b.customer_id AND ccb.status = 'active'
 WHERE a.status = 'failed'
 GROUP BY 1, 2, 3, 4, 5, 6;
CREATE UNIQUE INDEX dashboard_failure_reason_rollup_key
    ON dashboard_failure_reason_rollup (month, bank_code, risk_tier, currency, failure_family, failure_code);
"""


class Migration(migrations.Migration):
    dependencies = [("repayments", "0009_import_job_heartbeat_and_upload_chunks")]

    operations = [
        migrations.RunSQL(FAILURE_REASON_ROLLUP, "DROP MATERIALIZED VIEW dashboard_failure_reason_rollup"),
    ]
