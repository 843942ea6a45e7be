"""The prefill engine: the elements a matter needs, fetched from the bureaus in parallel, with provenance.

`PrefillEngine.prefill` picks one connector per needed element (`ConnectorRegistry.connectors_for`: most
trusted provider first), asks each connector for exactly the needed elements it provides (minimisation: an
element that is not needed is neither requested nor kept), runs the calls in parallel on the engine's thread
pool and waits for them under **one overall deadline**. A connector that has not answered by then gets
`timeout` for its fields; the engine does not wait for it (its thread finishes in the background, bounded by
the connector's own time cap, and its result is discarded).

Every needed element gets a `FieldResult` with a status — `ok`, `not_found`, `failed`, `timeout` or
`skipped` (no active connector provides it) — and its provenance (BRIEF §4.1–4.2): partial prefill is
never hidden. A connector the matter marks critical that is not `ok` blocks the prefill
(`PrefillResult.blocked`), so the app can answer with a clear error instead of empty fields.

Every connector call produces one `ConnectorOutcome` — the data-access log's record of it, including
timeouts. `on_call(outcome)` is invoked once per outcome **in the thread that called `prefill`**, after the
deadline or the last answer, in plan order: the callback needs no locking and may use that thread's context
(e.g. a Flask app context and database session). An exception from it propagates to the caller of `prefill`
after the remaining outcomes were still offered to it, so a failed log write is never silent.

Thread-safety: one engine serves many threads; `prefill` keeps no state between calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Self

from shared_data.client import CallContext, ConnectorClient, FetchResult
from shared_data.connectors import ConnectorRegistry, ConnectorSpec, locks
from shared_data.elements import ELEMENTS, UnknownElement

log = logging.getLogger(__name__)

FieldStatus = Literal["ok", "not_found", "failed", "timeout", "skipped"]
ClientFactory = Callable[[ConnectorSpec], ConnectorClient]
OnCall = Callable[["ConnectorOutcome"], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class FieldSource:
    """Where a field's value came from (or was to come from)."""

    connector: str
    bureau: str
    trust_level: str
    source_updated_at: datetime | None
    fetched_at: datetime | None  # when the answer arrived; None when none did

    def to_dict(self) -> dict[str, Any]:
        """The API's `source` object, times as UTC ISO 8601."""
        return {
            "connector": self.connector,
            "bureau": self.bureau,
            "trust_level": self.trust_level,
            "source_updated_at": _iso(self.source_updated_at),
            "fetched_at": _iso(self.fetched_at),
        }


@dataclass(frozen=True)
class FieldResult:
    """One needed element after prefill: its value (JSON-native), status, lock and provenance."""

    value: Any
    status: FieldStatus
    locked: bool  # True only for ok values from trust level A/B sources
    source: FieldSource | None  # None when skipped
    error: str | None = None  # why a field failed, e.g. "type_error: expected integer: ..."

    def to_dict(self) -> dict[str, Any]:
        """The API's per-field object {value, status, locked, source}."""
        return {
            "value": self.value,
            "status": self.status,
            "locked": self.locked,
            "source": self.source.to_dict() if self.source else None,
        }


@dataclass(frozen=True)
class ConnectorOutcome:
    """One connector call, as the data-access log records it (no values, no identity)."""

    connector_id: str
    bureau: str
    status: Literal["ok", "not_found", "failed", "timeout"]
    latency_ms: int
    elements_requested: tuple[str, ...]
    elements_returned: tuple[str, ...]  # the elements whose values we kept
    error: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class PrefillResult:
    """Every needed element's result, every connector call's outcome, and whether a critical one failed."""

    fields: Mapping[str, FieldResult]
    outcomes: tuple[ConnectorOutcome, ...]
    blocked: bool = False
    blocked_by: tuple[str, ...] = ()  # ids of the critical connectors that were not ok
    blocked_reason: str | None = None


@dataclass
class _Call:
    spec: ConnectorSpec
    elements: list[str]
    future: Future | None = None
    fetched_at: datetime | None = field(default=None)


class PrefillEngine:
    """Fetches needed elements from the registry's connectors in parallel under one deadline."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        client_factory: ClientFactory,
        *,
        max_workers: int = 16,
        deadline_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ):
        if max_workers < 1 or deadline_seconds <= 0:
            raise ValueError("max_workers must be >= 1 and deadline_seconds > 0")
        self.registry = registry
        self.client_factory = client_factory
        self.deadline_seconds = deadline_seconds
        self.clock = clock
        self.now = now
        # One pool for the engine's life: threads are reused across prefills. Size it for the connectors of
        # one prefill times the prefills in flight; a straggler holds a thread up to its connector's time cap.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="prefill")

    def prefill(
        self,
        id_number: str,
        needed_elements: Iterable[str],
        context: CallContext,
        *,
        critical_connectors: Iterable[str] = frozenset(),
        on_call: OnCall | None = None,
        deadline_seconds: float | None = None,
    ) -> PrefillResult:
        """Fetch the needed elements about `id_number` for `context`; see the module docstring."""
        needed = list(dict.fromkeys(needed_elements))
        for element in needed:
            if element not in ELEMENTS:
                raise UnknownElement(element)
        started = self.clock()
        deadline = started + (deadline_seconds or self.deadline_seconds)
        calls = [_Call(spec, elements) for spec, elements in self.registry.connectors_for(needed).items()]
        for call in calls:
            call.future = self._pool.submit(self._fetch, call, id_number, context)
        if calls:
            wait([call.future for call in calls], timeout=max(0.0, deadline - self.clock()))

        outcomes: list[ConnectorOutcome] = []
        fields: dict[str, FieldResult] = {}
        for call in calls:
            result = self._result_of(call, started)
            outcomes.append(_outcome(call, result))
            fields.update(self._fields_of(call, result))
        for element in needed:
            fields.setdefault(element, FieldResult(None, "skipped", False, None))

        blocked_by = self._blocked_by(critical_connectors, outcomes)
        result = PrefillResult(
            fields={element: fields[element] for element in needed},
            outcomes=tuple(outcomes),
            blocked=bool(blocked_by),
            blocked_by=tuple(blocked_by),
            blocked_reason=self._blocked_reason(blocked_by, outcomes),
        )
        if on_call is not None:
            _notify(on_call, outcomes)
        return result

    def close(self) -> None:
        """Stop the thread pool (calls in flight finish in the background)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- steps -------------------------------------------------------------------------------------------

    def _fetch(self, call: _Call, id_number: str, context: CallContext) -> FetchResult:
        """Runs on a pool thread. A bug in one connector's client must not break the whole prefill."""
        try:
            result = self.client_factory(call.spec).fetch(id_number, call.elements, context)
        except Exception:
            log.exception("connector %s: unexpected error", call.spec.id)
            result = FetchResult("failed", error="internal_error")
        call.fetched_at = self.now()
        return result

    def _result_of(self, call: _Call, started: float) -> FetchResult:
        future = call.future
        if future is not None and future.done():
            return future.result()
        # Past the deadline: a call still queued never starts; one in flight finishes unobserved.
        not_started = future is not None and future.cancel()
        latency = max(0, round((self.clock() - started) * 1000))
        return FetchResult(
            "timeout", latency_ms=latency, error="not_started" if not_started else "deadline_exceeded"
        )

    def _fields_of(self, call: _Call, result: FetchResult) -> dict[str, FieldResult]:
        spec = call.spec
        fetched_at = call.fetched_at if result.status in ("ok", "not_found") else None
        source = FieldSource(spec.id, spec.bureau, spec.trust_level, result.source_updated_at, fetched_at)
        fields: dict[str, FieldResult] = {}
        for element in call.elements:
            if result.status != "ok":
                fields[element] = FieldResult(None, result.status, False, source, result.error)
            elif element in result.values:
                fields[element] = FieldResult(result.values[element], "ok", locks(spec.trust_level), source)
            elif element in result.field_errors:
                fields[element] = FieldResult(None, "failed", False, source, result.field_errors[element])
            else:  # the bureau knows the person but has no such datum
                fields[element] = FieldResult(None, "not_found", False, source)
        return fields

    def _blocked_by(self, critical: Iterable[str], outcomes: list[ConnectorOutcome]) -> list[str]:
        status = {outcome.connector_id: outcome.status for outcome in outcomes}
        blocked = []
        for connector_id in dict.fromkeys(critical):
            if connector_id not in self.registry:
                blocked.append(connector_id)  # a critical connector that is not active cannot be ok
            elif connector_id in status and status[connector_id] != "ok":
                blocked.append(connector_id)
        return blocked

    def _blocked_reason(self, blocked_by: list[str], outcomes: list[ConnectorOutcome]) -> str | None:
        if not blocked_by:
            return None
        by_id = {outcome.connector_id: outcome for outcome in outcomes}
        parts = []
        for connector_id in blocked_by:
            outcome = by_id.get(connector_id)
            if outcome is None:
                parts.append(f"{connector_id}: not active")
            else:
                parts.append(
                    f"{connector_id}: {outcome.status}" + (f" ({outcome.error})" if outcome.error else "")
                )
        return "critical connector not ok: " + "; ".join(parts)


def _outcome(call: _Call, result: FetchResult) -> ConnectorOutcome:
    return ConnectorOutcome(
        connector_id=call.spec.id,
        bureau=call.spec.bureau,
        status=result.status,
        latency_ms=result.latency_ms,
        elements_requested=tuple(call.elements),
        elements_returned=tuple(element for element in call.elements if element in result.values)
        if result.status == "ok"
        else (),
        error=result.error,
        http_status=result.http_status,
    )


def _notify(on_call: OnCall, outcomes: list[ConnectorOutcome]) -> None:
    """Offer every outcome to `on_call`; re-raise the first exception once all were offered."""
    first_error: BaseException | None = None
    for outcome in outcomes:
        try:
            on_call(outcome)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other outcomes were offered
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
