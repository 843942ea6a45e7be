"""Signed checkpoints of the chains' Merkle trees, and their witness.

A checkpoint (C2SP tlog-checkpoint) names the log (its origin, "<AUDIT_LOG_ORIGIN>/<chain>"), a tree size and
the root hash at that size; it is signed as a C2SP signed note with the key of AUDIT_SIGNING_KEY (Ed25519:
deterministic, so two processes cutting the same size produce the very same note — a race cannot make two
checkpoints of one size). A checkpoint is published to the witness (app/ledger/witness.py) before it is
stored, so every checkpoint the service has handed out is also held outside its database.

What an auditor does with them (docs/operations.md): keep the checkpoints they fetch; ask for a consistency
proof from a kept one to a newer one (the log only grew); verify records' inclusion proofs against one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.ledger import tree
from app.ledger.models import ChainHead
from app.ledger.models import Checkpoint as CheckpointRow
from app.ledger.witness import Witness, witness_from_config
from app.modelbase import new_id, utcnow
from tlog import note
from tlog.checkpoint import Checkpoint, CheckpointError

_ROWS = CheckpointRow.__table__
_HEADS = ChainHead.__table__


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as stored and served: the parsed fields and the signed note itself."""

    chain: str
    size: int
    root_hash: bytes
    note: str
    created_at: datetime | None = None

    @property
    def origin(self) -> str:
        return Checkpoint.parse(note_text(self.note)).origin


def origin(chain: str) -> str:
    return f"{current_app.config['AUDIT_LOG_ORIGIN'].rstrip('/')}/{chain}"


def signer() -> note.Signer:
    """The checkpoint signer of AUDIT_SIGNING_KEY (parsed once per app)."""
    cached = current_app.extensions.get("audit_signer")
    if cached is None:
        cached = current_app.extensions["audit_signer"] = note.Signer.from_key(current_app.config["AUDIT_SIGNING_KEY"])
    return cached


def verifier_keys() -> list[str]:
    """The signed-note verifier keys of the current signing key and of the retired ones (rotation)."""
    keys = [signer().verifier_key()]
    keys += [key for key in current_app.config.get("AUDIT_PREVIOUS_VERIFIER_KEYS") or [] if key not in keys]
    return keys


def verifiers() -> list[note.Verifier]:
    return [note.Verifier.from_key(key) for key in verifier_keys()]


def witness() -> Witness:
    cached = current_app.extensions.get("audit_witness")
    if cached is None:
        cached = current_app.extensions["audit_witness"] = witness_from_config(current_app.config)
    return cached


def note_text(signed: str) -> str:
    """The checkpoint text of a signed note (before the blank line that starts the signatures)."""
    return signed.split("\n\n", 1)[0] + "\n"


# ------------------------------------------------------------------------------------------------ cutting


def cut(chain: str) -> SignedCheckpoint:
    """A signed checkpoint of `chain`'s tree as it is now (the stored one when that size has one already)."""
    with db.engine.connect() as connection:
        size = tree_size(connection, chain)
        existing = _stored(connection, chain, size)
        if existing is not None:
            return existing
        root = tree.root(connection, chain, size)
    signed = note.sign(Checkpoint(origin(chain), size, root).to_text(), signer())
    # Published before stored: a checkpoint anyone may have seen is always in the witness too.
    witness().publish(origin(chain), size, signed)
    with db.engine.begin() as connection:
        try:
            with connection.begin_nested():
                connection.execute(_ROWS.insert().values(
                    id=new_id(), chain=chain, tree_size=size,
                    root_hash=root.hex(), note=signed, created_at=utcnow()))
        except IntegrityError:
            pass  # another process cut this size first: the same note, byte for byte
        return _stored(connection, chain, size)


def cut_if_due(chain: str, *, now: datetime | None = None) -> SignedCheckpoint | None:
    """Cut a checkpoint when the tree grew since the latest one and that one is AUDIT_CHECKPOINT_SECONDS old."""
    now = now or utcnow()
    every = timedelta(seconds=float(current_app.config["AUDIT_CHECKPOINT_SECONDS"]))
    with db.engine.connect() as connection:
        size = tree_size(connection, chain)
        newest = latest(chain, connection=connection)
    if newest is not None and (newest.size >= size or (newest.created_at and now - newest.created_at < every)):
        return None
    if newest is None and size == 0:
        return None
    return cut(chain)


def latest(chain: str, *, connection: Connection | None = None) -> SignedCheckpoint | None:
    """The stored checkpoint of `chain` with the largest size."""
    query = sa.select(_ROWS).where(_ROWS.c.chain == chain).order_by(_ROWS.c.tree_size.desc()).limit(1)
    if connection is None:
        with db.engine.connect() as own:
            row = own.execute(query).mappings().first()
    else:
        row = connection.execute(query).mappings().first()
    return _signed(row) if row else None


def at_size(chain: str, size: int) -> SignedCheckpoint | None:
    with db.engine.connect() as connection:
        return _stored(connection, chain, size)


def tree_size(connection: Connection, chain: str) -> int:
    return connection.execute(sa.select(_HEADS.c.tree_size).where(_HEADS.c.chain == chain)).scalar() or 0


def _stored(connection: Connection, chain: str, size: int) -> SignedCheckpoint | None:
    row = connection.execute(
        sa.select(_ROWS).where(_ROWS.c.chain == chain, _ROWS.c.tree_size == size)).mappings().first()
    return _signed(row) if row else None


def _signed(row) -> SignedCheckpoint:
    return SignedCheckpoint(row["chain"], row["tree_size"], bytes.fromhex(row["root_hash"]), row["note"],
                            row["created_at"])


# ------------------------------------------------------------------------------------------- the witness


@dataclass(frozen=True)
class WitnessFinding:
    """What the witness shows that the database does not: the chain, the witnessed size and why."""

    chain: str
    witnessed_size: int
    reason: str

    def as_dict(self) -> dict:
        return {"log": self.chain, "checkpoint_size": self.witnessed_size, "reason": self.reason}


def check_against_witness(chain: str) -> WitnessFinding | None:
    """Whether `chain`'s tree still holds the latest checkpoint its witness has: no rollback below it (an older
    backup restored, the tail deleted with the head) and the same root at that size (no history rewritten)."""
    published = witness().latest(origin(chain))
    if published is None:
        return None
    try:
        opened = note.open(published, verifiers())
        witnessed = Checkpoint.parse(opened.text)
    except (note.NoteError, CheckpointError) as exc:
        return WitnessFinding(chain, 0, f"the witness's latest checkpoint does not verify: {exc}")
    with db.engine.connect() as connection:
        size = tree_size(connection, chain)
        if size < witnessed.size:
            return WitnessFinding(chain, witnessed.size,
                                  f"the log holds {size} records, fewer than its published checkpoint of size "
                                  f"{witnessed.size}: it was rolled back")
        try:
            root = tree.root(connection, chain, witnessed.size)
        except tree.TreeIncomplete:
            return WitnessFinding(chain, witnessed.size, "the tree no longer holds the published checkpoint's size")
    if root != witnessed.root_hash:
        return WitnessFinding(chain, witnessed.size,
                              "the tree's root at the published checkpoint's size differs: its history was rewritten")
    return None
