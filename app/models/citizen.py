"""A citizen account: one per mini-program openid, with an optional bound real name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import IdMixin, TimestampMixin, UTCDateTime


class Citizen(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "citizens"

    openid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64))
    # WeChat's session_key stays on the server (BRIEF §5), encrypted like other secrets at rest.
    session_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # Real name and ID number: encrypted (app/pii.py); the hash is the lookup key and enforces one account
    # per ID number. Responses show only the masked number.
    real_name_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    real_name_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    face_verified_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def real_name_verified(self) -> bool:
        return self.real_name_verified_at is not None
