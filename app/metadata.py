"""Every model, imported here so Alembic's autogenerate and create_all (tests) see all tables."""

from app.accounts.models import Citizen, StaffUser

__all__ = ["Citizen", "StaffUser"]
from app.catalogue.models import Bundle, BundleMatter, CatalogueState, Department, Material, Matter, MatterVersion  # noqa: E402  # noqa: E402

__all__ += ["CatalogueState", "Department", "Material", "Matter", "MatterVersion", "Bundle", "BundleMatter"]
from app.applications.models import (  # noqa: E402
    AgentAuthorisation,
    Application,
    ApplicationEvent,
    ApplicationMaterial,
    BundleApplication,
    ConsentReceipt,
    Evaluation,
    IdempotencyRecord,
    ProactiveNotice,
    ProactiveOptIn,
    PromiseBreach,
    Rectification,
)
from app.connectors.models import AuditorAccessRecord, Connector, ConnectorEvent, DataAccessRecord  # noqa: E402  # noqa: E402
from app.ledger.models import ChainHead  # noqa: E402

__all__ += [
    "AgentAuthorisation",
    "Application",
    "ApplicationEvent",
    "ApplicationMaterial",
    "BundleApplication",
    "Evaluation",
    "IdempotencyRecord",
    "ProactiveNotice",
    "ProactiveOptIn",
    "PromiseBreach",
    "Rectification",
    "AuditorAccessRecord",
    "ChainHead",
    "Connector",
    "ConnectorEvent",
    "ConsentReceipt",
    "DataAccessRecord",
]
from app.face.models import BiometricConsent, FaceSession, FaceVerificationRecord  # noqa: E402

__all__ += ["BiometricConsent", "FaceSession", "FaceVerificationRecord"]
from app.notifications.models import Notification  # noqa: E402

__all__ += ["Notification"]
