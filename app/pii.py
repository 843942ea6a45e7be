"""Personal data at rest: authenticated encryption with rotatable keys, and keyed pseudonyms.

- `encrypt`/`decrypt`: Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet, so DATA_ENCRYPTION_KEYS can
  list a new key first and older keys after it: old ciphertexts still decrypt and `reencrypt` moves them on.
- `pseudonym`: HMAC-SHA256 under PSEUDONYM_KEY, for lookups (one ID number binds one account) and for log
  records, which must never hold a plaintext name or ID number.
- `mask_id_number`: what a response may show of an ID number.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app


class PiiVault:
    """Encrypts, decrypts and pseudonymises personal data with the keys of one deployment."""

    def __init__(self, *, encryption_keys: list[str], pseudonym_key: str):
        if not encryption_keys:
            raise ValueError("at least one data encryption key is required")
        self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in encryption_keys])
        self._pseudonym_key = pseudonym_key.encode()

    @classmethod
    def from_config(cls, config) -> PiiVault:
        keys = [k for k in (config["DATA_ENCRYPTION_KEYS"] or "").split(",") if k.strip()]
        return cls(encryption_keys=keys, pseudonym_key=config["PSEUDONYM_KEY"])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("ciphertext does not decrypt under any configured key") from exc

    def encrypt_bytes(self, data: bytes) -> bytes:
        """A token (URL-safe base64 text, as bytes) sealing `data`: for files (uploads)."""
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise ValueError("ciphertext does not decrypt under any configured key") from exc

    def reencrypt_bytes(self, token: bytes) -> bytes:
        return self._fernet.rotate(token)

    def reencrypt(self, token: str) -> str:
        """The same plaintext under the newest key (for key rotation)."""
        return self._fernet.rotate(token.encode()).decode()

    def pseudonym(self, value: str, *, kind: str = "id") -> str:
        """A stable keyed hash of `value`; `kind` separates namespaces (an ID number vs an openid)."""
        return hmac.new(self._pseudonym_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def mask_id_number(id_number: str) -> str:
    """`410105198503120013` → `4101**********0013`: region prefix and last four only."""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def init_app(app: Flask) -> None:
    app.extensions["pii"] = PiiVault.from_config(app.config)


def vault() -> PiiVault:
    """The vault of the current app."""
    return current_app.extensions["pii"]
