"""帮办代办: citizens authorise agents; agents see who authorised them."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.guard import ASSURANCE_DOC, current_citizen, current_staff, require
from app.applications.schemas.review import (
    AuthorisationBodySchema,
    AuthorisationPageSchema,
    AuthorisationSchema,
    GivenAuthorisationPageSchema,
)
from app.applications.services import agents
from app.web.blueprint import Blueprint
from app.web.schemas import PageQuerySchema

blp = Blueprint("agents", __name__, url_prefix="/api/v1",
                description="帮办代办: agents' authorisations by citizens")

PAGE_QUERY = PageQuerySchema()


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")


@blp.route("/me/agent-authorisations")
class MyAuthorisations(MethodView):
    @require("citizen")
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, AuthorisationPageSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    def get(self, args):
        """The authorisations I gave agents, newest first (revoked and expired ones included)."""
        return agents.list_for_citizen(current_citizen(), **args)

    @require("citizen")
    @blp.arguments(AuthorisationBodySchema)
    @blp.response(201, AuthorisationSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @blp.error(404, "`not_found`: no such matter")
    @blp.error(422, "`unknown_agent`: no such agent account; `validation_failed`: valid_until in the past or too far")
    def post(self, body):
        """Authorise an agent to apply for one matter on my behalf until `valid_until`."""
        return agents.grant(current_citizen(), agent_username=body["agent"], matter_code=body["matter_code"],
                            valid_until=body["valid_until"])


@blp.route("/me/agent-authorisations/<authorisation_id>")
class MyAuthorisation(MethodView):
    @require("citizen")
    @blp.response(200, AuthorisationSchema)
    @UNAUTHORIZED
    @blp.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")
    @blp.error(404, "`not_found`: no such authorisation of yours")
    def delete(self, authorisation_id):
        """Revoke an authorisation: the agent can no longer act for me (idempotent)."""
        return agents.revoke(current_citizen(), authorisation_id)


@blp.route("/agent/authorisations")
class AgentAuthorisations(MethodView):
    @require("agent")
    @blp.arguments(PAGE_QUERY, location="query", unknown=RAISE)
    @blp.response(200, GivenAuthorisationPageSchema)
    @UNAUTHORIZED
    @blp.error(403, "`forbidden`: not an agent token")
    def get(self, args):
        """The authorisations citizens gave me, with the citizen id to pass as `on_behalf_of`."""
        return agents.list_for_agent(current_staff(), **args)
