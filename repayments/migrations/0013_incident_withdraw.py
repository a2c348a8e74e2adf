"""Incidents can be withdrawn (declared by mistake), pending relief cancelled; the impact rollup counts reversals.

``dashboard_incident_rollup`` (0005) read only batches that were not reversed, so
after a reversal its relieved and reversed counts fell to 0. It now counts, per
incident and currency, the bills of every batch that was not cancelled: relieved
(relief applied, reversed since or not), reversed, and what is owed on the bills
whose relief is in force. The view reads ``repayments_incident.status``, whose
column grows here, so it is dropped first and built again at the end.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


ROLLUP_COLUMNS = """
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
"""

INCIDENT_ROLLUP = (
    "CREATE MATERIALIZED VIEW dashboard_incident_rollup AS"
    + ROLLUP_COLUMNS
    + """
  LEFT JOIN (
      SELECT rb.incident_id, cl.currency, count(DISTINCT ri.bill_id) AS bills,
             count(*) FILTER (WHERE ri.applied) AS applied,
             count(*) FILTER (WHERE ri.reversed) AS reversed,
             sum(ri.amount_owed) FILTER (WHERE ri.applied AND NOT ri.reversed) AS amount_owed
        FROM repayments_reliefitem ri
        JOIN repayments_reliefbatch rb ON rb.id = ri.batch_id
        JOIN repayments_bill b ON b.id = ri.bill_id
        JOIN repayments_creditline cl ON cl.id = b.credit_line_id
       WHERE rb.status <> 'cancelled'
       GROUP BY 1, 2
  ) r ON r.incident_id = i.id;
CREATE UNIQUE INDEX dashboard_incident_rollup_key ON dashboard_incident_rollup (incident_id, currency);
"""
)

# 0005's definition, for going back.
OLD_INCIDENT_ROLLUP = (
    "CREATE MATERIALIZED VIEW dashboard_incident_rollup AS"
    + ROLLUP_COLUMNS
    + """
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
  ) r ON r.incident_id = i.id;
CREATE UNIQUE INDEX dashboard_incident_rollup_key ON dashboard_incident_rollup (incident_id, currency);
"""
)
DROP_ROLLUP = "DROP MATERIALIZED VIEW dashboard_incident_rollup"


class Migration(migrations.Migration):

    dependencies = [
        ('repayments', '0012_attempt_completed_index_and_dropped_notices'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(DROP_ROLLUP, OLD_INCIDENT_ROLLUP),
        migrations.RemoveConstraint(
            model_name='incident',
            name='incident_resolved_has_end',
        ),
        migrations.RemoveConstraint(
            model_name='reliefbatch',
            name='relief_one_live_per_incident',
        ),
        migrations.RemoveConstraint(
            model_name='reliefbatch',
            name='relief_approved_has_approver',
        ),
        migrations.AddField(
            model_name='incident',
            name='withdraw_reason',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='incident',
            name='withdrawn_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='incident',
            name='withdrawn_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='incident',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('resolved', 'Resolved'), ('withdrawn', 'Withdrawn')], default='open', max_length=10),
        ),
        migrations.AlterField(
            model_name='reliefbatch',
            name='status',
            field=models.CharField(choices=[('requested', 'Awaiting approval'), ('approved', 'Approved, queued'), ('running', 'Running'), ('done', 'Applied'), ('reversed', 'Reversed'), ('cancelled', 'Cancelled')], default='requested', max_length=10),
        ),
        migrations.AddConstraint(
            model_name='incident',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('ended_at__isnull', True), ('status', 'open')), models.Q(('ended_at__isnull', False), ('status', 'resolved')), models.Q(('status', 'withdrawn'), ('withdrawn_at__isnull', False)), _connector='OR'), name='incident_resolved_has_end'),
        ),
        migrations.AddConstraint(
            model_name='reliefbatch',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['reversed', 'cancelled']), _negated=True), fields=('incident',), name='relief_one_live_per_incident'),
        ),
        migrations.AddConstraint(
            model_name='reliefbatch',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['requested', 'cancelled']), ('approved_by__isnull', False), _connector='OR'), name='relief_approved_has_approver'),
        ),
        migrations.RunSQL(INCIDENT_ROLLUP, DROP_ROLLUP),
    ]
