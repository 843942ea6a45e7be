"""The applications' models: the application with its timeline, materials and idempotency records
(application.py), and the records around it: consent receipts, agents' authorisations, bundle applications,
evaluations with their rectifications, false promises."""

from app.applications.models.agents import AgentAuthorisation
from app.applications.models.application import (
    APPLICATION_STATUSES,
    FORM_FIELD_PATTERN,
    MAX_FORM_FIELD_NAME,
    MAX_FORM_LIST,
    MAX_FORM_TEXT,
    STATUS_LABELS,
    Application,
    ApplicationEvent,
    ApplicationMaterial,
    IdempotencyRecord,
)
from app.applications.models.bundles import BundleApplication
from app.applications.models.consent import RECEIPT_VERSION, ConsentReceipt
from app.applications.models.evaluations import (
    GRADE_LABELS,
    GRADES,
    POOR_GRADES,
    RECTIFICATION_LABELS,
    RECTIFICATION_STATUSES,
    Evaluation,
    Rectification,
)
from app.applications.models.proactive import ProactiveNotice, ProactiveOptIn
from app.applications.models.promises import PromiseBreach

__all__ = [
    "APPLICATION_STATUSES", "FORM_FIELD_PATTERN", "GRADES", "GRADE_LABELS", "MAX_FORM_FIELD_NAME", "MAX_FORM_LIST",
    "MAX_FORM_TEXT", "POOR_GRADES", "RECEIPT_VERSION", "RECTIFICATION_LABELS", "RECTIFICATION_STATUSES",
    "STATUS_LABELS", "AgentAuthorisation", "Application", "ApplicationEvent", "ApplicationMaterial",
    "BundleApplication", "ConsentReceipt", "Evaluation", "IdempotencyRecord", "ProactiveNotice", "ProactiveOptIn",
    "PromiseBreach", "Rectification",
]
