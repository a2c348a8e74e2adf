"""Revolving statements (issue #14): carried-forward statements, the open statement's delinquency.

A UCI statement balance already carries every earlier unpaid amount, so an older
statement is closed as ``carried_forward`` (its unpaid rest is owed on the next
statement) instead of being owed again. Existing rows are re-expressed without
losing money: ``revolving`` bills and ``paid`` bills that still showed money
outstanding become ``carried_forward`` with that amount carried. (A database
loaded before this migration still has the old per-month delinquency on its older
open bills; reload the dataset into an empty database to get the new mapping,
``docs/dataset.md``.)

The dashboard's bill rollup reads ``status`` (a view blocks the column's type
change): it is dropped first and rebuilt with the one definition of what a bill
owes and the amount carried forward.
"""

import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models


# Money stays where it is: what a revolving or "paid" bill still showed owing is
# carried into the next statement (the data's next balance already holds it).
RE_EXPRESS = """
UPDATE repayments_bill
   SET status = 'carried_forward',
       carried_forward = GREATEST(amount_due + late_fee - late_fee_waived - amount_paid, 0)
 WHERE status IN ('revolving', 'paid')
   AND amount_due + late_fee - late_fee_waived - amount_paid > 0;
UPDATE repayments_bill SET status = 'paid' WHERE status = 'revolving';
"""

# Backwards: a carried-forward statement is "revolving" again (the old vocabulary).
BACK_TO_REVOLVING = "UPDATE repayments_bill SET status = 'revolving', carried_forward = 0 WHERE status = 'carried_forward'"

# 0005's view, for migrating backwards (a migration never imports another's SQL).
OLD_BILL_ROLLUP = """
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
 GROUP BY 1, 2, 3, 4, 5, 6;
CREATE UNIQUE INDEX dashboard_bill_rollup_key
    ON dashboard_bill_rollup (month, bank_code, risk_tier, currency, status, dpd);
"""

# As in 0005, plus the amount carried forward; ``outstanding`` is
# repayments.models.outstanding_sql("b") (the one definition, spelled out here
# because a migration must not change when the code does).
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
       sum(b.carried_forward) AS carried_forward,
       sum(GREATEST(b.amount_due + b.late_fee - b.late_fee_waived - b.amount_paid - b.carried_forward, 0))
           AS outstanding
  FROM repayments_bill b
  JOIN repayments_customer c ON c.id = b.customer_id
  JOIN repayments_creditline cl ON cl.id = b.credit_line_id
  LEFT JOIN repayments_cardbinding cb ON cb.customer_id = b.customer_id AND cb.status = 'active'
 GROUP BY 1, 2, 3, 4, 5, 6;
CREATE UNIQUE INDEX dashboard_bill_rollup_key
    ON dashboard_bill_rollup (month, bank_code, risk_tier, currency, status, dpd);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('repayments', '0007_refresh_dashboard_permission'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL("DROP MATERIALIZED VIEW dashboard_bill_rollup", OLD_BILL_ROLLUP),
        migrations.AddField(
            model_name='bill',
            name='carried_forward',
            field=models.DecimalField(db_default=0, decimal_places=2, default=0, max_digits=14),
        ),
        migrations.AddField(
            model_name='bill',
            name='cycles_past_due',
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='bill',
            name='past_due_amount',
            field=models.DecimalField(db_default=0, decimal_places=2, default=0, max_digits=14),
        ),
        migrations.AddField(
            model_name='bill',
            name='past_due_since',
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='bill',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('overdue', 'Overdue'), ('carried_forward', 'Carried forward'), ('paid', 'Paid'), ('no_balance', 'Nothing due')], default='pending', max_length=16),
        ),
        migrations.RunSQL(RE_EXPRESS, BACK_TO_REVOLVING),
        migrations.AddConstraint(
            model_name='bill',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'paid'), _negated=True), models.Q(('amount_paid__gte', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('amount_due'), '+', models.F('late_fee')), '-', models.F('late_fee_waived'))), ('carried_forward', 0)), _connector='OR'), name='bill_paid_owes_nothing'),
        ),
        migrations.AddConstraint(
            model_name='bill',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('carried_forward', 0), ('status__in', ['pending', 'overdue', 'paid', 'no_balance'])), models.Q(('carried_forward', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('amount_due'), '+', models.F('late_fee')), '-', models.F('late_fee_waived')), '-', models.F('amount_paid'))), ('carried_forward__gt', 0), ('status', 'carried_forward')), _connector='OR'), name='bill_carried_forward_is_the_unpaid_rest'),
        ),
        migrations.AddConstraint(
            model_name='bill',
            constraint=models.CheckConstraint(condition=models.Q(('past_due_amount__gte', 0), ('past_due_amount__lte', models.F('amount_due'))), name='bill_past_due_within_amount_due'),
        ),
        migrations.AddConstraint(
            model_name='bill',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('cycles_past_due', 0), ('past_due_since__isnull', True)), models.Q(('cycles_past_due__gt', 0), ('past_due_since__isnull', False)), _connector='OR'), name='bill_cycles_past_due_with_their_date'),
        ),
        migrations.RunSQL(BILL_ROLLUP, "DROP MATERIALIZED VIEW dashboard_bill_rollup"),
    ]
