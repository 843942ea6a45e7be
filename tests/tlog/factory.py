"""Builds a small log the way the service does (hash chain + salted leaves + signed checkpoints), in memory."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

from tlog import note, records
from tlog._encoding import b64encode
from tlog.bundle import BUNDLE_FORMAT, GENESIS
from tlog.checkpoint import Checkpoint
from tlog.merkle import MemoryTree

LOG = "face-verifications"
ORIGIN = f"zsb.example.gov.cn/audit/{LOG}"


@dataclass
class Log:
    signer: note.Signer
    tree: MemoryTree = field(default_factory=MemoryTree)
    entries: list[dict] = field(default_factory=list)

    def append(self, payload: dict) -> dict:
        seq = len(self.entries) + 1
        prev = self.entries[-1]["record_hash"] if self.entries else GENESIS
        salt = hashlib.sha256(b"salt %d" % seq).digest()[:16]
        entry = {"seq": seq, "salt": salt.hex(), "payload": payload, "prev_hash": prev,
                 "record_hash": records.record_hash(prev, payload)}
        self.tree.append(records.record_leaf_hash(salt, payload))
        self.entries.append(entry)
        return entry

    def checkpoint(self, size: int | None = None, signer: note.Signer | None = None) -> str:
        size = self.tree.size if size is None else size
        text = Checkpoint(ORIGIN, size, self.tree.root(size)).to_text()
        return note.sign(text, signer or self.signer)

    def bundle(self, seqs, size: int | None = None, consistency_from: int | None = None) -> dict:
        size = self.tree.size if size is None else size
        result = {"format": BUNDLE_FORMAT, "log": LOG, "checkpoint": self.checkpoint(size), "records": []}
        for seq in seqs:
            entry = copy.deepcopy(self.entries[seq - 1])
            entry["leaf_index"] = seq - 1
            entry["inclusion"] = [b64encode(h) for h in self.tree.inclusion_proof(seq - 1, size)]
            result["records"].append(entry)
        if consistency_from is not None:
            result["consistency"] = {"from": consistency_from, "to": size, "hashes": [
                b64encode(h) for h in self.tree.consistency_proof(consistency_from, size)]}
        return result


def make_log(size: int = 40, signer: note.Signer | None = None) -> Log:
    log = Log(signer or note.Signer.generate(ORIGIN))
    for seq in range(1, size + 1):
        log.append({"result": "通过" if seq % 3 else "未通过", "score": round(0.5 + seq / 100, 4),
                    "verified_at": f"2026-03-{1 + seq % 28:02d}T08:00:{seq % 60:02d}.000000Z",
                    "citizen": hashlib.sha256(b"citizen %d" % (seq % 7)).hexdigest()})
    return log
