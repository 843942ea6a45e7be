"""The API blueprints, in the order they appear in the OpenAPI document."""

from app.api import auth, catalogue, me, service

BLUEPRINTS = [service.blp, auth.blp, me.blp, catalogue.blp]
