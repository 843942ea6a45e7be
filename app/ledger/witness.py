"""Witnesses: where each signed checkpoint is also published, outside the database it describes.

The database is the only witness of its own history otherwise: an operator who deletes the tail of a chain,
rolls its head and its tree back, or restores an older backup leaves a log that is consistent with itself. A
checkpoint kept elsewhere is what such a log can no longer match (BRIEF §4.12, RFC 9162's gossip, Go's
checksum database witnesses). `flask audit verify`, POST /api/v1/audit/verify and /readyz compare the
database with the latest checkpoint its witness holds.

Implementations, chosen by AUDIT_WITNESS:
- `file`: one JSON line per checkpoint appended to AUDIT_WITNESS_FILE (opened for appending only, flushed and
  fsynced before the checkpoint counts as published). Put it on storage the database's operators cannot
  rewrite: another host's mount, a WORM bucket synchronised from it, or a file shipped to the audit office.
- `none`: no witness (development and tests only; production refuses it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol


class Witness(Protocol):
    """Keeps the checkpoints it is given, and answers with the latest one of a log."""

    name: str

    def publish(self, origin: str, size: int, note: str) -> None:
        """Keep the signed checkpoint `note` of `origin` at `size`; raise OSError when it cannot."""

    def latest(self, origin: str) -> str | None:
        """The signed checkpoint of `origin` with the largest size this witness holds (None: none yet)."""


class NoWitness:
    name = "none"

    def publish(self, origin: str, size: int, note: str) -> None:
        return None

    def latest(self, origin: str) -> str | None:
        return None


class FileWitness:
    """An append-only file of JSON lines `{"origin", "size", "note"}`; read incrementally from where it was
    last read, so asking for the latest checkpoint costs one stat of the file."""

    name = "file"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._offset = 0
        self._head = b""  # the file's first bytes when last read: another file (replaced, recreated) differs
        self._latest: dict[str, tuple[int, str]] = {}

    def publish(self, origin: str, size: int, note: str) -> None:
        line = json.dumps({"origin": origin, "size": size, "note": note}, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # O_APPEND: each write lands at the end whatever other processes append; one write per line.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def latest(self, origin: str) -> str | None:
        with self._lock:
            self._read_new_lines()
            found = self._latest.get(origin)
        return found[1] if found else None

    def _read_new_lines(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._offset, self._latest, self._head = 0, {}, b""
            return
        size = stat.st_size
        with self.path.open("rb") as handle:
            head = handle.read(256)
            if size < self._offset or head[:len(self._head)] != self._head:
                self._offset, self._latest = 0, {}  # cut or replaced: read it again from the start
            self._head = head
            if size == self._offset:
                return
            handle.seek(self._offset)
            chunk = handle.read(size - self._offset)
        complete = chunk.rfind(b"\n") + 1  # a line being written by another process is read next time
        for raw in chunk[:complete].splitlines():
            try:
                entry = json.loads(raw)
                origin, entry_size, note = entry["origin"], int(entry["size"]), entry["note"]
            except (ValueError, KeyError, TypeError):
                continue  # not ours to judge here: the verifier reads the note's signature, not this line
            if entry_size >= self._latest.get(origin, (-1, ""))[0]:
                self._latest[origin] = (entry_size, note)
        self._offset += complete


WITNESSES = {"file": FileWitness, "none": NoWitness}


def witness_from_config(config) -> Witness:
    """The witness AUDIT_WITNESS names (ValueError for an unknown one)."""
    name = config.get("AUDIT_WITNESS") or "file"
    if name == "file":
        return FileWitness(config["AUDIT_WITNESS_FILE"])
    if name == "none":
        return NoWitness()
    raise ValueError(f"AUDIT_WITNESS must be one of {sorted(WITNESSES)}, got {name!r}")
