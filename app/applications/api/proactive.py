"""免申即享: a citizen opts in (a consent of its own, revocable) to be told when they meet a proactive matter's
conditions; the periodic check is app/applications/tasks.py's. Routes under /me (the citizen's own record):
/me/proactive/offer, /me/proactive/opt-ins[/{id}]."""

from flask.views import MethodView
from marshmallow import RAISE

from app.accounts.api import me
from app.accounts.guard import ASSURANCE_DOC, current_citizen, require
from app.applications.schemas.applications import (
    ProactiveOfferSchema,
    ProactiveOptInBodySchema,
    ProactiveOptInPageSchema,
    ProactiveOptInSchema,
)
from app.applications.services import proactive
from app.web.schemas import PageQuerySchema

UNAUTHORIZED = me.error(401, "`unauthorized`: no valid access token")
NOT_CITIZEN = me.error(403, f"`forbidden`: not a citizen token; {ASSURANCE_DOC}")


@me.route("/me/proactive/offer")
class ProactiveOffer(MethodView):
    @require("citizen")
    @me.response(200, ProactiveOfferSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    def get(self):
        """The 免申即享 matters one may opt in to, the elements each one's conditions read, and the purpose."""
        return proactive.offer()


@me.route("/me/proactive/opt-ins")
class ProactiveOptIns(MethodView):
    @require("citizen")
    @me.arguments(PageQuerySchema(), location="query", unknown=RAISE)
    @me.response(200, ProactiveOptInPageSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    def get(self, args):
        """My 免申即享 opt-ins, newest first (active, withdrawn, superseded)."""
        return proactive.list_opt_ins(current_citizen(), **args)

    @require("citizen")
    @me.arguments(ProactiveOptInBodySchema)
    @me.response(201, ProactiveOptInSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @me.error(422, "`not_proactive`: a matter that is not marked proactive (or none by that code); "
                   "`consent_mismatch`: the elements or purpose are not exactly the offer's for those matters; "
                   "`validation_failed`: a matter named twice")
    def post(self, body):
        """Opt in: be told (a WeChat message, a draft ready) when the shared data shows you meet every checked
        condition of these matters. The data is checked periodically, only while the opt-in is active; every
        call is in your data-access log. A new opt-in replaces the previous one."""
        return proactive.opt_in(current_citizen(), body["matter_codes"], body["elements"], body["purpose"])


@me.route("/me/proactive/opt-ins/<opt_in_id>")
class ProactiveOptIn(MethodView):
    @require("citizen")
    @me.response(200, ProactiveOptInSchema)
    @UNAUTHORIZED
    @NOT_CITIZEN
    @me.error(404, "`not_found`: no such opt-in of yours")
    def delete(self, opt_in_id):
        """Opt out (idempotent): nothing is checked under it from now on."""
        return proactive.withdraw(current_citizen(), opt_in_id)
