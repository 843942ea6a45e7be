"""The WeChat face adapter: 人脸核身 2.0 of the mini-program server API.

Flow
----
1. `start`: `POST {base}/cityservice/face/identify/getverifyid?access_token=…` with
   `{"out_seq_no": <our verification id>, "cert_info": {"cert_type": "IDENTITY_CARD", "cert_name": <name>,
   "cert_no": <ID number>}, "openid": <openid>}` → `{"errcode": 0, "verify_id", "expires_in"}`. The
   mini-program gets `{"verifyId": verify_id}` for `wx.requestFacialVerify`. (WeChat takes no purpose field;
   the app records ours.)
2. `result`: `POST {base}/cityservice/face/identify/queryverifyinfo?access_token=…` with
   `{"verify_id", "out_seq_no", "cert_hash", "openid"}` → `{"errcode", "errmsg", "verify_ret"}`. The check
   passed **only when `errcode == 0 and verify_ret == 10000`**. The client's evidence is never read as a
   result: only its shape is checked (a JSON object), its content is ignored.

`cert_hash` (our reading of WeChat's queryVerifyInfo notes): base64 (standard alphabet, with padding) of the
UTF-8 bytes of each of `cert_type`, `cert_name`, `cert_no`; joined in that order as
`cert_type=<b64>&cert_name=<b64>&cert_no=<b64>`; SHA-256 of that string as lowercase hex. WeChat's worked
example (IDENTITY_CARD, 张三, 310101199801011234 → `3c241f7f…108b`) is a test. WeChat checks cert_hash and
openid against what getverifyid received and answers an errcode, not a verify_ret, when they differ: that is
how the identity binding is enforced at the provider.

HTTP, the access token and the errcodes every endpoint may answer are the WeChat platform client's
(wechatkit): built from the configuration (`from_config`), the adapter shares the process's client, and so
its one access token, with the app's login and subscription messages. A face call answered 40001/40014/42001
(invalid or expired token) refreshes the token once and retries once; a deployment with many processes can
put a shared token source in front (WeChat's `stable_token`) by passing `token_source`.

Secrets and personal data: the access token travels in the query string, so neither URLs nor requests'
exception texts (which quote the URL) are logged; we log endpoint names, errcodes and verify_ret values.
Names, ID numbers, cert_hash and openids are never logged and never appear in results or exception messages.

Error codes: `ERRCODE_MAP` (the face endpoints' own errcodes → exception; busy, quota and configuration codes
are wechatkit's) and `VERIFY_RET_MAP` (verify_ret → outcome). The verify_ret
values and their wording are WeChat's (queryVerifyInfo page). The numbers of the errcodes for a cert_hash,
openid or out_seq_no mismatch, an expired or unknown verify_id and a not-yet-performed verification are not
in the copy of WeChat's pages available to us: `ERR_*` below are PROVISIONAL values shared with the sandbox
stand-in (app/sandbox/wechat.py) and must be confirmed against the live API before production use; until
then an unexpected errcode there becomes ProviderUnavailable, never a pass.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Self

import requests

from identity.errors import (
    ConfigurationError,
    FaceVerificationError,
    IdentityDataMissing,
    IdentityMismatch,
    ProviderUnavailable,
    ResultPending,
    SessionExpired,
)
from identity.interface import (
    Capabilities,
    FaceResult,
    FaceVerifier,
    Identity,
    Outcome,
    ProviderSession,
    check_verification_id,
    utcnow,
)
from wechatkit import WeChatMisconfigured, WeChatPlatform, WeChatRefused, WeChatUnavailable, platform_for
from wechatkit.platform import request_id_of

log = logging.getLogger(__name__)

GETVERIFYID_PATH = "/cityservice/face/identify/getverifyid"
QUERYVERIFYINFO_PATH = "/cityservice/face/identify/queryverifyinfo"

CERT_TYPE_ID_CARD = "IDENTITY_CARD"
VERIFY_RET_PASS = 10000
DEFAULT_VERIFY_ID_TTL = 3600  # seconds; WeChat's documented default for expires_in
VERIFY_ID = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no spaces; WeChat: at most 256 characters
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# PROVISIONAL errcodes (see the module docstring), shared with the stand-in.
ERR_CERT_HASH_MISMATCH = 9201001
ERR_OPENID_MISMATCH = 9201002
ERR_OUT_SEQ_NO_MISMATCH = 9201003
ERR_VERIFY_ID_EXPIRED = 9201004
ERR_VERIFY_ID_UNKNOWN = 9201005
ERR_NOT_VERIFIED = 9201006

# The face endpoints' errcodes (≠ 0) → the exception raised. Busy and quota codes (wechatkit's
# COMMON_ERRCODES) are ProviderUnavailable, configuration codes (48001: 人脸核身 not enabled) ConfigurationError;
# any other is logged and becomes ProviderUnavailable.
ERRCODE_MAP: dict[int, type[FaceVerificationError]] = {
    ERR_CERT_HASH_MISMATCH: IdentityMismatch,  # the name/ID given now differ from getverifyid's
    ERR_OPENID_MISMATCH: IdentityMismatch,  # another WeChat user
    ERR_OUT_SEQ_NO_MISMATCH: IdentityMismatch,  # another verification's serial number
    ERR_VERIFY_ID_EXPIRED: SessionExpired,
    ERR_VERIFY_ID_UNKNOWN: SessionExpired,  # WeChat forgets verify_ids after they expire
    ERR_NOT_VERIFIED: ResultPending,  # the citizen has not done the face check yet
}

# verify_ret (with errcode 0) → outcome; only 10000 passes. Unlisted values become provider_error.
VERIFY_RET_MAP: dict[int, Outcome] = {
    10001: Outcome.PROVIDER_ERROR,  # 参数错误
    10002: Outcome.POOR_QUALITY,  # 人脸特征检测失败
    10003: Outcome.NO_MATCH,  # 身份证号不匹配: name and number are not one person at the authoritative source
    10004: Outcome.NO_MATCH,  # 比对人脸信息不匹配: the face is not the registered photo's
    90001: Outcome.PROVIDER_ERROR,  # 设备不支持人脸检测 (the app offers the non-face path)
    90002: Outcome.USER_CANCELLED,  # 用户在教程页取消
    90003: Outcome.USER_CANCELLED,  # 用户在初始化时取消
    90004: Outcome.USER_CANCELLED,  # 用户在识别过程中取消
    90005: Outcome.USER_CANCELLED,  # 用户在上传时取消
    90006: Outcome.USER_CANCELLED,  # 用户在释放时取消
    90007: Outcome.PROVIDER_ERROR,  # 网络错误
    90008: Outcome.USER_CANCELLED,  # 相机权限未授权: the citizen declined the camera
    90009: Outcome.USER_CANCELLED,  # 麦克风权限未授权
    90010: Outcome.USER_CANCELLED,  # 相机和麦克风权限都未授权
    # 人脸数据采集无效: the SDK rejected the captured face data; our reading is a failed liveness capture.
    90011: Outcome.NOT_LIVE,
    90012: Outcome.PROVIDER_ERROR,  # 人脸数据上传失败
    90013: Outcome.PROVIDER_ERROR,  # SDK初始化库失败
    90014: Outcome.PROVIDER_ERROR,  # 上传ID未初始化
    90015: Outcome.PROVIDER_ERROR,  # 获取人脸配置失败
    90016: Outcome.PROVIDER_ERROR,  # 预览错误
    90017: Outcome.TIMEOUT,  # 识别过程超时
    90018: Outcome.PROVIDER_ERROR,  # 系统错误
    90019: Outcome.PROVIDER_ERROR,  # CDN上传添加队列失败
    90020: Outcome.PROVIDER_ERROR,  # CDN上传失败
    90021: Outcome.PROVIDER_ERROR,  # CDN启动错误
    90022: Outcome.PROVIDER_ERROR,  # 获取前置页信息失败
    90023: Outcome.POOR_QUALITY,  # 人脸追踪失败
    90024: Outcome.USER_CANCELLED,  # 用户在确认页退出
    90104: Outcome.PROVIDER_ERROR,  # 获取人脸配置失败
    90105: Outcome.PROVIDER_ERROR,  # 获取确认数据失败
    90106: Outcome.PROVIDER_ERROR,  # 相机失败
    90107: Outcome.TIMEOUT,  # 用户检测超时
    90109: Outcome.PROVIDER_ERROR,  # 设备不支持人脸检测
    90110: Outcome.PROVIDER_ERROR,  # 获取协议信息失败
    90199: Outcome.PROVIDER_ERROR,  # 用户系统错误
}


def cert_hash(name: str, id_number: str, cert_type: str = CERT_TYPE_ID_CARD) -> str:
    """WeChat's cert_hash of a certificate (see the module docstring); personal data: never log it."""
    fields = (("cert_type", cert_type), ("cert_name", name), ("cert_no", id_number))
    joined = "&".join(f"{key}={base64.b64encode(value.encode('utf-8')).decode('ascii')}" for key, value in fields)
    return hashlib.sha256(joined.encode("ascii")).hexdigest()


class WeChatFaceAdapter(FaceVerifier):
    """WeChat 人脸核身 2.0 over HTTP; see the module docstring for the protocol and the error tables."""

    name = "wechat"
    version = "1.0"
    # WeChat compares the live face with the public-security photo of the name + ID number and does
    # liveness in its SDK; it reports no score.
    capabilities = Capabilities(authoritative_source=True, liveness=True, returns_score=False, needs_openid=True)

    def __init__(
        self,
        *,
        base_url: str,
        appid: str,
        secret: str,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        token_refresh_margin_seconds: float = 300.0,
        token_source: Callable[[], tuple[str, float]] | None = None,
        platform: WeChatPlatform | None = None,
    ):
        self._check_settings(base_url, appid, secret, timeout)
        self.platform = platform or WeChatPlatform(
            base_url=base_url, appid=appid, secret=secret, timeout=timeout, session=session,
            token_refresh_margin_seconds=token_refresh_margin_seconds, token_source=token_source,
        )
        self.base_url, self.appid, self.timeout = self.platform.base_url, appid, float(timeout)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Reads WECHAT_API_BASE, WECHAT_APPID, WECHAT_SECRET and WECHAT_TIMEOUT_SECONDS (default 5)."""
        try:
            timeout = float(config.get("WECHAT_TIMEOUT_SECONDS") or 5.0)
        except (TypeError, ValueError):
            raise ConfigurationError("WECHAT_TIMEOUT_SECONDS must be a number", reason="bad_settings") from None
        settings = {"base_url": str(config.get("WECHAT_API_BASE") or ""),
                    "appid": str(config.get("WECHAT_APPID") or ""),
                    "secret": str(config.get("WECHAT_SECRET") or ""), "timeout": timeout}
        cls._check_settings(**settings)
        return cls(**settings, platform=platform_for(**settings))

    @staticmethod
    def _check_settings(base_url: str, appid: str, secret: str, timeout: float) -> None:
        if not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
            raise ConfigurationError("the WeChat API base URL must be an http(s) URL", reason="bad_settings")
        if not appid or not secret:
            raise ConfigurationError("the WeChat appid and secret are required", reason="bad_settings")
        if not timeout > 0:
            raise ConfigurationError("the WeChat timeout must be positive", reason="bad_settings")

    def __repr__(self) -> str:
        return f"<WeChatFaceAdapter {self.base_url} appid={self.appid}>"

    def close(self) -> None:
        """Close the HTTP connection pool (a shared client opens new connections when next used)."""
        self.platform.close()

    # The interface ---------------------------------------------------------------------------------------

    def start(self, *, verification_id: str, identity: Identity, purpose: str) -> ProviderSession:
        """getverifyid: a verify_id bound by WeChat to this name + ID number and this openid."""
        check_verification_id(verification_id)
        openid = self._openid(identity)
        name, id_number = self._certificate(identity)
        body = {
            "out_seq_no": verification_id,
            "cert_info": {"cert_type": CERT_TYPE_ID_CARD, "cert_name": name, "cert_no": id_number},
            "openid": openid,
        }
        answer = self._call(GETVERIFYID_PATH, body)
        verify_id = answer.get("verify_id")
        if not (isinstance(verify_id, str) and VERIFY_ID.fullmatch(verify_id)):
            log.warning("WeChat getverifyid answered without a usable verify_id")
            raise ProviderUnavailable("WeChat answered getverifyid without a verify_id")
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not 0 < expires_in <= 86400:
            expires_in = DEFAULT_VERIFY_ID_TTL
        return ProviderSession(
            provider=self.name,
            verification_id=verification_id,
            provider_session_id=verify_id,
            client_payload={"verifyId": verify_id},
            expires_at=utcnow() + timedelta(seconds=expires_in),
        )

    def evidence_schema(self) -> dict[str, Any]:
        # WeChat holds the verdict: the mini-program sends `{}` after wx.requestFacialVerify, or passes on the
        # SDK's callback ({verifyResult, errCode}), which is read for nothing.
        scalar = {"anyOf": [{"type": "string", "maxLength": 1000}, {"type": "boolean"}, {"type": "null"},
                            {"type": "number", "minimum": -(10**18 - 1), "maximum": 10**18 - 1}]}
        return {"type": "object", "maxProperties": 20, "additionalProperties": scalar}

    def result(self, *, session: ProviderSession, identity: Identity, evidence: Mapping[str, Any]) -> FaceResult:
        """queryverifyinfo: WeChat's own verdict for the session, checked against this identity."""
        self._check_session(session)
        self._check_evidence_mapping(evidence)  # its content is the client's claim: ignored
        openid = self._openid(identity)
        name, id_number = self._certificate(identity)
        body = {
            "verify_id": session.provider_session_id,
            "out_seq_no": session.verification_id,
            "cert_hash": cert_hash(name, id_number),
            "openid": openid,
        }
        answer = self._call(QUERYVERIFYINFO_PATH, body)
        errcode, verify_ret = answer.get("errcode"), answer.get("verify_ret")
        if errcode != 0 or isinstance(verify_ret, bool) or not isinstance(verify_ret, int):
            log.warning("WeChat queryverifyinfo answered without errcode 0 and an integer verify_ret")
            raise ProviderUnavailable("WeChat answered queryverifyinfo without a verify_ret")
        if verify_ret == VERIFY_RET_PASS:
            outcome = Outcome.PASS
        else:
            outcome = VERIFY_RET_MAP.get(verify_ret, Outcome.PROVIDER_ERROR)
            if verify_ret not in VERIFY_RET_MAP:
                log.warning("WeChat queryverifyinfo answered unknown verify_ret %s", verify_ret)
        liveness = True if outcome is Outcome.PASS else False if outcome is Outcome.NOT_LIVE else None
        return self._result(
            outcome,
            liveness=liveness,
            provider_code=str(verify_ret),
            provider_request_id=request_id_of(answer),
        )

    # HTTP ------------------------------------------------------------------------------------------------

    @staticmethod
    def _openid(identity: Identity) -> str:
        if not isinstance(identity, Identity):
            raise TypeError("identity must be an Identity")
        if not identity.openid:
            raise IdentityDataMissing("openid")
        if not OPENID.fullmatch(identity.openid):
            raise ValueError("identity openid must be 1-64 characters of A-Z a-z 0-9 _ -")
        return identity.openid

    @staticmethod
    def _certificate(identity: Identity) -> tuple[str, str]:
        # getverifyid and cert_hash must see exactly the same strings: normalise in one place.
        return identity.name.strip(), identity.id_number.strip().upper()

    def _call(self, path: str, body: dict) -> dict:
        """POST `body` to a face endpoint through the platform client; its errors as the library's."""
        endpoint = path.rsplit("/", 1)[-1]
        try:
            return self.platform.post(path, body)
        except WeChatMisconfigured as exc:
            # Every face verification fails until an operator acts (the platform client said which settings).
            log.error("WeChat %s refused this server's configuration (errcode %s): check that 人脸核身 is enabled "
                      "for the mini-program", endpoint, exc.errcode)
            raise ConfigurationError(f"WeChat refused the configuration (errcode {exc.errcode})",
                                     reason="provider_configuration") from None
        except WeChatUnavailable as exc:
            log.warning("WeChat %s unavailable: %s", endpoint, exc.detail)
            extra = {"reason": "provider_timeout"} if exc.timed_out else {}
            raise ProviderUnavailable(f"WeChat {endpoint}: {exc.detail}", **extra) from None
        except WeChatRefused as exc:
            error = ERRCODE_MAP.get(exc.errcode)
            if error is None:
                log.warning("WeChat %s answered unexpected errcode %s", endpoint, exc.errcode)
                error = ProviderUnavailable
            else:
                log.info("WeChat %s answered errcode %s", endpoint, exc.errcode)
            raise error(f"WeChat {endpoint} answered errcode {exc.errcode}") from None
