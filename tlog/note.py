"""C2SP signed notes (https://c2sp.org/signed-note): text signed by one or more named keys.

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID ‖ signature)>
    …

The key ID is SHA-256(name ‖ 0x0A ‖ algorithm byte ‖ public key)[:4]; a signature is matched to a trusted
key by name *and* ID together. Keys use the text formats of Go's golang.org/x/mod/sumdb/note, so keys made
by its tools (and the checkpoints of logs built on it) work here unchanged:

    verifier key  <name>+<hex key ID>+<base64(algorithm byte ‖ public key)>
    signer key    PRIVATE+KEY+<name>+<hex key ID>+<base64(algorithm byte ‖ private key)>

Only Ed25519 (algorithm byte 0x01) is implemented. Algorithms are looked up by their byte in `_ALGORITHMS`,
so adding one is a new entry there and nothing else.

Parsing is strict (exactly one accepted spelling of every part). Beyond the spec's rules, `open` also
rejects a note that repeats a signature line or carries two signatures by one trusted key, which Go's
implementation silently drops: no honest signer writes either, and an auditor should hear about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tlog._encoding import b64decode, b64encode, hexdecode

__all__ = [
    "ALG_ED25519", "MAX_SIGNATURES", "KeyFormatError", "NoteError", "OpenedNote", "Signature", "Signer",
    "UnverifiedNoteError", "Verifier", "is_valid_name", "key_id", "open", "sign",
]

ALG_ED25519 = 0x01
#: Notes with more signature lines are rejected before any is checked (the spec asks for a limit ≥ 16).
MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 "  # em dash, space


class NoteError(ValueError):
    """A note is malformed, carries an invalid signature by a trusted key, or none by any trusted key."""


class UnverifiedNoteError(NoteError):
    """A well-formed note that no trusted key signed; `.note` holds it, its signatures all unverified."""

    def __init__(self, note: OpenedNote) -> None:
        super().__init__("note has no signature by a trusted key")
        self.note = note


class KeyFormatError(ValueError):
    """A signer or verifier key string is malformed, of an unknown algorithm, or its key ID is wrong."""


# ----------------------------------------------------------------------------------------- algorithms


@dataclass(frozen=True)
class _Algorithm:
    """One signature type of the spec: how its keys are encoded, loaded and used."""

    label: str
    private_size: int
    public_size: int
    #: private key encoding → (public key encoding, sign(message) → signature)
    load_private: Callable[[bytes], tuple[bytes, Callable[[bytes], bytes]]]
    #: public key encoding → verify(message, signature) → bool
    load_public: Callable[[bytes], Callable[[bytes, bytes], bool]]
    #: a new random private key encoding
    generate: Callable[[], bytes]


def _ed25519_private(seed: bytes) -> tuple[bytes, Callable[[bytes], bytes]]:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.public_key().public_bytes_raw(), key.sign


def _ed25519_public(public: bytes) -> Callable[[bytes, bytes], bool]:
    key = Ed25519PublicKey.from_public_bytes(public)

    def verify(message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return verify


_ALGORITHMS: dict[int, _Algorithm] = {
    # The private key is the 32-byte RFC 8032 seed, as in Go's format.
    ALG_ED25519: _Algorithm("Ed25519", 32, 32, _ed25519_private, _ed25519_public,
                            lambda: Ed25519PrivateKey.generate().private_bytes_raw()),
}


# ------------------------------------------------------------------------------------------------ keys


def is_valid_name(name: object) -> bool:
    """A key name per the spec: non-empty, without Unicode spaces or '+' (nor, as in a note, control chars)."""
    return (isinstance(name, str) and name != "" and "+" not in name
            and not any(char.isspace() or char < " " for char in name) and _encodable(name))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def key_id(name: str, public_key_bytes_with_alg: bytes) -> bytes:
    """The spec's 4-byte key ID: SHA-256(name ‖ 0x0A ‖ algorithm byte ‖ public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + public_key_bytes_with_alg).digest()[:4]


def _algorithm(ident: int) -> _Algorithm:
    try:
        return _ALGORITHMS[ident]
    except KeyError:
        raise KeyFormatError(f"unknown signature algorithm 0x{ident:02x}") from None


def _parse_key(parts: list[str], kind: str) -> tuple[str, bytes, int, bytes]:
    """name, key ID, algorithm byte and key bytes of the split `name`, `hex key ID`, `base64 key` parts."""
    if len(parts) != 3:
        raise KeyFormatError(f"malformed {kind} key: expected <name>+<key ID>+<key>")
    name, id_hex, key_b64 = parts
    if not is_valid_name(name):
        raise KeyFormatError(f"malformed {kind} key: invalid key name {name!r}")
    if len(id_hex) != 8:
        raise KeyFormatError(f"malformed {kind} key: the key ID must be 8 hex digits")
    ident = hexdecode(id_hex, f"{kind} key ID", KeyFormatError)
    raw = b64decode(key_b64, f"{kind} key", KeyFormatError)
    if not raw:
        raise KeyFormatError(f"malformed {kind} key: the key is empty")
    return name, ident, raw[0], raw[1:]


class Verifier:
    """A trusted public key: its name, key ID and algorithm, and the check of its signatures."""

    __slots__ = ("_verify", "algorithm", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key_with_alg: bytes) -> None:
        if not is_valid_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        if not public_key_with_alg:
            raise KeyFormatError("the public key is empty")
        algorithm = _algorithm(public_key_with_alg[0])
        public = bytes(public_key_with_alg[1:])
        if len(public) != algorithm.public_size:
            raise KeyFormatError(f"{algorithm.label} public key is {len(public)} bytes, not {algorithm.public_size}")
        try:
            self._verify = algorithm.load_public(public)
        except ValueError as exc:
            raise KeyFormatError(f"invalid {algorithm.label} public key: {exc}") from None
        self.name = name
        self.algorithm = public_key_with_alg[0]
        self.public_key = public
        self.key_id = key_id(name, bytes(public_key_with_alg))

    @classmethod
    def from_key(cls, text: str) -> Verifier:
        """Parse a verifier key `<name>+<hex key ID>+<base64(algorithm byte ‖ public key)>`."""
        if not isinstance(text, str):
            raise KeyFormatError(f"a verifier key is a string, not {type(text).__name__}")
        name, ident, algorithm, public = _parse_key(text.split("+", 2), "verifier")
        verifier = cls(name, bytes([algorithm]) + public)
        if verifier.key_id != ident:
            raise KeyFormatError(f"verifier key {name}: key ID {ident.hex()} does not match the key "
                                 f"({verifier.key_id.hex()})")
        return verifier

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether `sig` (without the key ID) is this key's signature of `msg`."""
        return self._verify(bytes(msg), bytes(sig))

    def verifier_key(self) -> str:
        """The verifier key string, as `from_key` reads it."""
        return f"{self.name}+{self.key_id.hex()}+{b64encode(bytes([self.algorithm]) + self.public_key)}"

    def _identity(self) -> tuple[str, int, bytes]:
        return self.name, self.algorithm, self.public_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"Verifier({self.verifier_key()!r})"


class Signer:
    """A private key with its name: signs notes. Its repr never shows the key."""

    __slots__ = ("_private", "_public", "_sign", "algorithm", "key_id", "name")

    def __init__(self, name: str, private_key: bytes, algorithm: int = ALG_ED25519) -> None:
        if not is_valid_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        spec = _algorithm(algorithm)
        if len(private_key) != spec.private_size:
            raise KeyFormatError(f"{spec.label} private key is {len(private_key)} bytes, not {spec.private_size}")
        try:
            public, self._sign = spec.load_private(bytes(private_key))
        except ValueError as exc:
            raise KeyFormatError(f"invalid {spec.label} private key: {exc}") from None
        self.name = name
        self.algorithm = algorithm
        self._private = bytes(private_key)
        self._public = bytes([algorithm]) + public
        self.key_id = key_id(name, self._public)

    @classmethod
    def from_key(cls, text: str) -> Signer:
        """Parse a signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(algorithm byte ‖ private key)>`.

        The key ID is of the public key, so it is checked once that is derived: a key ID that does not match
        is a mangled or mislabelled key.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"a signer key is a string, not {type(text).__name__}")
        parts = text.split("+", 4)
        if parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("malformed signer key: it must start with PRIVATE+KEY+")
        name, ident, algorithm, private = _parse_key(parts[2:], "signer")
        signer = cls(name, private, algorithm)
        if signer.key_id != ident:
            raise KeyFormatError(f"signer key {name}: key ID {ident.hex()} does not match the key")
        return signer

    @classmethod
    def generate(cls, name: str, algorithm: int = ALG_ED25519) -> Signer:
        """A new random key named `name`."""
        return cls(name, _algorithm(algorithm).generate(), algorithm)

    def sign(self, msg: bytes) -> bytes:
        """The signature of `msg` (without the key ID)."""
        return self._sign(bytes(msg))

    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64encode(self._public)}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self._public)

    def private_key_text(self) -> str:
        """The signer key string, as `from_key` reads it. Secret: store it like a password."""
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{b64encode(bytes([self.algorithm]) + self._private)}"

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()!r})"


# ----------------------------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: `verified` by trusted keys, `unverified` by unknown ones."""

    text: str
    verified: list[Signature]
    unverified: list[Signature]


def _check_text(text: str, what: str) -> bytes:
    """`text` as UTF-8, or NoteError when it has control characters other than newline or lone surrogates."""
    for position, char in enumerate(text):
        if char < " " and char != "\n":
            raise NoteError(f"malformed note: {what} has control character U+{ord(char):04X} at {position}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"malformed note: {what} is not valid UTF-8") from None


def sign(text: str, *signers: Signer) -> str:
    """The signed note of `text` (which ends in a newline) with one signature line per signer, in order."""
    if not isinstance(text, str):
        raise TypeError(f"note text must be str, not {type(text).__name__}")
    if not text.endswith("\n"):
        raise NoteError("malformed note: the text must end with a newline")
    message = _check_text(text, "the text")
    if not signers:
        raise NoteError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    keys = [(signer.name, signer.key_id) for signer in signers]
    if len(set(keys)) != len(keys):
        raise NoteError("the same key is given twice")
    for name, _ in keys:
        if not is_valid_name(name):
            raise NoteError(f"invalid signer name {name!r}")
    lines = [Signature(signer.name, signer.key_id, signer.sign(message)).line for signer in signers]
    return text + "\n" + "".join(lines)


def _parse_signature(line: str, number: int) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"malformed note: signature line {number} does not start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX):].partition(" ")
    if not space:
        raise NoteError(f"malformed note: signature line {number} has no space between key name and signature")
    if not is_valid_name(name):
        raise NoteError(f"malformed note: signature line {number} has an invalid key name {name!r}")
    raw = b64decode(encoded, f"malformed note: signature line {number}", NoteError)
    if len(raw) < 5:
        raise NoteError(f"malformed note: signature line {number} is too short for a key ID and a signature")
    return Signature(name, raw[:4], raw[4:])


def _trusted(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], list[Verifier]]:
    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for verifier in verifiers:
        same = known.setdefault((verifier.name, verifier.key_id), [])
        if verifier not in same:
            same.append(verifier)
    return known


def open(note: str | bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse `note` and check its signatures against the trusted `verifiers`.

    Returns the note when at least one trusted key signed it and every signature by a trusted key is valid
    (signatures by unknown keys are kept, unchecked, in `.unverified`: a witness's cosignature, a rotated
    key). Raises NoteError for a malformed note, an invalid signature, or a duplicate, and
    UnverifiedNoteError (a NoteError) when no trusted key signed it.
    """
    if isinstance(note, bytes | bytearray):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("malformed note: not valid UTF-8") from None
    if not isinstance(note, str):
        raise NoteError(f"a note is text, not {type(note).__name__}")
    _check_text(note, "the note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block:
        raise NoteError("malformed note: no signatures after the blank line")
    if not block.endswith("\n"):
        raise NoteError("malformed note: the last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    known = _trusted(verifiers)
    message = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen_lines: set[str] = set()
    seen_keys: set[tuple[str, bytes]] = set()
    for number, line in enumerate(lines, 1):
        signature = _parse_signature(line, number)
        if line in seen_lines:
            raise NoteError(f"malformed note: signature line {number} repeats an earlier one")
        seen_lines.add(line)
        key = (signature.name, signature.key_id)
        label = f"{signature.name}+{signature.key_id.hex()}"
        candidates = known.get(key)
        if not candidates:
            unverified.append(signature)
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {label}: two trusted keys share its name and key ID")
        if key in seen_keys:
            raise NoteError(f"two signatures by key {label}")
        seen_keys.add(key)
        if not candidates[0].verify(message, signature.signature):
            raise NoteError(f"invalid signature for key {label}")
        verified.append(signature)
    if not verified:
        raise UnverifiedNoteError(OpenedNote(text, [], unverified))
    return OpenedNote(text, verified, unverified)
