"""The Blueprint every API module uses: flask-smorest's, with request arguments parsed under the body policy and
`error()` documenting an error response in the one error shape."""

import flask_smorest

from app.bodies import PolicyParser
from app.errors import ErrorSchema


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose `@arguments` parse bodies under app/bodies.py's policy."""

    ARGUMENTS_PARSER = PolicyParser()

    def error(self, status: int, description: str, **kwargs):
        """Document an error response in the one error shape (app/errors.py), with what it means here."""
        return self.alt_response(status, schema=ErrorSchema, description=description, **kwargs)
