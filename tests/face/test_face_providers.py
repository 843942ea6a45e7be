"""The face flow through the API with the real adapters: WeChat over HTTP (the stand-in) and local dlib.

WeChat: a test app with FACE_PROVIDER=wechat talks to the sandbox's WeChat stand-in (tests/conftest.py's
`wechat_server`, already its WECHAT_API_BASE); what the citizen's phone did is set through the stand-in's
`/_sandbox/face/<verify_id>`. Local: the reference photo comes from the sandbox population bureau through the
connector path (张伟's is the NASA astronaut portrait); skipped, with the pip command, without the `face` extra.
Faults of either provider get the error shape and a verification-log record, never a 500.
"""

from __future__ import annotations

import base64
import io
import logging

import pytest
import requests
import sqlalchemy as sa
from face_flow import (
    FACE_MATTER,
    LI_NA,
    WANG_QIANG,
    ZHANG_WEI,
    bind_person,
    claim_person,
    complete,
    events,
    face_records,
    face_session,
    start,
)

from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.face.models import FaceSession
from app.sandbox.server import serve
from app.sandbox.wechat import create_wechat_app
from tests.helpers import FACES

FACE_EXTRA_REASON = "the `face` extra is not installed: pip install 'zhangshangban[face]'"


class Phone:
    """What the citizen's phone did, told to the WeChat stand-in."""

    def __init__(self, url: str):
        self.url = url

    def did(self, verify_id: str, result: str) -> None:
        answer = requests.post(f"{self.url}/_sandbox/face/{verify_id}", json={"result": result}, timeout=5)
        assert answer.status_code == 204, answer.text

    def queries(self, verify_id: str) -> int:
        return requests.get(f"{self.url}/_sandbox/face/{verify_id}", timeout=5).json()["queries"]


@pytest.fixture(scope="module")
def quiet_werkzeug():
    log = logging.getLogger("werkzeug")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)


# ------------------------------------------------------------------------------------------------ WeChat


@pytest.fixture
def wechat(make_app, wechat_server, quiet_werkzeug):
    """(client, phone) of an app verifying faces with WeChat (the stand-in, over HTTP)."""
    other = make_app(FACE_PROVIDER="wechat")
    return other.test_client(), Phone(wechat_server.url)


def started(client, headers, **body) -> tuple[str, str]:
    answer = start(client, headers, **body)
    assert answer.status_code == 201, answer.json
    assert answer.json["provider"] == "wechat" and answer.json["liveness"] is True
    return answer.json["session_id"], answer.json["client_payload"]["verifyId"]


def test_wechat_pass_over_http(app, wechat):
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang, purpose="apply", matter_code=FACE_MATTER)
    phone.did(verify_id, "pass")
    done = complete(client, zhang, session_id, {})
    assert done.status_code == 200 and done.json["decision"] == "pass"
    assert client.get("/api/v1/me", headers=zhang).json["face_verified_until"] == done.json["face_verified_until"]
    result = face_records(app)[-2]
    assert (result.event, result.provider, result.outcome) == ("result", "wechat", "pass")
    assert (result.provider_code, result.provider_session_id) == ("10000", verify_id)  # verify_ret, verify_id
    assert phone.queries(verify_id) == 1


def test_wechat_client_evidence_is_ignored(app, wechat):
    """A client claiming a pass is not believed: WeChat says the citizen's face did not match."""
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang)
    phone.did(verify_id, "no_match")
    done = complete(client, zhang, session_id, {"verify_ret": 10000, "result": "pass"})
    assert (done.json["decision"], done.json["reason"]) == ("fail", "no_match")


@pytest.mark.parametrize(("phone_result", "reason"), [
    ("no_match", "no_match"),
    ("id_mismatch", "no_match"),
    ("not_live", "not_live"),
    ("poor_quality", "poor_quality"),
    ("cancelled", "user_cancelled"),
    ("timeout", "timeout"),
    ("unknown_ret", "provider_error"),
])
def test_wechat_failures(app, wechat, phone_result, reason):
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang)
    phone.did(verify_id, phone_result)
    done = complete(client, zhang, session_id, {})
    assert done.status_code == 200 and (done.json["decision"], done.json["reason"]) == ("fail", reason)
    decision = face_records(app)[-1]
    # provider_error is no verdict on the citizen's face: it does not count toward the limit.
    assert decision.failures == (None if reason == "provider_error" else 1)


def test_wechat_result_pending_leaves_the_session_open(app, wechat):
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang)
    pending = complete(client, zhang, session_id, {})
    assert pending.status_code == 409 and pending.json["error"] == "face_result_pending"
    assert face_session(app, session_id).status == "created" and events(app)[-1] == "result_pending"
    phone.did(verify_id, "pass")
    assert complete(client, zhang, session_id, {}).json["decision"] == "pass"


@pytest.mark.parametrize("fault", ["http500", "garbage", "busy", "noret"])
def test_wechat_faults_at_completion_are_503_and_retryable(app, wechat, fault):
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang)
    phone.did(verify_id, fault)
    answer = complete(client, zhang, session_id, {})
    assert answer.status_code == 503 and answer.json["error"] == "upstream_unavailable"
    assert set(answer.json) >= {"code", "status", "error", "message"}
    assert face_session(app, session_id).status == "created"
    assert events(app)[-1] == "provider_unavailable"
    phone.did(verify_id, "pass")  # WeChat recovers; the citizen's scan still counts
    assert complete(client, zhang, session_id, {}).json["decision"] == "pass"


def test_wechat_expired_verify_id_is_410(app, wechat):
    client, phone = wechat
    zhang = bind_person(client, ZHANG_WEI)
    session_id, verify_id = started(client, zhang)
    phone.did(verify_id, "expired")
    answer = complete(client, zhang, session_id, {})
    assert answer.status_code == 410 and answer.json["error"] == "face_session_expired"
    assert face_session(app, session_id).status == "expired"
    assert face_records(app)[-1].reason == "provider_expired"


@pytest.mark.parametrize(("openid", "person"), [
    ("face-busy", ZHANG_WEI),
    ("face-http500", LI_NA),
    ("face-garbage", WANG_QIANG),
    ("face-noverifyid", ZHANG_WEI),
    ("face-unauthorized", LI_NA),
])
def test_wechat_faults_at_start_are_503_and_logged(app, wechat, openid, person):
    client, _phone = wechat
    headers = claim_person(client, person, openid=openid)  # its proof is the first start that fails
    answer = start(client, headers, purpose="real_name")
    assert answer.status_code == 503 and answer.json["error"] == "upstream_unavailable"
    assert events(app)[-1] == "start_failed"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(FaceSession.id))) == 0


def test_wechat_enforces_the_identity_binding(app, wechat):
    """A session whose provider state points at another citizen's verification fails at WeChat's binding."""
    client, phone = wechat
    zhang, li = bind_person(client, ZHANG_WEI), bind_person(client, LI_NA)
    window = client.get("/api/v1/me", headers=zhang).json["face_verified_until"]  # the real-name pass's
    zhang_session, _ = started(client, zhang)
    li_session, li_verify = started(client, li)
    phone.did(li_verify, "pass")
    with app.app_context():
        stolen = db.session.get(FaceSession, li_session).provider_session
        db.session.execute(sa.update(FaceSession).where(FaceSession.id == zhang_session)
                           .values(provider_session=stolen))
        db.session.commit()
    done = complete(client, zhang, zhang_session, {})
    assert (done.json["decision"], done.json["reason"]) == ("fail", "identity_mismatch")
    assert client.get("/api/v1/me", headers=zhang).json["face_verified_until"] == window


@pytest.fixture(scope="module")
def slow_wechat():
    server = serve(create_wechat_app(slow_seconds=1.0))
    yield server
    server.stop()


def test_wechat_timeouts_are_503(app, client, make_app, slow_wechat, quiet_werkzeug):
    wechat_client = make_app(FACE_PROVIDER="wechat", WECHAT_API_BASE=slow_wechat.url,
                             WECHAT_TIMEOUT_SECONDS=0.3).test_client()
    slow = claim_person(client, ZHANG_WEI, openid="face-slow")
    client = wechat_client
    answer = start(client, slow, purpose="real_name")
    assert answer.status_code == 503 and face_records(app)[-1].reason == "provider_timeout"
    li = bind_person(app.test_client(), LI_NA)  # proven with the sandbox adapter: the same accounts
    session_id, verify_id = started(client, li)
    Phone(slow_wechat.url).did(verify_id, "slow")
    answer = complete(client, li, session_id, {})
    assert answer.status_code == 503 and face_records(app)[-1].event == "provider_unavailable"
    assert face_session(app, session_id).status == "created"


# ------------------------------------------------------------------------------------------------ local


@pytest.fixture(scope="module")
def face_extra():
    pytest.importorskip("dlib", reason=FACE_EXTRA_REASON)
    pytest.importorskip("PIL", reason=FACE_EXTRA_REASON)


def photo(name: str, change=None, fmt: str = "JPEG") -> str:
    """A test face (tests/data/faces) as base64, optionally changed with Pillow first."""
    from PIL import Image

    with Image.open(FACES / name) as image:
        picture = image.convert("RGB")
    if change is not None:
        picture = change(picture)
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def local(make_app, face_extra):
    """A client of an offline deployment: the local adapter, liveness knowingly not required."""
    return make_app(FACE_PROVIDER="local", FACE_REQUIRE_LIVENESS=False).test_client()


def test_local_same_person_passes_against_the_registry_photo(app, local):
    from PIL import Image, ImageEnhance

    zhang = bind_person(local, ZHANG_WEI)
    answer = start(local, zhang, purpose="apply", matter_code=FACE_MATTER)
    assert answer.status_code == 201 and answer.json["liveness"] is False
    assert answer.json["client_payload"]["evidence"]["images"]["max"] == 3
    variant = photo("astronaut.jpg", lambda im: ImageEnhance.Brightness(
        im.rotate(10, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))).enhance(1.3))
    done = complete(local, zhang, answer.json["session_id"], {"images": [variant]})
    assert done.status_code == 200 and done.json["decision"] == "pass", done.json
    assert done.json["face_verified_until"] is not None
    result = face_records(app)[-2]
    assert result.provider == "local" and result.threshold == 0.4 and result.similarity >= 0.4
    assert result.liveness is None
    # At start (refuse early) and at completion, for this session as for the real-name proof; never stored.
    assert photo_fetches(app) == 4


def photo_fetches(app) -> int:
    with app.app_context():
        fetched = db.session.scalars(sa.select(DataAccessRecord.elements_requested)).all()
    return fetched.count(["person.photo"])


def test_local_another_face_fails(app, local):
    zhang = bind_person(local, ZHANG_WEI)
    session_id = start(local, zhang).json["session_id"]
    done = complete(local, zhang, session_id, {"image": photo("grace_hopper.jpg")})
    assert (done.json["decision"], done.json["reason"]) == ("fail", "no_match")
    decision = face_records(app)[-1]
    assert decision.threshold == 0.4 and decision.failures == 1


def test_local_requires_liveness_for_matters_by_default(app, make_app, face_extra):
    zhang = bind_person(app.test_client(), ZHANG_WEI)  # proven before: no real-name proof without liveness
    client = make_app(FACE_PROVIDER="local").test_client()
    refused = start(client, zhang, purpose="apply", matter_code=FACE_MATTER)
    assert refused.status_code == 422 and refused.json["error"] == "face_capability_missing"
    session_id = start(client, zhang).json["session_id"]
    done = complete(client, zhang, session_id, {"image": photo("astronaut.jpg")})
    assert (done.json["decision"], done.json["reason"], done.json["face_verified_until"]) == (
        "pass", "pass_without_liveness", None)


def test_local_bad_images(app, make_app, face_extra):
    from PIL import Image

    client = make_app(FACE_PROVIDER="local", FACE_REQUIRE_LIVENESS=False,
                      FACE_LOCAL_MAX_IMAGE_BYTES=30_000).test_client()
    zhang = bind_person(client, ZHANG_WEI)
    session_id = start(client, zhang).json["session_id"]
    cases = [
        ({"image": base64.b64encode(b"GIF89a not a face").decode()}, 422, "not_an_image"),
        ({"image": "%%% not base64 %%%"}, 422, "not_base64"),
        ({"image": base64.b64encode(b"\xff\xd8\xff\xe0 truncated jpeg").decode()}, 422, "not_an_image"),
        ({"images": []}, 422, "bad_shape"),
        ({"photo": "x"}, 422, "bad_shape"),
        ({"image": photo("astronaut.jpg", lambda im: im.resize((1400, 1400)), fmt="PNG")}, 413, "too_large"),
    ]
    for evidence, status, reason in cases:
        answer = complete(client, zhang, session_id, evidence)
        assert answer.status_code == status, (reason, answer.json)
        assert face_records(app)[-1].reason == reason
    assert face_session(app, session_id).status == "created"
    # A photo without a face is a verdict (the citizen may take another): a failed decision.
    blank = photo("astronaut.jpg", lambda im: Image.new("RGB", (256, 256), (200, 180, 160)))
    done = complete(client, zhang, session_id, {"image": blank})
    assert (done.json["decision"], done.json["reason"]) == ("fail", "poor_quality")


def test_local_without_a_registry_photo_points_to_the_non_face_path(app, local, bureaus):
    wang = claim_person(local, WANG_QIANG)  # the registry holds no photo of 王强: no face proof for him
    answer = start(local, wang, purpose="real_name")
    assert answer.status_code == 422 and answer.json["error"] == "face_reference_unavailable"
    assert (face_records(app)[-1].event, face_records(app)[-1].reason) == ("start_failed", "reference_photo_missing")
    zhang = bind_person(local, ZHANG_WEI)
    bureaus.set_mode("population", "error500")
    answer = start(local, zhang)
    assert answer.status_code == 503 and face_records(app)[-1].reason == "reference_failed"


def test_local_registry_down_at_completion_leaves_the_session_open(app, local, bureaus):
    zhang = bind_person(local, ZHANG_WEI)
    session_id = start(local, zhang).json["session_id"]
    bureaus.set_mode("population", "error500")
    answer = complete(local, zhang, session_id, {"image": photo("astronaut.jpg")})
    assert answer.status_code == 503 and answer.json["error"] == "upstream_unavailable"
    assert (face_records(app)[-1].event, face_records(app)[-1].reason) == ("provider_unavailable", "reference_failed")
    assert face_session(app, session_id).status == "created"
    bureaus.set_mode("population", "normal")
    assert complete(local, zhang, session_id, {"image": photo("astronaut.jpg")}).json["decision"] == "pass"
