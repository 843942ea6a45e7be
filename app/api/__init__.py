"""The API blueprints, in the order they appear in the OpenAPI document."""

from app.api import applications, audit, auth, catalogue, connectors, face, face_audit, me, service

BLUEPRINTS = [service.blp, auth.blp, me.blp, catalogue.blp, connectors.blp, applications.blp, face.blp,
              audit.blp, face_audit.blp]
