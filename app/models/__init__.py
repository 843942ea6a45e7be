"""Every model, imported here so Alembic's autogenerate and create_all (tests) see all tables."""

from app.models.citizen import Citizen
from app.models.staff import StaffUser

__all__ = ["Citizen", "StaffUser"]
from app.models.bundle import Bundle, BundleMatter  # noqa: E402
from app.models.matter import CatalogueState, Department, Material, Matter, MatterVersion  # noqa: E402

__all__ += ["CatalogueState", "Department", "Material", "Matter", "MatterVersion", "Bundle", "BundleMatter"]
from app.models.access_log import AuditorAccessRecord, DataAccessRecord  # noqa: E402
from app.models.application import (  # noqa: E402
    AgentAuthorisation,
    Application,
    ApplicationEvent,
    ApplicationMaterial,
    BundleApplication,
    ConsentReceipt,
    Evaluation,
    IdempotencyRecord,
    PromiseBreach,
    Rectification,
)
from app.models.audit import ChainHead  # noqa: E402
from app.models.connector import Connector, ConnectorEvent  # noqa: E402

__all__ += [
    "AgentAuthorisation",
    "Application",
    "ApplicationEvent",
    "ApplicationMaterial",
    "BundleApplication",
    "Evaluation",
    "IdempotencyRecord",
    "PromiseBreach",
    "Rectification",
    "AuditorAccessRecord",
    "ChainHead",
    "Connector",
    "ConnectorEvent",
    "ConsentReceipt",
    "DataAccessRecord",
]
from app.models.face import BiometricConsent, FaceSession, FaceVerificationRecord  # noqa: E402

__all__ += ["BiometricConsent", "FaceSession", "FaceVerificationRecord"]
from app.models.notification import Notification  # noqa: E402

__all__ += ["Notification"]
