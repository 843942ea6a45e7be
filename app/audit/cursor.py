"""The opaque cursor of a log query's pages: which record the next page continues after.

It is an encoding, not a secret (auditors may read every record anyway); opaque so clients pass back what
they were given. A cursor we did not issue is refused (ValueError), by the query schema before any view runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}={0,2}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(seq: int) -> str:
    """A cursor that continues after the record with this seq."""
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq a cursor continues after; ValueError for anything we did not issue."""
    try:
        if not _CURSOR.fullmatch(cursor):
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor of this service") from None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**53:
        raise ValueError("not a cursor of this service")
    return after
