"""Writing the face-verification log (the `face-verifications` hash chain, FaceVerificationRecord).

Face sessions (app/face/services/sessions.py) and identity assurance (app/face/services/real_name.py: claims, binds,
rebinds) both write here; records hold keyed pseudonyms of ID numbers and account ids, never a name, an ID
number, an image, an encoding or a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app

from app.accounts.models import Citizen
from app.extensions import db
from app.face.models import FaceSession, FaceVerificationRecord
from app.ledger import chain
from identity.interface import FaceVerifier

EXTENSION = "face_verifier"


def verifier() -> FaceVerifier:
    """The current app's face adapter."""
    return current_app.extensions[EXTENSION]


def record(event: str, citizen: Citizen, *, request_id: str, session: FaceSession | None = None,
           pseudonym: str | None = None, **fields: Any) -> dict:
    """The fields of one verification-log record (bound to `session` when there is one)."""
    adapter = verifier()
    row: dict[str, Any] = {
        "event": event,
        "session_id": None,
        "citizen_pseudonym": pseudonym or (session.citizen_pseudonym if session else citizen.id_number_hash),
        "actor": f"citizen:{citizen.id}",
        "purpose": None,
        "matter_code": None,
        "application_id": None,
        "provider": adapter.name,
        "adapter_version": adapter.version,
        "provider_session_id": None,
        "request_id": request_id,
    }
    if session is not None:
        row.update(
            session_id=session.id,
            purpose=session.purpose,
            matter_code=session.matter_code,
            application_id=session.application_id,
            provider=session.provider,
            adapter_version=session.adapter_version,
            provider_session_id=(session.provider_session or {}).get("provider_session_id"),
            attempt=session.attempt,
        )
    row.update(fields)
    return row


def append(*rows: dict) -> None:
    """Append the records to the face-verifications chain, in one transaction (committed on return)."""
    chain.append_many(FaceVerificationRecord, list(rows))


@contextmanager
def appending(*rows: dict) -> Iterator[None]:
    """Append the records in the transaction of the request session's next commit (chain.appending)."""
    with chain.appending(db.session, FaceVerificationRecord, list(rows)):
        yield


def log_event(event: str, citizen: Citizen, **fields) -> None:
    """Append one record to the verification log (committed on return)."""
    append(record(event, citizen, **fields))
