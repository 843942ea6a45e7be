"""Every model, imported here so Alembic's autogenerate and create_all (tests) see all tables."""

from app.models.citizen import Citizen
from app.models.staff import StaffUser

__all__ = ["Citizen", "StaffUser"]
from app.models.bundle import Bundle, BundleMatter  # noqa: E402
from app.models.matter import CatalogueState, Department, Material, Matter, MatterVersion  # noqa: E402

__all__ += ["CatalogueState", "Department", "Material", "Matter", "MatterVersion", "Bundle", "BundleMatter"]
