"""Audit chains: their head rows, the columns every chained record shares and the hashing contract (see
app/ledger/chain.py, which writes and verifies the chains)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.modelbase import IdMixin, UTCDateTime, utcnow


class ChainHead(db.Model):
    """The newest record of one chain: locked by each writer, so appends are serialized per chain."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # How many of the chain's records the Merkle tree holds (== seq but while a migrated chain catches up).
    tree_size: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class TreeNode(db.Model):
    """The hash of one complete subtree of a chain's Merkle tree (RFC 9162): level 0 are the leaves, node
    (level, index) covers leaves [index·2^level, (index+1)·2^level). Every proof and root is composed from
    these (tlog.merkle's plans), so nothing is ever recomputed from the records themselves."""

    __tablename__ = "audit_tree_nodes"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class Checkpoint(IdMixin, db.Model):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of a chain's tree: what auditors and the
    witness hold. One per tree size: two different checkpoints of one size would be a split view."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("chain", "tree_size", name="uq_audit_checkpoints_chain_size"),)

    chain: Mapped[str] = mapped_column(String(40), nullable=False)
    tree_size: Mapped[int] = mapped_column(Integer, nullable=False)
    root_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # hex
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class ChainColumns:
    """seq / prev_hash / record_hash / recorded_at, for every chained log table."""

    seq: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
    # The random salt of the record's leaf in the Merkle tree (tlog.records.leaf_data): the tree commits to
    # the record without revealing it, so a proof can be shown while the record stays private.
    leaf_salt: Mapped[str] = mapped_column(String(32), nullable=False)
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


class PendingRecord(db.Model):
    """A record written but not yet in its chain (app/ledger/sequencer/): its own fields, queued by the writer
    in the writer's transaction (durable exactly when the writer's other writes are) and moved into the chain —
    seq, hashes, leaf — by the chain's one sequencer, which deletes the row in the same transaction.

    `id` is the queue's order; `record_id` the record's id, chosen by the writer so callers can refer to the
    record at once. `written_at` is the writer's time and becomes the record's `recorded_at`. `error` is set on
    a row the database refused when the sequencer inserted it (a bug: the writer checks every column first):
    it stays here for an operator, out of the chain's way, instead of stopping the chain or being dropped.
    """

    __tablename__ = "audit_pending"
    # The sequencer's read: one chain's rows in queue order.
    __table_args__ = (Index("ix_audit_pending_chain_id", "chain", "id"),)

    # (INTEGER on SQLite, where only that spelling numbers the rows; SQLite never uses the table.)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), Identity(always=False),
                                    primary_key=True)
    chain: Mapped[str] = mapped_column(String(40), nullable=False)
    record_id: Mapped[str] = mapped_column(String(32), nullable=False)
    fields: Mapped[dict] = mapped_column(JSON, nullable=False)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
