"""Console forms: they parse and check shape; the services decide the rules."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from repayments.bins import bank_choices, bank_label, known_banks
from repayments.models import Channel, ExtensionReason
from repayments.services.casework import REVEALABLE_FIELDS

REASON_CHOICES = [("", _("— choose a reason —")), *ExtensionReason.choices]


class OnceForm(forms.Form):
    """A form carrying a one-time token (double submits) and the bill version it was drawn for (stale pages)."""

    request_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    bill_version = forms.CharField(widget=forms.HiddenInput, required=False)


class ExtensionForm(OnceForm):
    days = forms.IntegerField(
        label=_("Days"),
        min_value=1,
        max_value=settings.EXTENSION_POLICY["max_days"],
        help_text=format_lazy(
            _(
                "Calendar days from the due date, or from today if the bill is already late. "
                "Up to {days} days, once per bill, needs no approval."
            ),
            days=settings.EXTENSION_POLICY["agent_max_days"],
        ),
    )
    # No reason preselected: "system fault" also waives the late fee, so it must be a choice.
    reason = forms.ChoiceField(label=_("Reason"), choices=REASON_CHOICES)
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


class ExtensionPreviewForm(forms.Form):
    """The days and reason of an extension form, read for its preview (the reason may still be empty)."""

    days = ExtensionForm.base_fields["days"]
    reason = forms.ChoiceField(label=_("Reason"), choices=REASON_CHOICES, required=False)


class WaiverForm(OnceForm):
    amount = forms.DecimalField(label=_("Amount to waive"), max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.ChoiceField(label=_("Reason"), choices=REASON_CHOICES)
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


class RevealForm(forms.Form):
    field = forms.ChoiceField(choices=[(name, name) for name in REVEALABLE_FIELDS], widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason"), min_length=5, max_length=500)


class NoteForm(forms.Form):
    body = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class BindingStartForm(forms.Form):
    """The new card as the customer reads it out. Never stored, never logged."""

    card_number = forms.CharField(
        label=_("New card number"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "spellcheck": "false"}),
    )
    reserved_phone = forms.CharField(
        label=_("Reserved phone at the bank"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )


class BindingConfirmForm(forms.Form):
    sms_code = forms.CharField(
        label=_("SMS code"), max_length=8, widget=forms.TextInput(attrs={"autocomplete": "one-time-code"})
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, initial=_("Customer asked to bind a new card"))


class IncidentDeclareForm(forms.Form):
    bank_code = forms.ChoiceField(
        label=_("Bank"),
        required=False,
        help_text=_("The issuer of the customers' cards. Empty: every bank."),
    )
    channel = forms.ChoiceField(
        label=_("Channel"), choices=[("", _("every channel")), *Channel.choices], required=False
    )
    started_at = forms.DateTimeField(
        label=_("Start (business time)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ended_at = forms.DateTimeField(
        label=_("End (business time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        required=False,
        help_text=_("Empty while it lasts; the incident stays open until someone resolves it."),
    )
    description = forms.CharField(label=_("What failed"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The banks we have (the BIN table), labelled in the reader's language; our
        # customers' banks first. The service refuses a code outside the table too.
        ours = bank_choices()
        taken = {code for code, _label in ours}
        others = sorted(
            ((code, bank_label(code)) for code in known_banks() if code not in taken), key=lambda item: item[1]
        )
        field = self.fields["bank_code"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above; narrows the type for mypy
        groups = [(_("Banks of our customers' cards"), ours), (_("Other banks"), others)]
        field.choices = [("", _("every bank")), *((name, banks) for name, banks in groups if banks)]
        field.error_messages["invalid_choice"] = _("“%(value)s” is not a bank we know; choose one from the list.")


class ReliefRequestForm(forms.Form):
    days = forms.IntegerField(
        label=_("Days"),
        min_value=1,
        max_value=settings.INCIDENT_RELIEF["max_days"],
        initial=7,
        help_text=_("Calendar days added to each affected bill's due date."),
    )
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)


class ReliefReverseForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), min_length=5, max_length=500)


class IncidentWithdrawForm(forms.Form):
    # Prefixed: the incident page also holds the Reverse form's "reason" (one id per page).
    prefix = "withdraw"

    reason = forms.CharField(
        label=_("Why withdraw it"),
        min_length=5,
        max_length=500,
        help_text=_("Declared by mistake: say what the mistake was."),
    )
