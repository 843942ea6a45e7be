"""Evidence bundles: records of a log with the proofs that the log's signed checkpoint commits to them.

An auditor downloads a bundle from the service and checks it offline, trusting nothing but the log's
verifier key (and, optionally, a checkpoint they kept from before):

    {"format": "zsb-evidence-bundle/v1",
     "log": "face-verifications",
     "checkpoint": "<signed note: a C2SP checkpoint signed by the log's key>",
     "records": [{"seq": 7, "leaf_index": 6, "salt": "<hex>", "payload": {…},
                  "prev_hash": "<hex>", "record_hash": "<hex>", "inclusion": ["<base64>", …]}, …],
     "consistency": {"from": 5, "to": 9, "hashes": ["<base64>", …]}}       (optional)

What `verify_bundle` establishes, in order, stopping at the first failure:

1. the checkpoint is signed by a trusted key, well formed, and names this log (origin "<…>/<log>");
2. with a previous checkpoint: it is signed by a trusted key, of the same origin, not larger (else the log
   was rolled back), with the same root when of the same size (else the log shows two views of itself),
   and the bundle's consistency proof from its size verifies (the log only grew since);
3. every record, in increasing seq order: its record_hash is the hash of its prev_hash and payload; its
   prev_hash is the previous record's record_hash when the two are consecutive (64 zeros for seq 1); and
   its leaf, the salted commitment to its payload, is in the checkpoint's tree by its inclusion proof.

The inclusion proofs are what binds a record to the signed checkpoint; the chain fields are checked for
agreement with the service's own hash chain (`flask audit verify`), but the tree does not commit to them.
A malformed bundle is a failing Report that says what is malformed, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tlog import merkle, note, records
from tlog._encoding import b64decode, b64encode, hexdecode
from tlog.checkpoint import Checkpoint, CheckpointError

__all__ = ["BUNDLE_FORMAT", "GENESIS", "BundleError", "Report", "load_bundle", "verify_bundle"]

BUNDLE_FORMAT = "zsb-evidence-bundle/v1"
#: The prev_hash of a chain's first record.
GENESIS = "0" * 64


class BundleError(ValueError):
    """A bundle is not readable JSON of the expected shape."""


@dataclass(frozen=True)
class Report:
    """The outcome of `verify_bundle`.

    `checked` counts the records that passed every check; `first_failure` names what failed first (the
    checkpoint, the previous checkpoint, the consistency proof or a record by its seq) and why.
    """

    ok: bool
    checked: int
    first_failure: str | None
    checkpoint: Checkpoint | None
    log: str | None = None
    previous: Checkpoint | None = None

    def summary(self) -> str:
        """One line for a person: what was verified, or the first failure."""
        if not self.ok:
            return f"FAILED: {self.first_failure}"
        assert self.checkpoint is not None
        line = (f"ok: {self.checked} record{'' if self.checked == 1 else 's'} of {self.log} included in "
                f"checkpoint size {self.checkpoint.size} (root {b64encode(self.checkpoint.root_hash)})")
        if self.previous is not None:
            line += f", consistent with the previous checkpoint of size {self.previous.size}"
        return line


class _Failure(Exception):
    """The first failed check (internal: becomes Report.first_failure)."""


def load_bundle(text: str | bytes) -> Any:
    """Parse a bundle's JSON strictly: duplicate keys and NaN/Infinity are refused, not silently resolved.

    With duplicate keys, what a reader shows and what was hashed could differ, so a bundle with any is no
    evidence of anything. Raises BundleError.
    """
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise BundleError(f"duplicate key {key!r} in the bundle's JSON")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise BundleError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise BundleError("not valid JSON: nested too deeply") from None
    return value  # its shape is verify_bundle's to judge (a failing Report, not an error)


# ---------------------------------------------------------------------------------------------- fields


def _field(mapping: Mapping, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in mapping:
        raise _Failure(f"{where}: missing {key!r}")
    value = mapping[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _Failure(f"{where}: {key!r} must be {_JSON_NAMES.get(names, names)}, not {type(value).__name__}")
    return value


_JSON_NAMES = {"str": "a string", "int": "an integer", "list": "a list", "Mapping": "an object"}


def _count(mapping: Mapping, key: str, where: str, minimum: int = 0) -> int:
    value = _field(mapping, key, int, where)
    if value < minimum:
        raise _Failure(f"{where}: {key!r} must be at least {minimum}, not {value}")
    return value


def _hashes(values: list, where: str) -> list[bytes]:
    hashes = []
    for position, value in enumerate(values):
        try:
            digest = b64decode(value, f"{where}[{position}]")
        except ValueError as exc:
            raise _Failure(str(exc)) from None
        if len(digest) != merkle.HASH_SIZE:
            raise _Failure(f"{where}[{position}] is {len(digest)} bytes, not {merkle.HASH_SIZE}")
        hashes.append(digest)
    return hashes


def _hex(mapping: Mapping, key: str, where: str, size: int | None = None) -> str:
    value = _field(mapping, key, str, where)
    try:
        raw = hexdecode(value, f"{where}: {key!r}", size=size)
    except ValueError as exc:
        raise _Failure(str(exc)) from None
    if not raw:
        raise _Failure(f"{where}: {key!r} is empty")
    return value


# ------------------------------------------------------------------------------------------ checkpoints


def _open_checkpoint(signed: Any, verifiers: Sequence[note.Verifier], what: str) -> Checkpoint:
    if not isinstance(signed, str):
        raise _Failure(f"{what}: must be the signed note's text, not {type(signed).__name__}")
    try:
        opened = note.open(signed, verifiers)
    except note.UnverifiedNoteError as exc:
        names = ", ".join(sorted({f"{s.name}+{s.key_id.hex()}" for s in exc.note.unverified}))
        raise _Failure(f"{what}: not signed by a trusted key (signed by {names})") from None
    except note.NoteError as exc:
        raise _Failure(f"{what}: {exc}") from None
    try:
        return Checkpoint.parse(opened.text)
    except CheckpointError as exc:
        raise _Failure(f"{what}: {exc}") from None


def _check_log(checkpoint: Checkpoint, log: str) -> None:
    # The service names each log's origin "<AUDIT_LOG_ORIGIN>/<log>": the signed origin binds the bundle's
    # (unsigned) log name, so a bundle cannot pass one log's records off as another's.
    if checkpoint.origin != log and not checkpoint.origin.endswith("/" + log):
        raise _Failure(f"checkpoint: origin {checkpoint.origin!r} is not the log {log!r}")


def _check_previous(bundle: Mapping, current: Checkpoint, previous: Checkpoint) -> None:
    if previous.origin != current.origin:
        raise _Failure(f"previous checkpoint: origin {previous.origin!r} is not {current.origin!r}")
    if previous.size > current.size:
        raise _Failure(f"previous checkpoint: size {previous.size} is larger than the bundle's checkpoint size "
                       f"{current.size} (the log was rolled back)")
    if previous.size == current.size:
        if previous.root_hash != current.root_hash:
            raise _Failure(f"previous checkpoint: a different root for the same size {current.size} "
                           "(a split view: the log shows different trees to different readers)")
        return
    if previous.size == 0:
        return  # every tree extends the empty one
    if bundle.get("consistency") is None:
        raise _Failure(f"consistency: the bundle has no consistency proof from the previous checkpoint's size "
                       f"{previous.size}")
    start, hashes = _consistency(bundle, current)
    if start != previous.size:
        raise _Failure(f"consistency: the proof is from size {start}, not the previous checkpoint's "
                       f"{previous.size}")
    try:
        merkle.verify_consistency(previous.size, current.size, hashes, previous.root_hash, current.root_hash)
    except merkle.ProofError as exc:
        raise _Failure(f"consistency: from size {previous.size} to {current.size}: {exc}") from None


def _consistency(bundle: Mapping, current: Checkpoint) -> tuple[int, list[bytes]]:
    proof = bundle["consistency"]
    if not isinstance(proof, Mapping):
        raise _Failure("consistency: must be an object")
    start = _count(proof, "from", "consistency")
    end = _count(proof, "to", "consistency")
    if end != current.size:
        raise _Failure(f"consistency: the proof is to size {end}, not the checkpoint's {current.size}")
    if start > end:
        raise _Failure(f"consistency: 'from' {start} is larger than 'to' {end}")
    return start, _hashes(_field(proof, "hashes", list, "consistency"), "consistency: 'hashes'")


# ---------------------------------------------------------------------------------------------- records


@dataclass
class _Progress:
    checked: int = 0
    checkpoint: Checkpoint | None = None
    previous: Checkpoint | None = None
    log: str | None = None


def _check_record(record: Any, position: int, current: Checkpoint,
                  last: tuple[int, str] | None) -> tuple[int, str]:
    """Check one record; returns its (seq, record_hash) for the next one's chain link."""
    where = f"record #{position + 1}"
    if not isinstance(record, Mapping):
        raise _Failure(f"{where}: must be an object")
    seq = _count(record, "seq", where, minimum=1)
    where = f"record seq {seq}"
    leaf_index = _count(record, "leaf_index", where)
    salt = bytes.fromhex(_hex(record, "salt", where))
    payload = _field(record, "payload", Mapping, where)
    prev_hash = _hex(record, "prev_hash", where, size=32)
    claimed = _hex(record, "record_hash", where, size=32)
    inclusion = _hashes(_field(record, "inclusion", list, where), f"{where}: 'inclusion'")

    if last is not None and seq <= last[0]:
        raise _Failure(f"{where}: out of order (after seq {last[0]}); records must be in increasing seq order")
    if leaf_index != seq - 1:
        raise _Failure(f"{where}: leaf_index {leaf_index} is not seq − 1")
    if leaf_index >= current.size:
        raise _Failure(f"{where}: not in the checkpoint's tree of size {current.size}")
    try:
        computed = records.record_hash(prev_hash, payload)
        leaf_hash = records.record_leaf_hash(salt, payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _Failure(f"{where}: the payload cannot be hashed ({exc})") from None
    if computed != claimed:
        raise _Failure(f"{where}: record_hash does not match its prev_hash and payload (the record was altered)")
    if seq == 1 and prev_hash != GENESIS:
        raise _Failure(f"{where}: the first record's prev_hash must be {GENESIS[:8]}… (64 zeros)")
    if last is not None and seq == last[0] + 1 and prev_hash != last[1]:
        raise _Failure(f"{where}: prev_hash is not record seq {last[0]}'s record_hash (the chain is broken)")
    try:
        merkle.verify_inclusion(leaf_index, current.size, leaf_hash, inclusion, current.root_hash)
    except merkle.ProofError as exc:
        raise _Failure(f"{where}: not included in the checkpoint of size {current.size}: {exc}") from None
    return seq, claimed


# ------------------------------------------------------------------------------------------------ verify


def _verify(bundle: Any, verifiers: Sequence[note.Verifier], previous: str | None, progress: _Progress) -> None:
    if not isinstance(bundle, Mapping):
        raise _Failure("bundle: must be a JSON object")
    form = bundle.get("format")
    if form != BUNDLE_FORMAT:
        raise _Failure(f"bundle: format {form!r} is not {BUNDLE_FORMAT!r}")
    log = _field(bundle, "log", str, "bundle")
    if not log:
        raise _Failure("bundle: 'log' is empty")
    progress.log = log
    entries = _field(bundle, "records", list, "bundle")
    if "checkpoint" not in bundle:
        raise _Failure("bundle: missing 'checkpoint'")
    current = progress.checkpoint = _open_checkpoint(bundle["checkpoint"], verifiers, "checkpoint")
    _check_log(current, log)
    if previous is not None:
        kept = _open_checkpoint(previous, verifiers, "previous checkpoint")
        _check_previous(bundle, current, kept)
        progress.previous = kept
    elif bundle.get("consistency") is not None:
        _consistency(bundle, current)  # well formed, though nothing to check it against
    last: tuple[int, str] | None = None
    for position, record in enumerate(entries):
        last = _check_record(record, position, current, last)
        progress.checked += 1


def verify_bundle(bundle: Mapping, verifiers: Sequence[note.Verifier], previous: str | None = None) -> Report:
    """Verify an evidence bundle against the trusted `verifiers` (and a kept `previous` signed checkpoint).

    Never raises for a bad bundle: the Report says whether everything verified, how many records did, and
    what failed first.
    """
    progress = _Progress()
    try:
        _verify(bundle, verifiers, previous, progress)
    except _Failure as failure:
        return Report(False, progress.checked, str(failure), progress.checkpoint, progress.log, progress.previous)
    return Report(True, progress.checked, None, progress.checkpoint, progress.log, progress.previous)
