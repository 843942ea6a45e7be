"""The API blueprints, in the order they appear in the OpenAPI document."""

from app.api import (
    agents,
    applications,
    audit,
    auth,
    bundles,
    catalogue,
    connectors,
    evaluations,
    face,
    me,
    review,
    service,
    stats,
)

BLUEPRINTS = [service.blp, auth.blp, me.blp, catalogue.blp, connectors.blp, applications.blp, bundles.blp, agents.blp,
              review.blp, evaluations.blp, face.blp, audit.blp, stats.blp]
