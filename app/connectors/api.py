"""The connector registry: bureaus register and manage their data services; admins approve and disable them."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.guard import current_staff, require
from app.catalogue.api import CACHE_HEADERS, cached, conditional_get
from app.catalogue.api import blp as catalogue
from app.catalogue.schemas import DataElementListSchema
from app.connectors.schemas import (
    ConnectorEventListSchema,
    ConnectorListQuerySchema,
    ConnectorPageSchema,
    ConnectorRegisterSchema,
    ConnectorSchema,
    ConnectorWithSecretSchema,
    ConnectorWriteSchema,
    HealthCheckSchema,
    UsageQuerySchema,
    UsageSchema,
)
from app.connectors.services import registry as connectors
from app.web.blueprint import Blueprint

blp = Blueprint("connectors", __name__, url_prefix="/api/v1",
                description="Shared-data connectors: registration by bureaus, approval by admins")

LIST_QUERY = ConnectorListQuerySchema()
USAGE_QUERY = UsageQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_FOUND = blp.error(404, "`not_found`: no such connector, or another bureau's")


@blp.route("/connectors")
class Connectors(MethodView):
    @require("bureau", "admin")
    @blp.arguments(LIST_QUERY, location="query", unknown=RAISE)
    @blp.response(200, ConnectorPageSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: neither a bureau nor an admin token")
    def get(self, args):
        """Connectors, newest first: a bureau sees its own, an admin all. Secrets are never returned."""
        return connectors.list_connectors(current_staff(), **args)

    @require("bureau")
    @blp.arguments(ConnectorRegisterSchema)
    @blp.response(201, ConnectorWithSecretSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not a bureau token")
    def post(self, body):
        """Register a connector of the caller's bureau → `pending` until an admin approves it.

        Minimal body `{name, base_url, elements}`; defaults: `query_path` /query, `health_path` /health,
        `auth_type` hmac, `timeout_seconds` 3, `trust_level` A, `max_response_bytes` 1 MiB. Without a `mapping`
        the service answers in the standard shape, each element at its own dotted name
        (`{"person": {"name": "张伟"}, "updated_at": "…"}`), and `source_updated_path` defaults to `updated_at`.
        The platform generates the signing secret and shows it only in this answer (and on rotation).
        422 `unsafe_url` (with the reason) for a URL the platform must not call: not https, or loopback,
        private, link-local or cloud-metadata addresses, also after DNS resolution.
        """
        return WithSecret(*connectors.register(body, current_staff()))


@blp.route("/connectors/<connector_id>")
class ConnectorDetail(MethodView):
    @require("bureau", "admin")
    @blp.response(200, ConnectorSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: neither a bureau nor an admin token")
    @NOT_FOUND
    def get(self, connector_id):
        """One connector (a bureau's own; any for an admin)."""
        return connectors.visible_connector(connector_id, current_staff())

    @require("bureau")
    @blp.arguments(ConnectorWriteSchema)
    @blp.response(200, ConnectorSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not a bureau token")
    @NOT_FOUND
    def patch(self, body, connector_id):
        """Change an own connector; changing its URL, paths, elements/mapping or trust level returns an active
        connector to `pending`. 422 `unsafe_url` as for registration."""
        return connectors.update(connector_id, body, current_staff())


@blp.route("/connectors/<connector_id>/rotate-secret")
class RotateSecret(MethodView):
    @require("bureau")
    @blp.response(200, ConnectorWithSecretSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not a bureau token")
    @NOT_FOUND
    def post(self, connector_id):
        """A new signing secret for an own connector, shown once; calls use it from now on."""
        return WithSecret(*connectors.rotate_secret(connector_id, current_staff()))


@blp.route("/connectors/<connector_id>/approve")
class Approve(MethodView):
    @require("admin")
    @blp.response(200, ConnectorSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not an admin token")
    @NOT_FOUND
    @blp.error(422, "`unsafe_url`: the URL is no longer safe to call (checked again)")
    def post(self, connector_id):
        """Activate a pending or disabled connector (admin); approving an active one changes nothing."""
        return connectors.approve(connector_id, current_staff())


@blp.route("/connectors/<connector_id>/disable")
class Disable(MethodView):
    @require("admin")
    @blp.response(200, ConnectorSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not an admin token")
    @NOT_FOUND
    def post(self, connector_id):
        """Stop calling a connector (admin); it can be approved again later."""
        return connectors.disable(connector_id, current_staff())


@blp.route("/connectors/<connector_id>/health-check")
class HealthCheck(MethodView):
    @require("bureau", "admin")
    @blp.response(200, HealthCheckSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: neither a bureau nor an admin token")
    @NOT_FOUND
    def post(self, connector_id):
        """Call the connector's health path now → {ok, latency_ms, error} (any status, so before approval)."""
        return connectors.health_check(connector_id, current_staff())._asdict()


@blp.route("/connectors/<connector_id>/usage")
class Usage(MethodView):
    @require("bureau", "admin")
    @blp.arguments(USAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, UsageSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: neither a bureau nor an admin token")
    @NOT_FOUND
    def get(self, args, connector_id):
        """Calls, outcomes and latency percentiles (p50/p95, nearest rank) per UTC day, from the access log."""
        return connectors.usage(connector_id, current_staff(), **args)


@blp.route("/connectors/<connector_id>/events")
class Events(MethodView):
    @require("bureau", "admin")
    @blp.response(200, ConnectorEventListSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: neither a bureau nor an admin token")
    @NOT_FOUND
    def get(self, connector_id):
        """The registry history of a connector: every change, who made it, what changed (never a secret)."""
        return {"items": connectors.connector_events(connector_id, current_staff())}


class WithSecret:
    """A connector and its just-generated secret, for the one answer that shows it."""

    def __init__(self, row, secret: str):
        self._row = row
        self.secret = secret

    def __getattr__(self, name):
        return getattr(self._row, name)


# The data-element dictionary is the catalogue's (its cache, its tag); the providers are the registry's.
@catalogue.route("/data-elements")
class DataElements(MethodView):
    @catalogue.response(200, DataElementListSchema, headers=CACHE_HEADERS)
    @conditional_get
    def get(self):
        """The dictionary of standard data elements and the active connectors providing each."""
        return cached(("data-elements",), lambda: DataElementListSchema().dump(connectors.data_elements()))
