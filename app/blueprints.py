"""The API blueprints, in the order they appear in the OpenAPI document."""

from app.accounts import api as accounts
from app.applications.api import agents, applications, bundles, evaluations, proactive, review
from app.audit import api as audit
from app.catalogue import api as catalogue
from app.catalogue.schemas import RULE_COMPONENT, RULE_SCHEMA
from app.connectors import api as connectors
from app.face import api as face
from app.stats import api as stats
from app.web import health

# Modules that only add routes to another blueprint (`accounts.me`: /me/proactive…), imported for that.
ROUTE_MODULES = (proactive,)
BLUEPRINTS = [health.blp, accounts.blp, accounts.me, catalogue.blp, connectors.blp, applications.blp, bundles.blp,
              agents.blp, review.blp, evaluations.blp, face.blp, audit.blp, stats.blp]

# Schemas of the document that no marshmallow schema makes (a recursive one), by component name.
COMPONENTS = {RULE_COMPONENT: RULE_SCHEMA}
