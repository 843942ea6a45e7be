"""Every model, imported here so Alembic's autogenerate and create_all (tests) see all tables."""

from app.models.citizen import Citizen
from app.models.staff import StaffUser

__all__ = ["Citizen", "StaffUser"]
