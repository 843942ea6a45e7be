"""Identity assurance over HTTP, as an attacker and as the genuine holder would meet it.

A claim (name + ID number, matched against the registry) is not proof: it unlocks only the `real_name` face
verification, and nothing of the person's data is served or fetched on it (the bureaus' journals show it). The
holder's face pass binds the identity to their account, ends every other account's claim silently, and moves
an identity face-bound elsewhere (换绑): the old account's tokens die at once, in every process, it is told,
and the person's applications follow the identity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from face_flow import (
    LI_NA,
    LIU_YANG,
    ZHANG_WEI,
    bearer,
    bind_person,
    claim_person,
    complete,
    events,
    face_records,
    face_session,
    start,
    verify_with_sandbox,
)

from app.accounts.models import Citizen
from app.extensions import db
from app.face.models import FaceSession
from app.notifications.models import Notification
from app.notifications.services import deliver_pending

HOUSING_FUND_MATTER = "GJJ-GG-002"


def journal_sizes(bureaus) -> dict[str, int]:
    return {kind: len(bureaus.journal(kind)) for kind in bureaus.servers}


def login(client, openid: str) -> dict:
    answer = client.post("/api/v1/auth/wechat/login", json={"code": f"dev-{openid}"})
    assert answer.status_code == 200, answer.json
    return answer.json


def me(client, headers) -> dict:
    return client.get("/api/v1/me", headers=headers).json


def citizen_row(app, openid: str) -> Citizen:
    with app.app_context():
        row = db.session.scalars(sa.select(Citizen).where(Citizen.openid == openid)).one()
        db.session.expunge(row)
        return row


# ------------------------------------------------------------------------------------------------ claims


def test_a_claim_of_someone_elses_identity_reads_and_fetches_nothing(client, bureaus):
    holder = bind_person(client, ZHANG_WEI, openid="holder")
    draft = client.post("/api/v1/applications", headers=holder, json={"matter_code": HOUSING_FUND_MATTER}).json
    attacker = claim_person(client, ZHANG_WEI, openid="attacker")  # leaked name and number: the claim succeeds
    assert me(client, attacker)["assurance"] == "claimed" and me(client, attacker)["real_name_verified"] is False
    fetched = journal_sizes(bureaus)

    attempts = [
        client.post("/api/v1/applications", headers=attacker, json={"matter_code": HOUSING_FUND_MATTER}),
        client.post(f"/api/v1/applications/{draft['id']}/consent", headers=attacker, json=draft["consent_required"]),
        client.post(f"/api/v1/applications/{draft['id']}/prefill", headers=attacker),
        client.get(f"/api/v1/applications/{draft['id']}", headers=attacker),
        client.get("/api/v1/applications", headers=attacker),
        client.get("/api/v1/me/data-access", headers=attacker),
        client.get("/api/v1/me/consents", headers=attacker),
        client.get("/api/v1/me/agent-authorisations", headers=attacker),
        client.post("/api/v1/bundles/newborn/applications", headers=attacker, json={}),
        start(client, attacker, purpose="identity_check"),
    ]
    for answer in attempts:
        assert answer.status_code == 403, answer.request.path
        assert answer.json["error"] == "assurance_required"
        assert answer.json["errors"]["assurance"] == {"current": "claimed", "required": "face"}
        assert "刷脸" in answer.json["message"]
    assert journal_sizes(bureaus) == fetched  # no bureau was asked anything on the claim's behalf


def test_the_holders_face_pass_ends_a_squatters_claim_without_telling_the_squatter(app, client):
    squatter = claim_person(client, ZHANG_WEI, openid="squatter")
    holder_login = login(client, "holder")
    holder_headers = bearer(holder_login["access_token"])
    claimed = client.post("/api/v1/me/real-name", headers=holder_headers,
                          json={"name": ZHANG_WEI[0], "id_number": ZHANG_WEI[1]})
    assert claimed.status_code == 200 and claimed.json["assurance"] == "claimed"  # no "taken" answer

    done = verify_with_sandbox(client, holder_headers, "pass", purpose="real_name")
    assert (done.json["decision"], done.json["assurance"]) == ("pass", "face")

    assert me(client, holder_headers)["assurance"] == "face"
    assert me(client, holder_headers)["real_name_verified"] is True
    squatter_view = me(client, squatter)  # the squatter's token still works: nothing says why the claim ended
    assert (squatter_view["assurance"], squatter_view["id_number"]) == ("none", None)
    assert start(client, squatter, purpose="real_name").json["error"] == "assurance_required"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
    dropped = [r for r in face_records(app) if r.event == "claim_dropped"]
    assert len(dropped) == 1 and dropped[0].actor == f"citizen:{citizen_row(app, 'squatter').id}"
    # Claiming again works as before, and is as harmless: it cannot be proven by the squatter's face.
    again = client.post("/api/v1/me/real-name", headers=squatter,
                        json={"name": ZHANG_WEI[0], "id_number": ZHANG_WEI[1]})
    assert again.status_code == 200 and again.json["assurance"] == "claimed"
    failed = verify_with_sandbox(client, squatter, "no_match", purpose="real_name")
    assert (failed.json["decision"], failed.json["assurance"]) == ("fail", "claimed")
    assert me(client, holder_headers)["assurance"] == "face"


@pytest.fixture(scope="module")
def face_extra():
    pytest.importorskip("dlib", reason="the `face` extra is not installed: pip install 'zhangshangban[face]'")


def test_a_face_of_another_person_does_not_prove_the_claim(app, make_app, face_extra):
    """The local adapter compares with the registry photo of the *claimed* identity (张伟: the astronaut)."""
    from app.sandbox import people

    local = make_app(FACE_PROVIDER="local", FACE_REQUIRE_LIVENESS=False).test_client()
    claimant = claim_person(local, ZHANG_WEI, openid="claimant")
    session_id = start(local, claimant, purpose="real_name").json["session_id"]
    li_na_face = people.photo_base64(people.POPULATION[LI_NA[1]].photo)  # the other public-domain face
    done = complete(local, claimant, session_id, {"image": li_na_face})
    assert (done.json["decision"], done.json["reason"], done.json["assurance"]) == ("fail", "no_match", "claimed")
    assert "tokens" not in done.json and "identity_bound" not in events(app)
    # The right face does prove it.
    session_id = start(local, claimant, purpose="real_name").json["session_id"]
    zhang_face = people.photo_base64(people.POPULATION[ZHANG_WEI[1]].photo)
    assert complete(local, claimant, session_id, {"image": zhang_face}).json["assurance"] == "face"


def test_replayed_and_expired_real_name_sessions(app, client):
    li = claim_person(client, LI_NA)
    session_id = start(client, li, purpose="real_name").json["session_id"]
    assert complete(client, li, session_id, {"sandbox": "pass"}).json["assurance"] == "face"
    replay = complete(client, li, session_id, {"sandbox": "pass"})
    assert replay.status_code == 409 and replay.json["error"] == "face_session_consumed"

    other = claim_person(client, LIU_YANG)
    expiring = start(client, other, purpose="real_name").json["session_id"]
    with app.app_context():
        db.session.execute(sa.update(FaceSession).where(FaceSession.id == expiring)
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
    gone = complete(client, other, expiring, {"sandbox": "pass"})
    assert gone.status_code == 410 and gone.json["error"] == "face_session_expired"
    assert me(client, other)["assurance"] == "claimed" and face_session(app, expiring).status == "expired"


def test_claims_are_limited_per_account(app, client):
    headers = bearer(login(client, "prober")["access_token"])
    people = [ZHANG_WEI, LI_NA] * 3
    answers = [client.post("/api/v1/me/real-name", headers=headers, json={"name": n, "id_number": i})
               for n, i in people]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json["error"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) > 0
    assert [r.reason for r in face_records(app) if r.event == "claim_refused"] == ["rate_limited"]
    # The pair claimed last is answered again without counting.
    assert client.post("/api/v1/me/real-name", headers=headers,
                       json={"name": ZHANG_WEI[0], "id_number": ZHANG_WEI[1]}).status_code == 200


def test_claims_are_limited_per_id_number(make_app):
    client = make_app(REAL_NAME_MAX_CLAIMS_PER_ID_NUMBER=2).test_client()
    statuses = []
    for n in range(3):
        headers = bearer(login(client, f"crowd-{n}")["access_token"])
        statuses.append(client.post("/api/v1/me/real-name", headers=headers,
                                    json={"name": LIU_YANG[0], "id_number": LIU_YANG[1]}))
    assert [a.status_code for a in statuses] == [200, 200, 429]
    assert "Retry-After" in statuses[-1].headers


# ------------------------------------------------------------------------------------------------ 换绑


def test_a_face_pass_moves_the_identity_from_the_account_that_held_it(app, client, make_app, wechat_server,
                                                                      staff_headers):
    old_login = login(client, "old-phone")
    old = bind_person(client, ZHANG_WEI, openid="old-phone")
    draft = client.post("/api/v1/applications", headers=old, json={"matter_code": HOUSING_FUND_MATTER}).json
    receipt = client.post(f"/api/v1/applications/{draft['id']}/consent", headers=old, json=draft["consent_required"])
    assert receipt.status_code == 201

    new = bind_person(client, ZHANG_WEI, openid="new-phone")

    # The old account's tokens are dead at once, here and in another process of the same deployment.
    other_process = make_app().test_client()
    for c in (client, other_process):
        for headers in (old, bearer(old_login["access_token"])):
            answer = c.get("/api/v1/me", headers=headers)
            assert answer.status_code == 401 and answer.json["error"] == "unauthorized"
        refresh = c.post("/api/v1/auth/refresh", headers=bearer(old_login["refresh_token"]))
        assert refresh.status_code == 401
    again = bearer(login(client, "old-phone")["access_token"])
    assert (me(client, again)["assurance"], me(client, again)["id_number"]) == ("none", None)

    # The person's draft and consent followed the identity.
    listing = client.get("/api/v1/applications", headers=new).json
    assert [a["id"] for a in listing["items"]] == [draft["id"]]
    assert client.get(f"/api/v1/applications/{draft['id']}", headers=new).status_code == 200
    assert client.post(f"/api/v1/applications/{draft['id']}/prefill", headers=new).status_code == 200
    assert client.get(f"/api/v1/applications/{draft['id']}", headers=again).status_code == 403

    # The move is logged, with both accounts, and the old account is told.
    old_id, new_id = citizen_row(app, "old-phone").id, citizen_row(app, "new-phone").id
    rebound = [r for r in face_records(app) if r.event in ("identity_rebound", "identity_unbound")]
    assert [(r.event, r.actor, r.reason) for r in rebound] == [
        ("identity_rebound", f"citizen:{new_id}", f"from:citizen:{old_id}"),
        ("identity_unbound", f"citizen:{old_id}", f"to:citizen:{new_id}"),
    ]
    assert len({r.citizen_pseudonym for r in rebound}) == 1
    with app.app_context():
        [message] = db.session.scalars(sa.select(Notification).where(Notification.kind == "identity_moved")).all()
        assert (message.citizen_id, message.application_id) == (old_id, None)
        assert deliver_pending(limit=10)["sent"] >= 1
    import requests

    sent = requests.get(f"{wechat_server.url}/_sandbox/messages", params={"touser": "old-phone"}, timeout=5).json()
    assert [m["template_id"] for m in sent["messages"]] == ["sandbox-account-template"]
    assert ZHANG_WEI[0] not in str(sent) and ZHANG_WEI[1] not in str(sent)

    # Auditors see the whole story as face-verification log records.
    auditor = staff_headers("auditor")
    found = client.get("/api/v1/audit/face-verifications", headers=auditor, query_string={"event": "identity_rebound"})
    assert [r["actor"] for r in found.json["items"]] == [f"citizen:{new_id}"]


def test_tokens_carry_the_assurance_they_were_issued_with(client):
    import jwt as pyjwt

    first = login(client, "tokens")
    assert pyjwt.decode(first["access_token"], options={"verify_signature": False})["assurance"] == "none"
    headers = bearer(first["access_token"])
    client.post("/api/v1/me/real-name", headers=headers, json={"name": LI_NA[0], "id_number": LI_NA[1]})
    done = verify_with_sandbox(client, headers, "pass", purpose="real_name").json
    claims = pyjwt.decode(done["tokens"]["access_token"], options={"verify_signature": False})
    assert (claims["assurance"], claims["epoch"], claims["roles"]) == ("face", 0, ["citizen"])
    # The bind is in force at once, for the token the client already had as well.
    assert client.get("/api/v1/me/consents", headers=headers).status_code == 200


def test_an_agents_authorisation_follows_the_person_not_the_old_account(client, staff_headers):
    agent = staff_headers("agent")
    old = bind_person(client, ZHANG_WEI, openid="old-phone")
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    granted = client.post("/api/v1/me/agent-authorisations", headers=old,
                          json={"agent": "agent", "matter_code": HOUSING_FUND_MATTER, "valid_until": until})
    assert granted.status_code == 201, granted.json
    new = bind_person(client, ZHANG_WEI, openid="new-phone")
    new_id = me(client, new)["id"]
    [authorisation] = client.get("/api/v1/agent/authorisations", headers=agent).json["items"]
    assert authorisation["citizen"]["id"] == new_id
    assert [a["id"] for a in client.get("/api/v1/me/agent-authorisations", headers=new).json["items"]] == [
        granted.json["id"]]
    created = client.post("/api/v1/applications", headers=agent,
                          json={"matter_code": HOUSING_FUND_MATTER, "on_behalf_of": new_id})
    assert created.status_code == 201, created.json


def test_a_corrected_claim_ends_the_sessions_opened_for_the_previous_one(app, client):
    headers = claim_person(client, ZHANG_WEI, openid="typo")
    session_id = start(client, headers, purpose="real_name").json["session_id"]
    client.post("/api/v1/me/real-name", headers=headers, json={"name": LI_NA[0], "id_number": LI_NA[1]})
    answer = complete(client, headers, session_id, {"sandbox": "pass"})
    assert answer.status_code == 410 and face_session(app, session_id).reason == "claim_changed"
    assert me(client, headers)["assurance"] == "claimed"


def test_two_accounts_proving_one_identity_at_once_leave_it_bound_to_one(app, client):
    """The partial unique index lets one bind commit first; the other then moves it (the latest pass wins).
    On PostgreSQL the two completions really race; SQLite serialises them."""
    import threading

    first, second = claim_person(client, ZHANG_WEI, openid="phone-a"), claim_person(client, ZHANG_WEI, openid="phone-b")
    sessions = {"a": (first, start(client, first, purpose="real_name").json["session_id"]),
                "b": (second, start(client, second, purpose="real_name").json["session_id"])}
    barrier, answers = threading.Barrier(2), {}

    def completion(name):
        headers, session_id = sessions[name]
        with app.test_client() as own:
            barrier.wait()
            answers[name] = complete(own, headers, session_id, {"sandbox": "pass"})

    threads = [threading.Thread(target=completion, args=(name,)) for name in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The loser's answer depends on timing: its session ended with its claim (410), or it completed before
    # its claim ended and bound nothing. Never a 500.
    assert sorted(answer.status_code for answer in answers.values()) in ([200, 200], [200, 410])
    rows = sorted((citizen_row(app, openid) for openid in ("phone-a", "phone-b")), key=lambda row: row.assurance)
    assert [row.assurance for row in rows] == ["face", "none"]
    with app.app_context():
        from app.pii import vault

        pseudonym = vault().pseudonym(ZHANG_WEI[1])
    assert (rows[0].id_number_hash, rows[1].id_number_hash) == (pseudonym, None)  # one holder, whole
    bound = [r.event for r in face_records(app) if r.event.startswith("identity_") or r.event == "claim_dropped"]
    assert sorted(bound) in (["claim_dropped", "identity_bound"], ["identity_bound", "identity_rebound",
                                                                  "identity_unbound"])
