"""The Blueprint every API module uses: flask-smorest's, with request arguments parsed under the body policy."""

import flask_smorest

from app.bodies import PolicyParser


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose `@arguments` parse bodies under app/bodies.py's policy."""

    ARGUMENTS_PARSER = PolicyParser()
