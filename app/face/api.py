"""Face verification (刷脸办): sessions, their completion, and the citizen's biometric consent."""

from functools import wraps

from flask import current_app, request
from flask.views import MethodView

from app.accounts.api import me
from app.accounts.guard import current_citizen, require
from app.accounts.schemas import MeSchema, RealNameSchema
from app.face.schemas import (
    BiometricConsentSchema,
    CompleteSchema,
    DecisionSchema,
    SessionCreateSchema,
    SessionSchema,
)
from app.face.services import consent as biometric
from app.face.services import real_name
from app.face.services import sessions as face
from app.web.blueprint import Blueprint
from app.web.requestid import request_id

blp = Blueprint("face", __name__, url_prefix="/api/v1",
                description="Face verification (刷脸办) and the biometric consent it needs")


UNAUTHORIZED = blp.error(401, "`unauthorized`: no valid access token")
NOT_A_CITIZEN = "`forbidden`: not a citizen token"
RATE_LIMITED = blp.error(429, "`rate_limited`: FACE_MAX_FAILURES failed verifications within the window (Retry-After); "
                          "logged as `rate_limited`")
UNAVAILABLE = blp.error(503, "`upstream_unavailable`: the face provider (or, for the `local` adapter, the population "
                         "registry's photo) could not answer; nothing was decided or consumed, try again")


def face_body_limit(view):
    """Allow the completion body up to FACE_MAX_BODY_BYTES (probe photos); a larger one is logged, then 413."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        limit = int(current_app.config["FACE_MAX_BODY_BYTES"])
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            face.check_body_size(kwargs["session_id"], current_citizen(), request_id=request_id())
        return view(*args, **kwargs)

    return wrapper


@blp.route("/face/sessions")
class Sessions(MethodView):
    # Which level a start needs depends on its purpose (the service decides): `claimed` for `real_name`.
    @require("citizen", assurance="none")
    @blp.arguments(SessionCreateSchema)
    @blp.response(201, SessionSchema)
    @UNAUTHORIZED
    @blp.error(403, "`assurance_required`: purpose `real_name` needs a claimed real name (POST /api/v1/me/real-name); "
                f"every other purpose needs the identity proven by face; {NOT_A_CITIZEN}")
    @blp.error(404, "`not_found`: no such matter, or no such application of yours")
    @blp.error(422, "`consent_required`: `biometric_consent` is not true, or `consent_version` is not the current "
                "text; `face_not_offered`: the matter does not offer 刷脸办; `face_capability_missing`: the "
                "matter needs liveness detection the configured provider lacks; `face_reference_unavailable`: "
                "no usable registry photo to compare with (`local`); `validation_failed`: per-field problems. "
                "The last three point to the matter's non-face path")
    @RATE_LIMITED
    @UNAVAILABLE
    def post(self, body):
        """Start a face verification bound to the caller, the purpose and the matter/application.

        Purpose `real_name` proves the account's claimed identity (no matter or application): a pass binds
        it to this account exclusively (`assurance: "face"`), moving it from any other account.
        Records the biometric consent (the current versioned text, separately from data consent) unless one
        is in force, opens a session at the configured provider and returns what the mini-program needs
        (`client_payload`). Complete it with POST …/complete before `expires_at`.
        """
        return face.start_session(current_citizen(), request_id=request_id(), **body)


@blp.route("/face/sessions/<session_id>/complete")
class Complete(MethodView):
    @require("citizen", assurance="none")
    @face_body_limit
    @blp.arguments(CompleteSchema)
    @blp.response(200, DecisionSchema)
    @UNAUTHORIZED
    @blp.error(403, NOT_A_CITIZEN)
    @blp.error(404, "`not_found`: no such session of yours (another citizen's session is logged as `wrong_citizen`)")
    @blp.error(409, "`face_session_consumed`: the session was already completed (logged as `replay_rejected`); "
                "`face_result_pending`: the provider has no result yet, finish on the phone and retry (the "
                "session stays open)")
    @blp.error(410, "`face_session_expired`: past `expires_at`, ended by a consent withdrawal, or the provider "
                "forgot it; start a new session")
    @blp.error(413, "`payload_too_large`: the body exceeds FACE_MAX_BODY_BYTES or a photo the provider's limit")
    @blp.error(422, "`validation_failed`: unusable evidence (wrong shape, not base64, not a JPEG/PNG, corrupt, too "
                "many pixels; reason under `errors.json.evidence`); `face_reference_unavailable`: no usable "
                "registry photo. The session stays open")
    @RATE_LIMITED
    @UNAVAILABLE
    def post(self, body, session_id):
        """Complete a face verification: the server asks the provider for the result and consumes the session.

        The client's evidence is never taken as the result. A pass opens the face-verified window
        (`face_verified_until`, also on GET /api/v1/me); a failure counts toward the rate limit and answers
        the matter's non-face path. Every completion, refusal and fault is in the verification log.

        A pass of a `real_name` session binds the identity (`assurance: "face"`, in force at once) and also
        answers new `tokens` whose `assurance` claim says so.
        """
        return face.complete_session(session_id, current_citizen(), evidence=body["evidence"],
                                     request_id=request_id())


@blp.route("/me/biometric-consent")
class MyBiometricConsent(MethodView):
    # The consent is the account's, before any identity is proven; withdrawing it is always possible.
    @require("citizen", assurance="none")
    @blp.response(200, BiometricConsentSchema)
    @UNAUTHORIZED
    @blp.error(403, NOT_A_CITIZEN)
    def get(self):
        """The current biometric consent text (to show before a face check) and the caller's receipt."""
        return biometric.consent_view(current_citizen())

    @require("citizen", assurance="none")
    @blp.response(200, BiometricConsentSchema)
    @UNAUTHORIZED
    @blp.error(403, NOT_A_CITIZEN)
    def delete(self):
        """Withdraw the biometric consent (idempotent): open face sessions end (410 on completion) and a new
        session needs a new, explicit consent."""
        return biometric.withdraw_consent(current_citizen(), request_id=request_id())


@me.route("/me/real-name")
class RealName(MethodView):
    @require("citizen", assurance="none")
    @me.arguments(RealNameSchema)
    @me.response(200, MeSchema)
    @me.error(401, "`unauthorized`: no valid access token")
    @me.error(403, "`forbidden`: not a citizen token")
    @me.error(409, "`real_name_already_bound`: this account is face-bound to another identity (it can only re-prove "
                "its own)")
    @me.error(422, "`validation_failed`: per-field problems; `identity_mismatch`: the population registry holds "
                "another name for this number, or does not hold the number")
    @me.error(429, "`rate_limited`: too many claims from this account or for this ID number, or too many registry "
                "mismatches for this account (Retry-After)")
    @me.error(503, "`upstream_unavailable`: the population registry did not answer; nothing was claimed")
    def post(self, body):
        """Claim a real name and resident ID number (GB 11643) for the calling citizen: `assurance: "claimed"`.

        A claim is not proof and unlocks no personal data: prove it with a face verification of purpose
        `real_name` (POST /api/v1/face/sessions), which binds the identity to this account (`assurance:
        "face"`). The answer is the same whether or not the number is claimed or bound by another account.
        422 `validation_failed` names each problem per field (e.g. 身份证号码校验位错误, 出生日期无效,
        地区代码无效). Where a population connector is active, the registry must hold this name for this
        number (the call is logged in the data-access log with the purpose 实名认证): 422 `identity_mismatch`
        otherwise — also when the number is not in the registry, so the answer does not tell which numbers
        exist. Idempotent for the pair already claimed or bound.
        """
        return real_name.claim_real_name(current_citizen(), body["name"], body["id_number"],
                                         request_id=request_id())
