"""The transparency log over the audit chains, as auditors and citizens reach it: checkpoints, inclusion and
consistency proofs, evidence bundles, and the witness check (the cryptography is tlog's, the storage
app/ledger's).

Every chained log (`CHAINED_LOGS`: face verifications, data access, auditor access) has its tree. An auditor
may read any log's checkpoints and proofs; a citizen may get the inclusion proof of a face-verification or
data-access record about themselves (matched by the keyed pseudonym of their face-bound ID number) — anything
else is 404 to them, so a proof request cannot probe whose records exist. Auditors' checkpoint cuts, proofs
and bundles are logged in the auditor-access log like their queries.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app

from app.accounts.models import Citizen
from app.audit import services as audit
from app.config import ConfigError
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.ledger import checkpoints, tree
from app.ledger.chain import payload_of
from app.ledger.checkpoints import SignedCheckpoint
from app.ledger.witness import witness_from_config
from app.web.health import add_readiness_check
from tlog import note
from tlog.records import canonical_json

logger = logging.getLogger(__name__)

# Citizens may prove the records about themselves in these logs (never the auditors' own log).
CITIZEN_LOGS = ("face-verifications", "data-access")
BUNDLE_FORMAT = "zsb-evidence-bundle/v1"


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    from_size: int
    to_size: int
    hashes: list[bytes]


# ---------------------------------------------------------------------------- wiring, due checkpoints


def init_app(app: Flask) -> None:
    """Refuse to start with a signing key or witness that cannot work (not at the first checkpoint, hours
    later); /readyz fails while any log is behind the checkpoint its witness holds (a rollback or a rewrite)."""
    try:
        app.extensions["audit_signer"] = note.Signer.from_key(app.config["AUDIT_SIGNING_KEY"])
        for key in app.config.get("AUDIT_PREVIOUS_VERIFIER_KEYS") or []:
            note.Verifier.from_key(key)
    except (note.NoteError, ValueError) as exc:
        raise ConfigError(f"AUDIT_SIGNING_KEY / AUDIT_PREVIOUS_VERIFIER_KEYS: {exc}") from None
    try:
        app.extensions["audit_witness"] = witness_from_config(app.config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    add_readiness_check(app, "audit_witness", lambda: not audit.witness_findings())


def cut_due_checkpoints() -> list[SignedCheckpoint]:
    """A checkpoint of each log that grew and whose latest is old enough (the periodic task audit.checkpoints)."""
    cut = (checkpoints.cut_if_due(model.CHAIN) for model in audit.CHAINED_LOGS.values())
    return [signed for signed in cut if signed is not None]


# ------------------------------------------------------------------------------------------- checkpoints


def chain_of(log: str) -> str:
    model = audit.CHAINED_LOGS.get(log)
    if model is None:
        raise NotFound("该日志不存在或尚未启用")
    return model.CHAIN


def current_checkpoint(log: str) -> SignedCheckpoint:
    """The latest signed checkpoint of `log` (the first is cut when there is none yet)."""
    chain = chain_of(log)
    return checkpoints.latest(chain) or checkpoints.cut(chain)


def cut_checkpoint(log: str, *, actor: str, request_id: str) -> SignedCheckpoint:
    """Cut and sign a checkpoint of `log` as it is now; logged first (so an auditor-access cut includes it)."""
    name = chain_of(log)
    audit.record_access(actor, "checkpoint", log, {}, None, request_id)
    return checkpoints.cut(name)


def public_keys() -> list[str]:
    return checkpoints.verifier_keys()


# ------------------------------------------------------------------------------------------------ proofs


def inclusion(log: str, seq: int, size: int | None, *, viewer: Citizen | None, actor: str,
              request_id: str) -> InclusionProof:
    """The inclusion proof of record `seq` in the tree of `size` records (default: the latest checkpoint's,
    cut anew when the record is newer than it). `viewer` is the citizen asking, None for an auditor."""
    chain = chain_of(log)
    model = audit.CHAINED_LOGS[log]
    if viewer is not None:
        _check_about(viewer, log, model, seq)
    else:
        audit.record_access(actor, "proof", log, {"seq": seq, "size": size}, None, request_id)
    if size is None:
        newest = checkpoints.latest(chain)
        size = newest.size if newest is not None and newest.size >= seq else checkpoints.cut(chain).size
    with db.engine.connect() as connection:
        _check_sizes(connection, chain, size, "size")
        if seq > size:
            raise ValidationFailed.field("seq", f"记录 {seq} 不在大小为 {size} 的树中", location="query")
        leaf = tree.leaf_hash(connection, chain, seq - 1)
        if leaf is None:
            raise NotFound("该记录不存在")
        hashes = tree.inclusion_proof(connection, chain, seq - 1, size)
    return InclusionProof(seq - 1, size, leaf, hashes)


def consistency(log: str, from_size: int, to_size: int, *, actor: str, request_id: str) -> ConsistencyProof:
    """The proof that the tree of `to_size` records extends the tree of `from_size` (the log only grew)."""
    chain = chain_of(log)
    if from_size > to_size:
        raise ValidationFailed.field("from", "from 不能大于 to", location="query")
    audit.record_access(actor, "proof", log, {"from": from_size, "to": to_size}, None, request_id)
    with db.engine.connect() as connection:
        _check_sizes(connection, chain, to_size, "to")
        return ConsistencyProof(from_size, to_size, tree.consistency_proof(connection, chain, from_size, to_size))


def _check_sizes(connection, chain: str, size: int, field: str) -> None:
    current = checkpoints.tree_size(connection, chain)
    if size > current:
        raise ValidationFailed.field(field, f"日志目前只有 {current} 条记录", location="query")


def _check_about(citizen: Citizen, log: str, model: type, seq: int) -> None:
    if log not in CITIZEN_LOGS or not citizen.id_number_hash:
        raise NotFound("该记录不存在")
    pseudonym = db.session.scalar(sa.select(model.citizen_pseudonym).where(model.seq == seq))
    if pseudonym != citizen.id_number_hash:
        raise NotFound("该记录不存在")  # the same answer as for a seq that does not exist


# ------------------------------------------------------------------------------------------ evidence bundle


def evidence_bundle(log: str, filters: Mapping, *, actor: str, request_id: str,
                    consistency_from: int | None = None) -> Iterator[str]:
    """The evidence bundle of the records matching `filters` (tlog's format): each record's hashed payload,
    salt and inclusion proof in a checkpoint cut for it, and optionally the consistency proof from an older
    checkpoint size the auditor holds. Logged before the first byte; streamed record by record."""
    view = audit.LOG_VIEWS.get(log)
    if view is None:
        raise NotFound("该日志不存在或尚未启用")
    chain = view.model.CHAIN
    audit.record_access(actor, "export", log, {**filters, "format": "bundle"}, None, request_id)
    signed = checkpoints.cut(chain)
    if consistency_from is not None and consistency_from > signed.size:
        raise ValidationFailed.field("consistency_from", f"日志目前只有 {signed.size} 条记录", location="query")
    conditions = [*view.conditions(filters), view.model.seq <= signed.size]
    return _bundle_lines(log, view.model, conditions, signed, consistency_from)


def _bundle_lines(log: str, model: type, conditions: list, signed: SignedCheckpoint,
                  consistency_from: int | None) -> Iterator[str]:
    chain = model.CHAIN
    head = {"format": BUNDLE_FORMAT, "log": log, "checkpoint": signed.note}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "records": ['
    batch_size = int(current_app.config["AUDIT_EXPORT_BATCH_SIZE"])
    table = model.__table__
    last_seq, first = 0, True
    with db.engine.connect() as connection:
        while True:
            rows = connection.execute(
                sa.select(table).where(*conditions, model.seq > last_seq).order_by(model.seq).limit(batch_size)
            ).mappings().all()
            if not rows:
                break
            parts = []
            for row in rows:
                proof = tree.inclusion_proof(connection, chain, row["seq"] - 1, signed.size)
                parts.append(json.dumps(_bundle_record(model, row, proof), ensure_ascii=False))
            yield ("" if first else ",") + "\n" + ",\n".join(parts)
            first = False
            last_seq = rows[-1]["seq"]
        tail = "\n]"
        if consistency_from is not None:
            hashes = tree.consistency_proof(connection, chain, consistency_from, signed.size)
            tail += ', "consistency": ' + json.dumps(
                {"from": consistency_from, "to": signed.size, "hashes": [_b64(h) for h in hashes]})
    yield tail + "}\n"


def _bundle_record(model: type, row: Mapping, proof: list[bytes]) -> dict:
    # The payload exactly as hashed (datetimes in their one UTC spelling), so the verifier recomputes it.
    payload = json.loads(canonical_json(payload_of(model, row)))
    return {"seq": row["seq"], "leaf_index": row["seq"] - 1, "salt": row["leaf_salt"], "payload": payload,
            "prev_hash": row["prev_hash"], "record_hash": row["record_hash"], "inclusion": [_b64(h) for h in proof]}


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
