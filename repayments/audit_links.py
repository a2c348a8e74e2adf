"""Links from an audit event to the repayments rows it is about (``accounts.links``).

Registered in ``RepaymentsConfig.ready``. Each linker loads the target by its
primary key (one query) and returns ``None`` when the row is gone or the reader may
not open the page, so the audit event page never shows a dead or forbidden link.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.links import TargetLink, register_target_link
from accounts.models import User


def _pk(target_id: str) -> int | None:
    return int(target_id) if target_id.isascii() and target_id.isdigit() and len(target_id) <= 18 else None


def customer_link(target_id: str, reader: User) -> TargetLink | None:
    """A customer's page (``view_customer``)."""
    from repayments.models import Customer

    pk = _pk(target_id)
    if pk is None or not reader.has_perm("repayments.view_customer"):
        return None
    customer_no = Customer.objects.filter(pk=pk).values_list("customer_no", flat=True).first()
    if customer_no is None:
        return None
    return TargetLink(label=customer_no, url=reverse("console:customer-detail", args=[customer_no]))


def bill_link(target_id: str, reader: User) -> TargetLink | None:
    """The bill on its customer's page (``view_customer``)."""
    from repayments.models import Bill

    pk = _pk(target_id)
    if pk is None or not reader.has_perm("repayments.view_customer"):
        return None
    row = Bill.objects.filter(pk=pk).values_list("bill_no", "customer__customer_no").first()
    if row is None:
        return None
    bill_no, customer_no = row
    return TargetLink(label=bill_no, url=reverse("console:customer-detail", args=[customer_no]))


def incident_link(target_id: str, reader: User) -> TargetLink | None:
    """An incident's page (``manage_incident``)."""
    from repayments.models import Incident

    pk = _pk(target_id)
    if pk is None or not reader.has_perm("repayments.manage_incident") or not Incident.objects.filter(pk=pk).exists():
        return None
    return TargetLink(label=_("Incident #%(pk)s") % {"pk": pk}, url=reverse("console:incident-detail", args=[pk]))


def relief_batch_link(target_id: str, reader: User) -> TargetLink | None:
    """A relief batch on its incident's page (``manage_incident``), or its events in the trail otherwise."""
    from repayments.models import ReliefBatch

    pk = _pk(target_id)
    if pk is None:
        return None
    row = ReliefBatch.objects.filter(pk=pk).values_list("incident_id", "audit_id").first()
    if row is None:
        return None
    incident_id, audit_id = row
    label = _("Relief batch #%(pk)s") % {"pk": pk}
    if reader.has_perm("repayments.manage_incident"):
        return TargetLink(label=label, url=reverse("console:incident-detail", args=[incident_id]))
    return TargetLink(label=label, url=reverse("accounts:audit") + f"?batch={audit_id}")


def import_job_link(target_id: str, reader: User) -> TargetLink | None:
    """An import job's page (``import_data``)."""
    from repayments.models import ImportJob

    pk = _pk(target_id)
    if pk is None or not reader.has_perm("repayments.import_data") or not ImportJob.objects.filter(pk=pk).exists():
        return None
    return TargetLink(label=_("Import job #%(pk)s") % {"pk": pk}, url=reverse("data:import-job", args=[pk]))


def register() -> None:
    """Register every linker of this app with ``accounts.links``."""
    register_target_link("repayments.customer", customer_link)
    register_target_link("repayments.bill", bill_link)
    register_target_link("repayments.incident", incident_link)
    register_target_link("repayments.reliefbatch", relief_batch_link)
    register_target_link("repayments.importjob", import_job_link)
