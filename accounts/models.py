"""Staff identity and the append-only audit trail."""

from __future__ import annotations

import pgtrigger
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A staff user of the console (never a customer). Roles are groups; see ``accounts.roles``."""

    class Meta:
        db_table = "accounts_user"
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    @property
    def role_labels(self) -> list[str]:
        """The role names in the reader's language, for the top bar."""
        from accounts.roles import ROLE_LABELS

        return [str(ROLE_LABELS.get(name, name)) for name in self.role_names]

    @cached_property
    def role_names(self) -> list[str]:
        """Names of the role groups this user holds, sorted: for display only.

        Cached for a minute (the top bar shows it on every page); permission checks
        never use it, they read the groups' permissions afresh on each request.
        """
        key = f"accounts:role_names:{self.pk}"
        names = cache.get(key)
        if names is None:
            names = sorted(group.name for group in self.groups.all())
            cache.set(key, names, 60)
        return names


class AuditEvent(models.Model):
    """One staff (or system) action, written once and never changed.

    UPDATE and DELETE are rejected by a database trigger, so neither the ORM,
    the admin nor a psql session can rewrite history.
    """

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)  # UTC
    actor = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        help_text=_("Empty for actions of the system itself (jobs, loaders)."),
    )
    actor_label = models.CharField(max_length=150, help_text=_("Username at the time, or 'system'."))
    action = models.CharField(max_length=64, db_index=True)  # dotted: "customer.reveal"
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # The customer the action concerns, so a customer's page and the auditor can find it.
    customer_no = models.CharField(max_length=32, blank=True, db_default="")
    reason = models.TextField(blank=True)
    # DjangoJSONEncoder writes Decimal amounts and dates as strings.
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "accounts_audit_event"
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["target_type", "target_id", "-occurred_at"], name="audit_target_idx"),
            models.Index(fields=["actor", "-occurred_at"], name="audit_actor_idx"),
            models.Index(
                fields=["customer_no", "-occurred_at"], name="audit_customer_idx", condition=~Q(customer_no="")
            ),
            # The trail filtered by request id or relief batch (its audit id is the request id).
            models.Index(fields=["request_id", "-occurred_at"], name="audit_request_idx", condition=~Q(request_id="")),
        ]
        permissions = [
            ("view_audit_trail", "Can view the audit trail"),
            ("export_audit_trail", "Can export the audit trail"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="audit_event_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"
