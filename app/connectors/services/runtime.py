"""The shared-data runtime of one app: URL guard, connector clients and the prefill engine over active connectors.

Built once per app by `init_app` (the factory's adapter step) and kept in `app.extensions["shared_data"]`:

- `UrlGuard` with the allowed insecure origins of the configuration (the sandbox bureaus' own origins while
  the sandbox is on; none in production) and an injectable resolver (tests: no real DNS);
- one `ConnectorClients` factory: a connection pool and a circuit breaker per connector, reused across
  requests and registry rebuilds, each pool sized for PREFILL_MAX_WORKERS concurrent calls;
- one `PrefillEngine` with its thread pool; its `ConnectorRegistry` is rebuilt from the active connectors
  when they change. A process re-reads the fingerprint of the active set — (id, version, updated_at) of each
  active connector, a few rows — at most every CONNECTOR_REGISTRY_REFRESH_SECONDS, and this process's own
  registry writes call `invalidate()`, so they apply at once here and within that time everywhere else.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from app.catalogue.models import Department
from app.connectors.models import Connector
from app.extensions import db
from app.pii import vault
from shared_data.client import CallContext, ConnectorClient, ConnectorClients, HealthResult, build_session
from shared_data.connectors import ConnectorRegistry, ConnectorSpec
from shared_data.errors import SharedDataError
from shared_data.prefill import OnCall, PrefillEngine, PrefillResult
from shared_data.urls import UrlGuard

log = logging.getLogger(__name__)
EXTENSION = "shared_data"


@dataclass(frozen=True)
class ActiveSet:
    """The active connectors as last loaded: their fingerprint and each one's bureau code."""

    fingerprint: frozenset = frozenset()
    bureau_codes: dict[str, str] = field(default_factory=dict)


class SharedDataRuntime:
    """Guard, clients and engine of one app; the registry follows the active connectors (module docstring)."""

    def __init__(
        self,
        *,
        url_guard: UrlGuard,
        max_workers: int,
        deadline_seconds: float,
        failure_threshold: int,
        reset_seconds: float,
        refresh_seconds: float,
        health_retries: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url_guard = url_guard
        self.clients = ConnectorClients(
            url_guard=url_guard,
            pool_maxsize=max_workers,
            failure_threshold=failure_threshold,
            reset_seconds=reset_seconds,
        )
        self.engine = PrefillEngine(
            ConnectorRegistry(), self.clients, max_workers=max_workers, deadline_seconds=deadline_seconds
        )
        self.refresh_seconds = refresh_seconds
        self.health_retries = health_retries
        self._clock = clock
        self._lock = threading.Lock()
        self._active = ActiveSet()
        self._checked_at = float("-inf")
        self._loaded = False

    @classmethod
    def from_config(cls, config) -> SharedDataRuntime:
        """The runtime the configuration describes (see app/config.py for each setting)."""
        resolver = config.get("CONNECTOR_RESOLVER") or socket.getaddrinfo
        guard = UrlGuard(allowed_insecure=allowed_insecure_origins(config), resolver=resolver)
        return cls(
            url_guard=guard,
            max_workers=int(config["PREFILL_MAX_WORKERS"]),
            deadline_seconds=float(config["PREFILL_DEADLINE_SECONDS"]),
            failure_threshold=int(config["CONNECTOR_CIRCUIT_FAILURE_THRESHOLD"]),
            reset_seconds=float(config["CONNECTOR_CIRCUIT_RESET_SECONDS"]),
            refresh_seconds=float(config["CONNECTOR_REGISTRY_REFRESH_SECONDS"]),
            health_retries=int(config["CONNECTOR_HEALTH_RETRIES"]),
        )

    # --- the registry ------------------------------------------------------------------------------------

    def registry(self) -> ConnectorRegistry:
        """The registry of active connectors, rebuilt first if the active set changed (needs an app context)."""
        now = self._clock()
        if self._loaded and now - self._checked_at < self.refresh_seconds:
            return self.engine.registry
        with self._lock:
            if not (self._loaded and now - self._checked_at < self.refresh_seconds):
                fingerprint = _active_fingerprint()
                if not self._loaded or fingerprint != self._active.fingerprint:
                    self._rebuild(fingerprint)
                self._checked_at = now
                self._loaded = True
        return self.engine.registry

    def invalidate(self) -> None:
        """Re-read the active connectors on next use (this process just changed them)."""
        with self._lock:
            self._loaded = False

    def bureau_code(self, connector_id: str) -> str:
        """The bureau code of an active connector (looked up in the database if it just left the set)."""
        code = self._active.bureau_codes.get(connector_id)
        if code is None:
            with db.engine.connect() as connection:
                code = connection.scalar(sa.select(Connector.bureau_code).where(Connector.id == connector_id))
        return code or "unknown"

    def _rebuild(self, fingerprint: frozenset) -> None:
        with Session(db.engine) as reader:  # its own short read: never leaves the caller's session in a transaction
            rows = reader.scalars(sa.select(Connector).where(Connector.status == "active")).all()
            names = dict(reader.execute(sa.select(Department.code, Department.name)).all())
        registry = ConnectorRegistry()
        codes = {}
        for row in rows:
            try:
                registry.register(spec_of(row, bureau_name=names.get(row.bureau_code, row.bureau_code)))
            except (SharedDataError, ValueError) as exc:
                # One bad row must not take every other connector down with it; the operator sees it here.
                log.error("connector %s left out of the registry: %s", row.id, type(exc).__name__)
                continue
            codes[row.id] = row.bureau_code
        self.engine.registry = registry  # one attribute assignment: readers see the old or the new registry
        self._active = ActiveSet(fingerprint, codes)

    # --- calls -------------------------------------------------------------------------------------------

    def prefill(
        self, id_number: str, elements: Iterable[str], context: CallContext, *, on_call: OnCall | None = None
    ) -> PrefillResult:
        """Fetch `elements` about `id_number` from the active connectors in parallel, under the deadline."""
        self.registry()
        return self.engine.prefill(id_number, elements, context, on_call=on_call)

    def health_check(self, spec: ConnectorSpec) -> HealthResult:
        """Call the connector's health path now (any status: admins check before approving)."""
        # A session of its own: a health check neither waits on nor trips the connector's circuit breaker.
        session = build_session(self.url_guard, pool_maxsize=1)
        try:
            client = ConnectorClient(spec, session, url_guard=self.url_guard, health_retries=self.health_retries)
            return client.health_check()
        finally:
            session.close()

    def close(self) -> None:
        """Stop the engine's threads and close every connection pool."""
        self.engine.close()
        self.clients.close()


def spec_of(row: Connector, *, bureau_name: str) -> ConnectorSpec:
    """The `ConnectorSpec` of a connector row, its secret decrypted."""
    return ConnectorSpec(
        id=row.id,
        name=row.name,
        bureau=bureau_name,
        base_url=row.base_url,
        mapping=dict(row.mapping),
        secret=vault().decrypt(row.secret_encrypted),
        auth_type=row.auth_type,
        query_path=row.query_path,
        health_path=row.health_path,
        timeout_seconds=row.timeout_seconds,
        trust_level=row.trust_level,
        source_updated_path=row.source_updated_path,
        max_response_bytes=row.max_response_bytes,
    )


def _active_fingerprint() -> frozenset:
    with db.engine.connect() as connection:  # not the caller's session: see `_rebuild`
        rows = connection.execute(
            sa.select(Connector.id, Connector.version, Connector.updated_at).where(Connector.status == "active")
        )
        return frozenset(tuple(row) for row in rows)


def allowed_insecure_origins(config) -> list[str]:
    """CONNECTOR_ALLOWED_INSECURE_ORIGINS: none unless configured (the sandbox sets its bureaus' origins, see
    app/sandbox/__init__.py)."""
    return list(config.get("CONNECTOR_ALLOWED_INSECURE_ORIGINS") or [])


def runtime() -> SharedDataRuntime:
    """The current app's shared-data runtime."""
    return current_app.extensions[EXTENSION]


def init_app(app: Flask) -> None:
    """Build the app's runtime (nothing is called or read from the database until first use)."""
    app.extensions[EXTENSION] = SharedDataRuntime.from_config(app.config)
