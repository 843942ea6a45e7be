"""Uploaded materials: content checks, and storage behind a small interface, addressed by content hash.

`check_upload` decides what a file is from its first bytes (`sniff`), never from its name or the client's
Content-Type, and refuses empty, oversized and not-allowed files with typed errors. `UploadStorage` keeps the
bytes under their SHA-256: the key is the hash, so an identical file is stored once and a stored object can be
checked against its key. Implementations are chosen by UPLOAD_STORAGE: `local` (a directory, the default) or
`memory` (tests and demos). Either way the bytes are encrypted at rest with the data-encryption keys.

Because identical content shares one key, `delete(key)` removes it for every record that refers to it: delete
only when no record refers to the key any more.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app

from app.config import ConfigError
from app.errors import AppError, NotFound, ValidationFailed
from app.pii import PiiVault

EXTENSION = "uploads"
DEFAULT_ALLOWED_TYPES = ("application/pdf", "image/jpeg", "image/png")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# Leading bytes of each accepted type. No library for this: `filetype` and `puremagic` recognise these three
# formats by the same prefixes, and python-magic needs the C libmagic; three constants do not justify a
# dependency. A type that needs more than a prefix (an OOXML document is a ZIP) would.
# The PDF header must come first: readers accept it anywhere in the first 1024 bytes, but other bytes in front
# of it are how HTML/ZIP-and-PDF polyglots are made, and scanners and phones never write any.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
# How the types are named to citizens in error messages.
TYPE_LABELS = {"application/pdf": "PDF", "image/jpeg": "JPG", "image/png": "PNG"}

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")


class UploadEmpty(ValidationFailed):
    status_code, error, message = 422, "upload_empty", "上传的文件为空,请重新选择文件"


class UploadTypeNotAllowed(ValidationFailed):
    status_code, error, message = 422, "upload_type_not_allowed", "不支持该文件类型"


class UploadTooLarge(AppError):
    status_code, error, message = 413, "payload_too_large", "提交的内容过大"


class UploadNotFound(NotFound):
    status_code, error, message = 404, "upload_not_found", "文件不存在或已被删除"


class InvalidKey(ValueError):
    """A storage key that is not one `put` returns (it could point outside the storage)."""


def sniff(data: bytes) -> str | None:
    """The MIME type of `data` by its leading bytes, for the types uploads accept; None for anything else."""
    for signature, mime in SIGNATURES:
        if data.startswith(signature):
            return mime
    return None


def check_upload(data: bytes, *, allowed: Iterable[str], max_bytes: int) -> str:
    """The MIME type of an acceptable upload; UploadEmpty, UploadTooLarge or UploadTypeNotAllowed otherwise."""
    allowed = list(allowed)
    if not data:
        raise UploadEmpty()
    if len(data) > max_bytes:
        raise UploadTooLarge(f"文件过大,单个文件不能超过 {_human_size(max_bytes)}")
    mime = sniff(data)
    if mime is None or mime not in allowed:
        labels = "、".join(TYPE_LABELS.get(t, t) for t in allowed)
        raise UploadTypeNotAllowed(f"不支持该文件类型,请上传 {labels} 格式的文件")
    return mime


def _human_size(size: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + " " + unit
    return f"{size} 字节"


@dataclass(frozen=True)
class StoredObject:
    """What `put` stored: its key, the SHA-256 of the bytes (hex) and their length."""

    key: str
    sha256: str
    size: int


def check_key(key: object) -> str:
    """`key` if it has the shape of a key `put` returns (64 lowercase hex digits); InvalidKey otherwise."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidKey(f"not an upload key: {key!r}")
    return key


class UploadStorage(ABC):
    """Where uploaded bytes live, addressed by the SHA-256 of their plaintext (the key), encrypted at rest.

    The bytes are sealed with the deployment's data-encryption keys (app/pii.py: Fernet through MultiFernet, so
    a key rotation still opens older files and `flask reencrypt` moves them on) before an implementation
    writes them: a copied disk or bucket holds no readable identity document. The key stays the plaintext's
    hash, so identical uploads still share one object. Files written before encryption came in (plain bytes,
    which begin with their format's signature, never with a Fernet token's) are still read as they are."""

    #: the UPLOAD_STORAGE value that selects this implementation
    name: str

    def __init__(self, *, vault: PiiVault) -> None:
        self.vault = vault  # seals and opens the bytes

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping) -> UploadStorage:
        """An instance configured from the app's settings."""

    def put(self, data: bytes) -> StoredObject:
        """Store `data` (once: storing the same bytes again keeps the one copy) and say where it is."""
        digest = _digest(data)
        if not self.exists(digest):
            self._write(digest, self.vault.encrypt_bytes(data))
        return StoredObject(key=digest, sha256=digest, size=len(data))

    def open(self, key: str) -> bytes:
        """The bytes stored under `key`; UploadNotFound when there are none, InvalidKey for a malformed key."""
        blob = self._read(check_key(key))
        return blob if sniff(blob) else self.vault.decrypt_bytes(blob)

    def reencrypt(self, key: str) -> None:
        """Seal the object under `key` with the newest key (a plain legacy file too)."""
        blob = self._read(check_key(key))
        self._write(key, self.vault.encrypt_bytes(blob) if sniff(blob) else self.vault.reencrypt_bytes(blob))

    @abstractmethod
    def _write(self, key: str, blob: bytes) -> None:
        """Put `blob` under `key`, replacing what is there, all at once (a reader never sees half of it)."""

    @abstractmethod
    def _read(self, key: str) -> bytes:
        """The blob under `key`; UploadNotFound when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under `key` (nothing happens when there is none); shared by every identical upload."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""


STORAGES: dict[str, type[UploadStorage]] = {}


def register(cls: type[UploadStorage]) -> type[UploadStorage]:
    """Make an implementation selectable by its `name` in UPLOAD_STORAGE."""
    STORAGES[cls.name] = cls
    return cls


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@register
class LocalDirectoryStorage(UploadStorage):
    """Files in a directory: `<root>/ab/cd/abcd…` (two levels of prefixes keep directories small)."""

    name = "local"

    def __init__(self, *, root: str | os.PathLike, vault: PiiVault):
        super().__init__(vault=vault)
        self.root = Path(root)
        # Uploads are identity documents: readable by the service's user only.
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    @classmethod
    def from_config(cls, config: Mapping) -> LocalDirectoryStorage:
        """UPLOAD_DIR, or `uploads` under INSTANCE_DIR when unset."""
        root = config.get("UPLOAD_DIR") or Path(config["INSTANCE_DIR"]) / "uploads"
        try:
            return cls(root=root, vault=PiiVault.from_config(config))
        except OSError as exc:
            raise ConfigError(f"UPLOAD_DIR: cannot create {str(root)!r}: {exc.strerror}") from exc

    def _path(self, key: str) -> Path:
        key = check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def _write(self, key: str, blob: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written aside and renamed into place: a reader or a crash never sees half a file under a key, and
        # two concurrent puts of the same bytes each rename a complete copy.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(blob)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise UploadNotFound() from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


@register
class MemoryStorage(UploadStorage):
    """Objects in a dict of this process: for tests and demos (lost on restart, invisible to other workers)."""

    name = "memory"

    def __init__(self, *, vault: PiiVault):
        super().__init__(vault=vault)
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping) -> MemoryStorage:
        return cls(vault=PiiVault.from_config(config))

    def _write(self, key: str, blob: bytes) -> None:
        with self._lock:
            self._objects[key] = bytes(blob)

    def _read(self, key: str) -> bytes:
        with self._lock:
            data = self._objects.get(key)
        if data is None:
            raise UploadNotFound()
        return data

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)

    def exists(self, key: str) -> bool:
        with self._lock:
            return check_key(key) in self._objects


def allowed_types(config: Mapping) -> list[str]:
    """UPLOAD_ALLOWED_TYPES as a list (a comma-separated string is accepted too); ConfigError if unusable."""
    raw = config.get("UPLOAD_ALLOWED_TYPES")
    if raw is None:
        return list(DEFAULT_ALLOWED_TYPES)
    types = [t.strip() for t in (raw.split(",") if isinstance(raw, str) else raw) if t.strip()]
    if not types:
        raise ConfigError("UPLOAD_ALLOWED_TYPES must name at least one type")
    known = {mime for _, mime in SIGNATURES}
    # A type the sniffer cannot recognise would refuse every file of it: say so at startup instead.
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ConfigError(f"UPLOAD_ALLOWED_TYPES: {', '.join(unknown)} cannot be recognised (known: "
                          f"{', '.join(sorted(known))})")
    return types


def max_bytes(config: Mapping) -> int:
    """UPLOAD_MAX_BYTES; ConfigError unless it is a positive integer."""
    value = config.get("UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"UPLOAD_MAX_BYTES must be a positive number of bytes, got {value!r}")
    return value


def create_storage(config: Mapping) -> UploadStorage:
    """The implementation UPLOAD_STORAGE names, configured; ConfigError for an unknown or unsafe choice."""
    name = str(config.get("UPLOAD_STORAGE") or "local").strip()
    try:
        cls = STORAGES[name]
    except KeyError:
        raise ConfigError(f"UPLOAD_STORAGE must be one of {sorted(STORAGES)}, got {name!r}") from None
    if name == "memory" and config.get("APP_ENV") == "production":
        raise ConfigError("UPLOAD_STORAGE=memory loses uploads on restart and between workers: not in production")
    return cls.from_config(config)


def init_app(app: Flask) -> None:
    """Check the upload settings and build the storage at startup, into app.extensions."""
    allowed_types(app.config)
    max_bytes(app.config)
    app.extensions[EXTENSION] = create_storage(app.config)


def upload_storage() -> UploadStorage:
    """The current app's upload storage (built on first use when the factory did not call init_app)."""
    storage = current_app.extensions.get(EXTENSION)
    if storage is None:
        storage = current_app.extensions.setdefault(EXTENSION, create_storage(current_app.config))
    return storage


def check_app_upload(data: bytes) -> str:
    """`check_upload` with the current app's UPLOAD_ALLOWED_TYPES and UPLOAD_MAX_BYTES."""
    return check_upload(data, allowed=allowed_types(current_app.config), max_bytes=max_bytes(current_app.config))
