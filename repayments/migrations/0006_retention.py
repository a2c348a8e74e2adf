"""Retention (issue #8): when a customer's personal data was erased, and the index the job reads."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("repayments", "0005_dashboard")]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="anonymized_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="creditline",
            index=models.Index(
                condition=models.Q(("status", "closed")),
                fields=["status_changed_at"],
                name="credit_line_closed_idx",
            ),
        ),
    ]
