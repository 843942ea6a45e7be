"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a log's signed tree head, as note text.

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [<extension line>…]

The text is what the log's key signs (tlog.note), so parsing accepts exactly one spelling of each field: a
size with a leading zero or a root hash in non-canonical base64 would be a second text for the same tree
head, and a verifier comparing checkpoints as text would be fooled by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tlog._encoding import b64decode, b64encode
from tlog.merkle import HASH_SIZE

__all__ = ["Checkpoint", "CheckpointError", "MAX_SIZE"]

#: Tree sizes are unsigned 64-bit integers in every implementation of the format.
MAX_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A checkpoint text is malformed (which line, and why, in the message)."""


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str):
        raise CheckpointError(f"{what} must be a string, not {type(line).__name__}")
    if line == "":
        raise CheckpointError(f"{what} is empty")
    if "\n" in line:
        raise CheckpointError(f"{what} contains a newline")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log (`origin`), how many leaves it had (`size`) and its root hash then."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"tree size must be an int, not {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"tree size {self.size} is outside 0…2⁶⁴−1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        for number, line in enumerate(self.extensions, 1):
            _check_line(line, f"extension line {number}")

    def to_text(self) -> str:
        """The note text: origin, size and base64 root hash, then the extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint of a note text (as `tlog.note.open` returns it); CheckpointError if malformed."""
        if not isinstance(text, str):
            raise CheckpointError(f"a checkpoint is text, not {type(text).__name__}")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"checkpoint text has {len(lines)} line(s); origin, size and root hash are needed")
        origin, size_text, root_text, *extensions = lines
        if origin == "":
            raise CheckpointError("checkpoint origin (line 1) is empty")
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointError(f"checkpoint size (line 2) {size_text!r} is not a decimal without leading zeros")
        size = int(size_text)
        if size > MAX_SIZE:
            raise CheckpointError(f"checkpoint size (line 2) {size_text} is larger than 2⁶⁴−1")
        root_hash = b64decode(root_text, "checkpoint root hash (line 3)", CheckpointError)
        if len(root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash (line 3) is {len(root_hash)} bytes, not {HASH_SIZE}")
        for number, line in enumerate(extensions, 4):
            if line == "":
                raise CheckpointError(f"checkpoint extension line {number} is empty")
        return cls(origin, size, root_hash, tuple(extensions))
