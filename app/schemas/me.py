"""Schemas of the citizen's own record."""

import marshmallow as ma
from marshmallow.validate import OneOf

from app.models.citizen import ASSURANCE_LEVELS, DOT_LOOKALIKES_TEXT, MIDDLE_DOT, NAME_CHARS_BMP, NAME_LENGTH
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


ID_NUMBER_PATTERN = r"^\s*[0-9]{17}[0-9Xx]\s*$"
NAME_PATTERN = rf"^[{NAME_CHARS_BMP}]+(?:[{MIDDLE_DOT}{DOT_LOOKALIKES_TEXT}][{NAME_CHARS_BMP}]+)*$"


class RealNameSchema(RequestSchema):
    name = text("the citizen's legal name in Chinese characters (· between parts of minority names; • ・ ． ‧ "
                "are read as ·; surrounding spaces are trimmed; Extensions B-H are accepted too)", example="张伟")
    name.metadata.update(pattern=NAME_PATTERN, minLength=NAME_LENGTH[0], maxLength=NAME_LENGTH[1])
    # The pattern states the shape; the check character, birth date and region code (GB 11643) are checked
    # by the server and cannot be said in JSON Schema.
    id_number = text("18-character resident ID number (GB 11643); a final lowercase x is accepted; surrounding "
                     "spaces are trimmed", example="410105198503120013")
    # Documented only: the server's own check (app/services/identity.py) answers each problem in Chinese.
    id_number.metadata["pattern"] = ID_NUMBER_PATTERN
