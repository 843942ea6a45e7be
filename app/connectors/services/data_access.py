"""The data-access log: one chained record per connector call (the citizen's own view of it is the
applications', app/applications/services/my_data.py, since it names their matters).

Every call the prefill engine makes — found, not found, failed or timed out — becomes a `DataAccessRecord`
(app/connectors/models.py), appended to the `data-access` hash chain before any data from it is used: by
`record_calls` in a transaction of its own, or by `calls_logged` in the same transaction as what the caller
then stores (the application prefill: its snapshot, or the event saying why it stopped). Records hold the
keyed pseudonym of the citizen's ID number, never the number or a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from app.connectors.models import DataAccessRecord
from app.connectors.services.runtime import runtime
from app.extensions import db
from app.ledger import chain
from app.pii import vault
from shared_data.client import CallContext
from shared_data.prefill import ConnectorOutcome

ERROR_LENGTH = 64


def record_calls(
    outcomes: Iterable[ConnectorOutcome], *, id_number: str, context: CallContext, application_id: str | None
) -> list[DataAccessRecord]:
    """Append one chained record per connector call (all in one transaction); raises if it cannot."""
    return chain.append_many(DataAccessRecord, _rows(outcomes, id_number, context, application_id))


@contextmanager
def calls_logged(
    outcomes: Iterable[ConnectorOutcome], *, id_number: str, context: CallContext, application_id: str | None
) -> Iterator[None]:
    """Log the calls in the transaction of the request session's next commit, in the block or at its end.

    For a service that stores what the calls returned (or why it stops) right after them: one commit for the
    log and that outcome, the log never behind it; should anything fail first, the records are still
    written on their own (app/ledger/chain.py `appending`).
    """
    with chain.appending(db.session(), DataAccessRecord, _rows(outcomes, id_number, context, application_id)):
        yield


def _rows(outcomes: Iterable[ConnectorOutcome], id_number: str, context: CallContext,
          application_id: str | None) -> list[dict]:
    pseudonym = vault().pseudonym(id_number)
    rt = runtime()
    return [
        {
            "connector_id": outcome.connector_id,
            "bureau": rt.bureau_code(outcome.connector_id),
            "bureau_name": outcome.bureau,
            "citizen_pseudonym": pseudonym,
            "application_id": application_id,
            "purpose": context.purpose,
            "actor": context.acting_user,
            "elements_requested": list(outcome.elements_requested),
            "elements_returned": list(outcome.elements_returned),
            "outcome": outcome.status,
            "latency_ms": int(outcome.latency_ms),
            "error": (outcome.error or None) and outcome.error[:ERROR_LENGTH],
            "http_status": outcome.http_status,
            "request_id": context.request_id,
        }
        for outcome in outcomes
    ]
