"""Audit chains: their head rows, the columns every chained record shares and the hashing contract (see
app/ledger/chain.py, which writes and verifies the chains)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import UTCDateTime


class ChainHead(db.Model):
    """The newest record of one chain: locked by each writer, so appends are serialized per chain."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)


class ChainColumns:
    """seq / prev_hash / record_hash / recorded_at, for every chained log table."""

    seq: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    record_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class ChainedRecord:
    """Mixin contract for a log model: `CHAIN` names the chain; `chain_payload()` is what gets hashed.

    Models define columns `seq`, `prev_hash`, `record_hash`, `recorded_at` and the fields listed in
    `HASHED_FIELDS`; every hashed field is a column, so the verifier can recompute hashes from rows alone.
    """

    CHAIN: str = ""
    HASHED_FIELDS: tuple[str, ...] = ()

    def chain_payload(self) -> dict:
        payload = {name: getattr(self, name) for name in self.HASHED_FIELDS}
        payload.update(chain=self.CHAIN, seq=self.seq, recorded_at=self.recorded_at)
        return payload
