"""Schemas of the login, refresh and logout endpoints (and the strict request base the `me` schemas share)."""

import marshmallow as ma
from marshmallow import validate

from app.models.staff import ROLES


class RequestSchema(ma.Schema):
    """A request body: unknown fields are refused (marshmallow's default), with Chinese messages."""

    error_messages = {"type": "请求体应为 JSON 对象", "unknown": "不支持的字段"}


def text(description: str, *, example: str | None = None, **kwargs) -> ma.fields.String:
    """A required string field of a request, with Chinese messages."""
    metadata = {"description": description} | ({"example": example} if example else {})
    return ma.fields.String(
        required=True,
        error_messages={"required": "缺少必填字段", "null": "不能为空", "invalid": "应为字符串"},
        metadata=metadata,
        **kwargs,
    )


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
