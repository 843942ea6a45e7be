"""Strict decoding shared by the parsers: one accepted spelling per value, so signed text is unambiguous."""

from __future__ import annotations

import base64
import binascii
import re

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX = re.compile(r"[0-9a-f]*")


def b64decode(text: str, what: str, error: type[ValueError] = ValueError) -> bytes:
    """Standard, padded base64 (RFC 4648 §4) in its canonical spelling only, else `error`.

    Python's decoder accepts non-zero padding bits, so several strings decode to the same bytes; re-encoding
    and comparing rejects all but the one a conforming encoder writes.
    """
    if not isinstance(text, str):
        raise error(f"{what} must be a base64 string, not {type(text).__name__}")
    if not _B64.fullmatch(text):
        raise error(f"{what} is not base64 (characters outside the standard alphabet)")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise error(f"{what} is not valid base64 ({exc})") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    return raw


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hexdecode(text: str, what: str, error: type[ValueError] = ValueError, *, size: int | None = None) -> bytes:
    """Lower-case hex (the spelling every producer here writes), optionally of exactly `size` bytes."""
    if not isinstance(text, str):
        raise error(f"{what} must be a hex string, not {type(text).__name__}")
    if len(text) % 2 or not _HEX.fullmatch(text):
        raise error(f"{what} is not lower-case hex")
    raw = bytes.fromhex(text)
    if size is not None and len(raw) != size:
        raise error(f"{what} is {len(raw)} bytes, not {size}")
    return raw
