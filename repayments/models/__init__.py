"""The credit domain: customers, credit lines, card bindings, bills, repayment attempts.

Money fields are ``Decimal`` with two places in the credit line's currency
(``CreditLine.currency``); dates are business-time (Asia/Shanghai) calendar dates;
datetimes are UTC. Personal data is encrypted (``baitiao.pii``) with a keyed hash
for exact lookup and the last digits in clear for display and search.

The models live in modules by concern; everything is importable from here.
"""

from repayments.models.bills import (  # noqa: F401
    OPEN_BILL_STATUSES,
    Bill,
    BillQuerySet,
    BillStatus,
    FailureFamily,
    outstanding_expression,
    outstanding_sql,
    principal_owed_expression,
    principal_owed_sql,
)
from repayments.models.casework import (  # noqa: F401
    ApprovalStatus,
    BureauSuppression,
    CustomerNote,
    Extension,
    ExtensionReason,
    Waiver,
)
from repayments.models.collection import (  # noqa: F401
    IN_FLIGHT_ATTEMPT_STATUSES,
    AttemptStatus,
    BindingRepairCase,
    Channel,
    FailureCode,
    GatewayReviewItem,
    IdempotencyKey,
    RepairCaseStatus,
    RepaymentAttempt,
    ReviewReason,
)
from repayments.models.customers import (  # noqa: F401
    MONEY,
    CardBinding,
    CardBindingStatus,
    CardType,
    CreditLine,
    CreditLineStatus,
    Customer,
    DataSource,
    RiskTier,
)
from repayments.models.exports import (  # noqa: F401
    ExportFileChunk,
    ExportJob,
    ExportJobStatus,
)
from repayments.models.imports import (  # noqa: F401
    ImportJob,
    ImportJobStatus,
    ImportUploadChunk,
)
from repayments.models.incidents import (  # noqa: F401
    Incident,
    IncidentSource,
    IncidentStatus,
    ReliefBatch,
    ReliefItem,
    ReliefSkipReason,
    ReliefStatus,
)
from repayments.models.notifications import (  # noqa: F401
    NoticeDropReason,
    Notification,
    NotificationChannel,
    NotificationEvent,
    NotificationStatus,
    Reminder,
)
from repayments.models.sql import SQL_CODES  # noqa: F401
