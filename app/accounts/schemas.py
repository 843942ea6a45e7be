"""Schemas of the login, refresh and logout endpoints (and the strict request base the `me` schemas share).
"""

import marshmallow as ma
from marshmallow import validate
from marshmallow.validate import OneOf

from app.accounts.models import ASSURANCE_LEVELS, DOT_LOOKALIKES_TEXT, MIDDLE_DOT, NAME_CHARS_BMP, NAME_LENGTH, ROLES
from app.web.schemas import RequestSchema, text


class WeChatLoginSchema(RequestSchema):
    code = text(
        "the login code from the mini-program's wx.login() (valid once, for 5 minutes)",
        validate=validate.Regexp(r"\A[\x21-\x7e]{1,128}\Z", error="登录凭证格式无效"),
        example="dev-citizen-1",
    )


class StaffLoginSchema(RequestSchema):
    username = text(
        "case-insensitive",
        validate=validate.Regexp(r"\A[A-Za-z0-9._-]{1,64}\Z", error="用户名格式无效"),
        example="admin",
    )
    password = text(
        "the account's password",
        load_only=True,
        validate=validate.Length(min=1, max=256, error="密码长度应为1至256个字符"),
        example="sandbox-pass",
    )


class AccessTokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True, metadata={"description": "JWT for `Authorization`"})
    token_type = ma.fields.String(required=True, metadata={"description": "always `Bearer`"})
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "seconds until the access token expires"}
    )


class TokenPairSchema(AccessTokenSchema):
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "JWT for POST /api/v1/auth/refresh (and logout)"}
    )


class CitizenSummarySchema(ma.Schema):
    id = ma.fields.String(required=True)
    assurance = ma.fields.String(required=True, metadata={"description": "`none`, `claimed` or `face` (GET /me)"})
    real_name_verified = ma.fields.Boolean(required=True, metadata={"description": "true only at `face`"})


class StaffSummarySchema(ma.Schema):
    id = ma.fields.String(required=True)
    username = ma.fields.String(required=True)
    display_name = ma.fields.String(required=True)
    roles = ma.fields.List(ma.fields.String(validate=validate.OneOf(ROLES)), required=True)
    bureau = ma.fields.String(
        attribute="bureau_code", allow_none=True, required=True,
        metadata={"description": "the bureau of a `bureau` account, else null"},
    )
    department = ma.fields.String(
        attribute="department_code", allow_none=True, required=True,
        metadata={"description": "the department of a `reviewer` account, else null"},
    )


class CitizenLoginResponseSchema(TokenPairSchema):
    citizen = ma.fields.Nested(CitizenSummarySchema, required=True)


class StaffLoginResponseSchema(TokenPairSchema):
    staff = ma.fields.Nested(StaffSummarySchema, required=True)


# Schemas of the citizen's own record.


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
        required=True, allow_none=True, attribute="real_name_masked",
        metadata={"description": "masked: the first character only; null until claimed", "example": "张*"},
    )
    id_number = ma.fields.String(
        required=True, allow_none=True, attribute="id_number_masked",
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
    # Documented only: the server's own check (app/face/services/real_name.py) answers each problem in Chinese.
    id_number.metadata["pattern"] = ID_NUMBER_PATTERN
