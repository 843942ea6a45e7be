"""Helpers shared by the face-verification API tests (conftest modules are not importable by test modules)."""

from __future__ import annotations

import hashlib

import requests
import sqlalchemy as sa

from app.extensions import db
from app.face.models import FaceSession, FaceVerificationRecord
from app.sandbox import people
from tests.helpers import bearer

ZHANG_WEI = ("张伟", "410105198503120013")
LI_NA = ("李娜", "410102199207040225")
WANG_QIANG = ("王强", "410103197811300350")
LIU_YANG = ("刘洋", "41012220010215047X")
CHEN_JING = ("陈静", "41010419650908058X")
ZHAO_LEI = ("赵磊", "410105199001010636")
SANDBOX_PEOPLE = (ZHANG_WEI, LI_NA, WANG_QIANG, LIU_YANG, CHEN_JING, ZHAO_LEI)
FACE_MATTER = "GJJ-GG-001"  # 住房公积金提取(离休、退休): offers face verification
NON_FACE_MATTER = "MZ-QR-001"  # 内地居民结婚登记: both parties in person, no face option




def openid_for(id_number: str) -> str:
    # Not the ID number itself: login URLs reach urllib3's debug log.
    return "person-" + hashlib.sha256(id_number.encode()).hexdigest()[:16]


def bind_person(client, person: tuple[str, str], openid: str | None = None) -> dict:
    """Log `client`'s app in through the WeChat stand-in and prove the sandbox person (assurance `face`);
    returns the headers of the tokens that carry it."""
    name, id_number = person
    login = client.post("/api/v1/auth/wechat/login", json={"code": f"dev-{openid or openid_for(id_number)}"})
    assert login.status_code == 200, login.json
    return prove(client, bearer(login.json["access_token"]), person)


def claim_person(client, person: tuple[str, str], openid: str | None = None) -> dict:
    """Log in and only claim the sandbox person (assurance `claimed`); returns headers."""
    name, id_number = person
    login = client.post("/api/v1/auth/wechat/login", json={"code": f"dev-{openid or openid_for(id_number)}"})
    assert login.status_code == 200, login.json
    headers = bearer(login.json["access_token"])
    claimed = client.post("/api/v1/me/real-name", headers=headers, json={"name": name, "id_number": id_number})
    assert claimed.status_code == 200, claimed.json
    return headers


def prove(client, headers: dict, person: tuple[str, str]) -> dict:
    """Claim the person for the account of `headers` and prove it by a face pass with the app's adapter (the
    sandbox's magic word, the WeChat stand-in told the phone passed, or the person's registry photo for
    `local`); returns the headers of the tokens that carry `assurance: face`."""
    name, id_number = person
    claimed = client.post("/api/v1/me/real-name", headers=headers, json={"name": name, "id_number": id_number})
    assert claimed.status_code == 200, claimed.json
    started = start(client, headers, purpose="real_name")
    assert started.status_code == 201, started.json
    done = complete(client, headers, started.json["session_id"], passing_evidence(client, started.json, id_number))
    assert done.status_code == 200 and done.json["assurance"] == "face", done.json
    return bearer(done.json["tokens"]["access_token"])


def passing_evidence(client, session: dict, id_number: str) -> dict:
    """What makes the session pass with the app's adapter, for the sandbox person `id_number`."""
    provider = session["provider"]
    if provider == "wechat":
        verify_id = session["client_payload"]["verifyId"]
        base = client.application.config["WECHAT_API_BASE"]
        told = requests.post(f"{base}/_sandbox/face/{verify_id}", json={"result": "pass"}, timeout=5)
        assert told.status_code == 204, told.text
        return {}
    if provider == "local":
        return {"image": people.photo_base64(people.POPULATION[id_number].photo)}
    return {"sandbox": "pass"}


def start(client, headers, **body):
    """POST /face/sessions with an explicit consent (overridable)."""
    return client.post("/api/v1/face/sessions", headers=headers,
                       json={"purpose": "identity_check", "biometric_consent": True, **body})


def complete(client, headers, session_id: str, evidence):
    return client.post(f"/api/v1/face/sessions/{session_id}/complete", headers=headers, json={"evidence": evidence})


def verify_with_sandbox(client, headers, word: str, **body):
    """A whole sandbox verification: start, then complete with the magic word; returns the completion."""
    started = start(client, headers, **body)
    assert started.status_code == 201, started.json
    return complete(client, headers, started.json["session_id"], {"sandbox": word})


def face_records(app) -> list[FaceVerificationRecord]:
    with app.app_context():
        rows = db.session.scalars(sa.select(FaceVerificationRecord).order_by(FaceVerificationRecord.seq)).all()
        db.session.expunge_all()
        return rows


def events(app) -> list[str]:
    return [record.event for record in face_records(app)]


def face_session(app, session_id: str) -> FaceSession:
    with app.app_context():
        row = db.session.get(FaceSession, session_id)
        db.session.expunge(row)
        return row
