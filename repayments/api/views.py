"""API views: parse, call one service, serialize. Permissions come from the roles (docs/api.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from django.core import signing
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from baitiao.masking import mask_card
from baitiao.pii import pii_decrypt, pii_encrypt
from repayments import filters
from repayments.api import serializers
from repayments.api.idempotency import IdempotentRequest, idempotent, request_token
from repayments.api.permissions import RolePermission, staff_user
from repayments.gateway.client import BindChallenge
from repayments.models import (
    Bill,
    BindingRepairCase,
    CreditLine,
    Customer,
    Extension,
    Incident,
    ReliefBatch,
    Reminder,
    RepaymentAttempt,
    Waiver,
)
from repayments.services.bindings import card_binding_confirm, card_binding_start, mobile_check
from repayments.services.casework import bill_retry_manual
from repayments.services.errors import RuleViolation
from repayments.services.extensions import extension_decide, extension_request, waiver_decide, waiver_request
from repayments.services.incidents import (
    incident_declare,
    incident_resolve,
    relief_approve,
    relief_request,
    relief_reverse,
)

READ_CUSTOMER = ["repayments.view_customer"]
READ_BILL = ["repayments.view_bill"]
ID_PATTERN = "[0-9]{1,18}"  # fits a bigint: a longer path segment is a 404, not a database error
KEY_PATTERN = "[^/]{1,64}"  # customer_no, bill_no, attempt_no
CHALLENGE_SALT = "baitiao.api.binding-challenge"
CHALLENGE_MAX_AGE_SECONDS = 600


def _version(value: dt.datetime | None) -> str | None:
    """The services' bill version string (``updated_at`` in UTC, ISO 8601) from a parsed time."""
    return value.astimezone(dt.UTC).isoformat() if value else None


def _bill_id(bill_no: str) -> int:
    """The id of the bill numbered ``bill_no``.

    Raises:
        RuleViolation: no such bill (a 400 naming ``bill_no``).
    """
    bill = Bill.objects.filter(bill_no=bill_no).values_list("pk", flat=True).first()
    if bill is None:
        raise RuleViolation("bill_no", _("No bill %(bill)s.") % {"bill": bill_no})
    return bill


class ReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A read-only list + detail guarded by the role permissions."""

    permission_classes = [RolePermission]
    read_permissions: list[str] = READ_BILL
    lookup_value_regex = ID_PATTERN  # natural keys override it with KEY_PATTERN

    @property
    def action_permissions(self) -> dict[str, list[str]]:
        return {"list": self.read_permissions, "retrieve": self.read_permissions, **self.write_permissions}

    @property
    def write_permissions(self) -> dict[str, list[str]]:
        """The actions besides list and retrieve, each with the permissions it needs (none here).

        A subclass overrides it with a class attribute or, when computed, a property.
        """
        return {}

    def initial(self, request: Request, *args, **kwargs) -> None:
        """DRF's checks (credential, role, throttle), then refuse NUL characters in the request line.

        PostgreSQL text cannot hold NUL, so a lookup or filter value with one would
        fail in the database as a server error. Refused before any query, for every
        list, detail and action alike: a path key with one names nothing (404), a
        query parameter with one is a 400 naming it, as django-filter's own text
        filters answer.

        Raises:
            NotFound: a NUL in a path key (``customer_no``, ``bill_no``, an id).
            ValidationError: a NUL in a query parameter's name or value.
        """
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(value) for value in kwargs.values()):
            raise NotFound()
        for name, values in request.query_params.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                attr = name.replace("\x00", "\N{REPLACEMENT CHARACTER}")
                raise ValidationError(
                    {attr: [_("Null characters are not allowed.")]}, code="null_characters_not_allowed"
                )


class CustomerViewSet(ReadViewSet):
    """Customers, personal data masked. Revealing is a console action (with a reason, audited)."""

    queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    filterset_class = filters.CustomerFilter
    lookup_field = "customer_no"
    lookup_value_regex = KEY_PATTERN
    read_permissions = READ_CUSTOMER


class CreditLineViewSet(ReadViewSet):
    """Credit lines by their customer's number: limit, available credit, currency, status."""

    queryset = CreditLine.objects.select_related("customer")
    serializer_class = serializers.CreditLineSerializer
    filterset_class = filters.CreditLineFilter
    lookup_field = "customer__customer_no"
    lookup_url_kwarg = "customer_no"
    lookup_value_regex = KEY_PATTERN
    read_permissions = ["repayments.view_creditline"]


class BillViewSet(ReadViewSet):
    """Bills with their bucket and outstanding amount; ``retry`` asks for a debit now."""

    queryset = Bill.objects.select_related("customer", "credit_line").with_bucket()
    serializer_class = serializers.BillSerializer
    filterset_class = filters.BillFilter
    lookup_field = "bill_no"
    lookup_value_regex = KEY_PATTERN
    write_permissions = {"retry": ["repayments.retry_debit"]}

    @extend_schema(request=serializers.RetrySerializer, responses=serializers.BillSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def retry(self, request: IdempotentRequest, bill_no: str) -> Response:
        """Debit the bill now (idempotent: a second request never makes a second debit)."""
        data = _valid(serializers.RetrySerializer, request)
        bill = get_object_or_404(Bill, bill_no=bill_no)
        bill_retry_manual(bill_id=bill.pk, actor=staff_user(request), bill_version=_version(data.get("bill_version")))
        return Response(self.get_serializer(self.get_queryset().get(pk=bill.pk)).data)


class AttemptViewSet(ReadViewSet):
    """Repayment attempts by attempt number, the card masked; filter by status, family, channel, bill, time."""

    queryset = RepaymentAttempt.objects.select_related("bill", "card_binding")
    serializer_class = serializers.AttemptSerializer
    filterset_class = filters.AttemptFilter
    lookup_field = "attempt_no"
    lookup_value_regex = KEY_PATTERN
    read_permissions = ["repayments.view_repaymentattempt"]


class ReminderViewSet(ReadViewSet):
    """Planned, sent and skipped reminders; filter by bill, status, risk tier, scheduled time."""

    queryset = Reminder.objects.select_related("bill")
    serializer_class = serializers.ReminderSerializer
    filterset_class = filters.ReminderFilter


def _valid(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _ApprovalViewSet(ReadViewSet):
    """Shared shape of extensions and waivers: request (maker), approve/reject (checker).

    A subclass names its serializers and permissions and implements
    :meth:`submit` and :meth:`decide` with its service.
    """

    request_serializer: type[serializers.StrictSerializer]
    request_permission: str
    approve_permission: str

    @property
    def write_permissions(self) -> dict[str, list[str]]:
        return {
            "create": [self.request_permission],
            "approve": [self.approve_permission],
            "reject": [self.approve_permission],
        }

    def submit(self, data: dict, request: IdempotentRequest, bill_id: int) -> Extension | Waiver:
        """Call the request service (maker) with validated ``data``; return the new request."""
        raise NotImplementedError

    def decide(self, item_id: int, user: User, *, approve: bool, note: str) -> Extension | Waiver:
        """Call the decision service (checker); return the decided request."""
        raise NotImplementedError

    @idempotent
    def create(self, request: IdempotentRequest) -> Response:
        data = _valid(self.request_serializer, request)
        item = self.submit(data, request, _bill_id(data["bill_no"]))
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request: IdempotentRequest, pk: str) -> Response:
        return self._decide(request, pk, approve=True)

    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request: IdempotentRequest, pk: str) -> Response:
        return self._decide(request, pk, approve=False)

    def _decide(self, request: Request, pk: str, *, approve: bool) -> Response:
        data = _valid(serializers.DecisionSerializer, request)
        item = get_object_or_404(self.get_queryset().model, pk=_int(pk))
        decided = self.decide(item.pk, staff_user(request), approve=approve, note=data["note"])
        return Response(self.get_serializer(self.get_queryset().get(pk=decided.pk)).data)


def _approval_schema(request_serializer: type):
    return extend_schema_view(
        create=extend_schema(request=request_serializer),
        approve=extend_schema(request=serializers.DecisionSerializer),
        reject=extend_schema(request=serializers.DecisionSerializer),
    )


@_approval_schema(serializers.ExtensionRequestSerializer)
class ExtensionViewSet(_ApprovalViewSet):
    """Extension requests: within the agent policy applied at once, otherwise awaiting a supervisor."""

    queryset = Extension.objects.select_related("bill", "customer", "requested_by", "decided_by")
    serializer_class = serializers.ExtensionSerializer
    filterset_class = filters.ExtensionFilter
    request_serializer = serializers.ExtensionRequestSerializer
    request_permission = "repayments.request_extension"
    approve_permission = "repayments.approve_extension"

    def submit(self, data: dict, request: IdempotentRequest, bill_id: int) -> Extension:
        user = staff_user(request)
        return extension_request(
            bill_id=bill_id,
            requested_by=user,
            days=data["days"],
            reason=data["reason"],
            note=data["note"],
            request_token=request_token(user.pk, request.idempotency_key),
            bill_version=_version(data.get("bill_version")),
        )

    def decide(self, item_id: int, user: User, *, approve: bool, note: str) -> Extension:
        return extension_decide(extension_id=item_id, decided_by=user, approve=approve, note=note)


@_approval_schema(serializers.WaiverRequestSerializer)
class WaiverViewSet(_ApprovalViewSet):
    """Late-fee waivers: under the agent limit applied at once, otherwise awaiting a supervisor."""

    queryset = Waiver.objects.select_related("bill", "customer", "requested_by", "decided_by")
    serializer_class = serializers.WaiverSerializer
    filterset_class = filters.WaiverFilter
    request_serializer = serializers.WaiverRequestSerializer
    request_permission = "repayments.request_waiver"
    approve_permission = "repayments.approve_waiver"

    def submit(self, data: dict, request: IdempotentRequest, bill_id: int) -> Waiver:
        user = staff_user(request)
        return waiver_request(
            bill_id=bill_id,
            requested_by=user,
            amount=data["amount"],
            reason=data["reason"],
            note=data["note"],
            request_token=request_token(user.pk, request.idempotency_key),
            bill_version=_version(data.get("bill_version")),
        )

    def decide(self, item_id: int, user: User, *, approve: bool, note: str) -> Waiver:
        return waiver_decide(waiver_id=item_id, decided_by=user, approve=approve, note=note)


class BindingRepairViewSet(ReadViewSet):
    """Binding-repair cases, and the two steps of binding a new card through the bank's SMS code.

    ``start`` sends the full card number to the bank and nowhere else; the answer
    carries a signed ``challenge`` (bank request id, BIN, last four; no secret)
    that ``confirm`` sends back with the code, so any web process can finish it.
    """

    queryset = BindingRepairCase.objects.select_related("customer", "card_binding", "new_binding")
    serializer_class = serializers.RepairCaseSerializer
    filterset_class = filters.RepairCaseFilter
    read_permissions = ["repayments.view_cardbinding"]
    write_permissions = {"start": ["repayments.repair_card_binding"], "confirm": ["repayments.repair_card_binding"]}

    @extend_schema(request=serializers.BindingStartSerializer, responses=serializers.BindingChallengeSerializer)
    @action(detail=False, methods=["post"])
    def start(self, request: Request) -> Response:
        data = _valid(serializers.BindingStartSerializer, request)
        user = staff_user(request)
        customer = get_object_or_404(Customer, customer_no=data["customer_no"])
        challenge = card_binding_start(
            customer=customer,
            card_number=data["card_number"],
            reserved_phone=data["reserved_phone"],
            actor=user,
        )
        # The reserved phone the bank texted travels encrypted inside the signed challenge, so
        # confirm binds exactly that phone (as the console keeps it in the session).
        phone = pii_encrypt(mobile_check(data["reserved_phone"]))
        token = signing.dumps(
            {"c": customer.customer_no, "u": user.pk, "p": phone, **asdict(challenge)},
            salt=CHALLENGE_SALT,
            compress=True,
        )
        body = {
            "challenge": token,
            "card": mask_card(challenge.last4, challenge.bin),
            "bank_name": challenge.bank_name,
            "expires_in": CHALLENGE_MAX_AGE_SECONDS,
        }
        return Response(serializers.BindingChallengeSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.BindingConfirmSerializer, responses=serializers.CardBindingSerializer)
    @action(detail=False, methods=["post"])
    def confirm(self, request: Request) -> Response:
        """Finish the binding with the SMS code.

        Not wrapped in an Idempotency-Key transaction: the service calls the bank
        before its own transaction, and the bank's request id is single-use, so a
        retried confirm is refused by the bank instead of binding twice; the retry
        debit it triggers is guarded by the one-debit-in-flight rule.
        """
        data = _valid(serializers.BindingConfirmSerializer, request)
        try:
            payload = signing.loads(data["challenge"], salt=CHALLENGE_SALT, max_age=CHALLENGE_MAX_AGE_SECONDS)
        except signing.BadSignature:  # also SignatureExpired
            raise RuleViolation("challenge", _("The challenge is invalid or expired; start again.")) from None
        user = staff_user(request)
        if payload.pop("u") != user.pk:
            raise RuleViolation("challenge", _("This challenge was issued to another user."))
        customer = get_object_or_404(Customer, customer_no=payload.pop("c"))
        phone = pii_decrypt(payload.pop("p"))
        binding = card_binding_confirm(
            customer=customer,
            challenge=BindChallenge(**payload),
            sms_code=data["sms_code"],
            reserved_phone=phone,
            actor=user,
            reason=data["reason"],
        )
        return Response(serializers.CardBindingSerializer(binding).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    create=extend_schema(request=serializers.IncidentDeclareSerializer),
    resolve=extend_schema(request=serializers.IncidentResolveSerializer),
    relief=extend_schema(
        request=serializers.ReliefRequestSerializer,
        responses={201: serializers.ReliefBatchSerializer},
    ),
)
class IncidentViewSet(ReadViewSet):
    """System-fault incidents: declare, resolve, and ask for a relief batch (docs/incidents.md)."""

    queryset = Incident.objects.select_related("declared_by", "resolved_by")
    serializer_class = serializers.IncidentSerializer
    filterset_class = filters.IncidentFilter
    read_permissions = ["repayments.manage_incident"]
    write_permissions = {
        "create": ["repayments.manage_incident"],
        "resolve": ["repayments.manage_incident"],
        "relief": ["repayments.manage_incident"],
    }

    def create(self, request: Request) -> Response:
        data = _valid(serializers.IncidentDeclareSerializer, request)
        incident = incident_declare(declared_by=staff_user(request), **data)
        return Response(self.get_serializer(incident).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        data = _valid(serializers.IncidentResolveSerializer, request)
        incident = get_object_or_404(Incident, pk=_int(pk))
        incident = incident_resolve(incident_id=incident.pk, resolved_by=staff_user(request), ended_at=data["ended_at"])
        return Response(self.get_serializer(incident).data)

    @action(detail=True, methods=["post"])
    @idempotent
    def relief(self, request: IdempotentRequest, pk: str) -> Response:
        data = _valid(serializers.ReliefRequestSerializer, request)
        incident = get_object_or_404(Incident, pk=_int(pk))
        batch = relief_request(
            incident_id=incident.pk, requested_by=staff_user(request), days=data["days"], note=data["note"]
        )
        return Response(serializers.ReliefBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    approve=extend_schema(request=None),
    reverse=extend_schema(request=serializers.ReliefReverseSerializer),
)
class ReliefBatchViewSet(ReadViewSet):
    """Relief batches: a second supervisor approves (the run is queued); reversal undoes one, once."""

    queryset = ReliefBatch.objects.select_related("requested_by", "approved_by")
    serializer_class = serializers.ReliefBatchSerializer
    filterset_class = filters.ReliefBatchFilter
    read_permissions = ["repayments.manage_incident"]
    write_permissions = {"approve": ["repayments.manage_incident"], "reverse": ["repayments.manage_incident"]}

    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request: IdempotentRequest, pk: str) -> Response:
        batch = get_object_or_404(ReliefBatch, pk=_int(pk))
        return Response(self.get_serializer(relief_approve(batch_id=batch.pk, approved_by=staff_user(request))).data)

    @action(detail=True, methods=["post"])
    @idempotent
    def reverse(self, request: IdempotentRequest, pk: str) -> Response:
        data = _valid(serializers.ReliefReverseSerializer, request)
        batch = get_object_or_404(ReliefBatch, pk=_int(pk))
        batch = relief_reverse(batch_id=batch.pk, reversed_by=staff_user(request), reason=data["reason"])
        return Response(self.get_serializer(batch).data)


def _int(value: str) -> int:
    """A path id; anything that is not a small positive integer finds nothing (404)."""
    return int(value) if value.isdigit() and len(value) < 19 else 0


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([AllowAny])
def not_found(request: Request) -> Response:
    """Any path under ``/api/v1/`` that names no resource: a 404 in the API's error shape."""
    raise NotFound()
