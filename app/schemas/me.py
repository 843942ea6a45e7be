"""Schemas of the citizen's own record."""

import marshmallow as ma
from marshmallow.validate import OneOf

from app.models.citizen import ASSURANCE_LEVELS
from app.schemas.auth import RequestSchema, text


class MeSchema(ma.Schema):
    id = ma.fields.String(required=True)
    assurance = ma.fields.String(
        required=True, validate=OneOf(ASSURANCE_LEVELS),
        metadata={"description": "how well the account's identity is proven: `none` (logged in only), `claimed` "
                                 "(a name and ID number claimed: not proof), `face` (proven by a face "
                                 "verification and bound to this account; personal data needs it)"},
    )
    real_name_verified = ma.fields.Boolean(required=True, metadata={"description": "true only at `face`"})
    real_name = ma.fields.String(
        required=True, allow_none=True,
        metadata={"description": "masked: the first character only; null until claimed", "example": "张*"},
    )
    id_number = ma.fields.String(
        required=True, allow_none=True,
        metadata={"description": "masked ID number; null until claimed", "example": "4101**********0013"},
    )
    face_verified_until = ma.fields.AwareDateTime(
        required=True, allow_none=True,
        metadata={"description": "until when a face verification counts as fresh; null if none"},
    )
    created_at = ma.fields.AwareDateTime(required=True)


class RealNameSchema(RequestSchema):
    name = text("the citizen's legal name in Chinese characters (· between parts of minority names)",
                example="张伟")
    id_number = text("18-character resident ID number (GB 11643); a final lowercase x is accepted",
                     example="410105198503120013")
