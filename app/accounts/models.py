"""A citizen account: one per mini-program openid, with the identity it claims or is bound to, and how well
that identity is proven (its assurance level).

Assurance (BRIEF lesson 11, NIST SP 800-63A): `none` (logged in only), `claimed` (a name and a valid ID
number, matched against the population registry where one is active: anyone holding leaked data can make
that claim, so it unlocks nothing but the face verification that proves it) and `face` (a face verification
passed for that identity). Claims are not exclusive; a face-bound identity is, which the partial unique index
below enforces: at most one account holds an identity at `face`. A pass for an identity bound elsewhere moves
it (换绑, app/face/services/real_name.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, TimestampMixin, UTCDateTime, utcnow
from app.pii import vault

ASSURANCE_LEVELS = ("none", "claimed", "face")

# A legal name (app/face/services/real_name.py checks it): Chinese characters, parts joined by a middle dot.
# The Basic Multilingual Plane's share: 〇, CJK Unified Ideographs and Extension A (the check also takes
# Extensions B-H, which a JSON Schema pattern without the `u` flag cannot spell).
NAME_CHARS_BMP = "\u3007\u3400-\u4dbf\u4e00-\u9fff"
MIDDLE_DOT = "·"
DOT_LOOKALIKES_TEXT = "•・．‧"  # typed for the middle dot by phone keyboards; read as it
NAME_LENGTH = (2, 30)


def assurance_rank(level: str | None) -> int:
    """`none` < `claimed` < `face`; an unknown or missing level counts as `none`."""
    return ASSURANCE_LEVELS.index(level) if level in ASSURANCE_LEVELS else 0


class Citizen(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "citizens"
    __table_args__ = (
        # One account per identity at `face`; any number may claim it. A partial index on both SQLite and
        # PostgreSQL, so a concurrent second bind of the same identity fails at its commit.
        Index("uq_citizens_face_bound_identity", "id_number_hash", unique=True,
              sqlite_where=text("assurance = 'face'"), postgresql_where=text("assurance = 'face'")),
    )

    openid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64))
    # WeChat's session_key stays on the server (BRIEF §5), encrypted like other secrets at rest.
    session_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # The identity claimed (assurance `claimed`) or bound (`face`): encrypted (app/pii.py); the keyed hash is
    # the lookup key (not unique: claims are not exclusive). Responses show only the masked number.
    real_name_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_encrypted: Mapped[str | None] = mapped_column(Text)
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    assurance: Mapped[str] = mapped_column(String(8), nullable=False, default="none", server_default="none")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Raised whenever the account loses assurance (its identity moved to another account): tokens carry the
    # epoch they were issued in, and one from an earlier epoch is refused (app/accounts/guard.py). It lives in this row,
    # which every authenticated request loads anyway, so the change is seen at once by every process.
    token_epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    face_verified_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def real_name(self) -> str | None:
        """The claimed or bound name, decrypted (for masking or a registry check; never for logs)."""
        return vault().decrypt(self.real_name_encrypted) if self.real_name_encrypted else None

    @property
    def real_name_masked(self) -> str | None:
        """`张伟` → `张*`: the first character only (what responses show)."""
        name = self.real_name
        return name[:1] + "*" * (len(name) - 1) if name else None

    def face_verified(self, *, at: datetime | None = None) -> bool:
        """Whether the face-verified window is open (what 刷脸办 submissions check)."""
        return self.face_verified_until is not None and self.face_verified_until > (at or utcnow())

    @property
    def real_name_verified(self) -> bool:
        """True only when the identity is proven by face (API.md: `real_name_verified`)."""
        return self.assurance == "face"

    @staticmethod
    def without_identity() -> dict:
        """The column values of an account whose identity has gone (back to `none`), for an UPDATE."""
        return {"real_name_encrypted": None, "id_number_encrypted": None, "id_number_hash": None,
                "id_number_masked": None, "assurance": "none", "claimed_at": None, "bound_at": None,
                "face_verified_until": None}


# Staff accounts: admins, bureau operators, reviewers, auditors and agents.

ROLES = ("admin", "bureau", "reviewer", "auditor", "agent")


class StaffUser(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "staff_users"

    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    # A bureau account belongs to one bureau; a reviewer to one department (both codes, see the catalogue).
    bureau_code: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
