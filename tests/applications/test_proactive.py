"""免申即享 end to end in the sandbox: a citizen opts in (a consent of its own), the periodic job checks only the
opted-in, logs every call like a prefill, and tells the eligible once, with a draft ready; opting out stops it."""

from __future__ import annotations

import requests
import sqlalchemy as sa
from face_flow import CHEN_JING, ZHANG_WEI

from app.applications.models import Application, ProactiveNotice
from app.connectors.models import DataAccessRecord
from app.extensions import db
from app.notifications.models import Notification
from app.notifications.services import deliver_pending

PENSION = "RSJ-JF-002"  # 城乡居民基本养老保险待遇申领 (proactive): 60 and over, 15 years paid
RETIREMENT = "GJJ-GG-001"  # 住房公积金提取(离休、退休) (proactive)
OFFER = "/api/v1/me/proactive/offer"
OPT_INS = "/api/v1/me/proactive/opt-ins"


def run_pass(app) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run", "applications.proactive"])
    assert result.exit_code == 0, result.output
    return result.output


def opt_in(client, headers, codes: list[str]):
    offer = client.get(OFFER, headers=headers).json
    chosen = [m for m in offer["matters"] if m["code"] in codes]
    elements = list(dict.fromkeys(name for m in chosen for name in m["elements"]))
    return client.post(OPT_INS, headers=headers, json={"matter_codes": codes, "elements": elements,
                                                       "purpose": offer["purpose"]})


def proactive_calls(app) -> list[DataAccessRecord]:
    with app.app_context():
        return db.session.scalars(sa.select(DataAccessRecord).where(DataAccessRecord.actor == "system")).all()


def test_the_offer_lists_the_proactive_matters_and_what_they_read(client, citizen_as):
    chen = citizen_as(*CHEN_JING)
    offer = client.get(OFFER, headers=chen).json
    matters = {m["code"]: m for m in offer["matters"]}
    assert {PENSION, RETIREMENT} <= set(matters)
    assert "social_insurance.months_paid" in matters[PENSION]["elements"]
    assert "person.id_number" not in matters[PENSION]["elements"]  # the age comes from the proven identity
    assert "免申即享" in offer["purpose"]


def test_nobody_is_evaluated_without_the_opt_in(app, client, citizen_as):
    citizen_as(*CHEN_JING)
    assert "'evaluated': 0" in run_pass(app)
    assert proactive_calls(app) == []


def test_chen_jing_opts_in_is_checked_logged_and_told_once_with_a_draft(app, client, citizen_as, wechat_server):
    chen = citizen_as(*CHEN_JING)
    made = opt_in(client, chen, [PENSION, RETIREMENT])
    assert made.status_code == 201, made.json
    receipt = made.json
    assert receipt["status"] == "active" and receipt["matter_codes"] == [RETIREMENT, PENSION]

    assert "'evaluated': 1, 'notified': 1" in run_pass(app)
    # Every call is in the data-access chain, under the opt-in's purpose, acted by the system.
    calls = proactive_calls(app)
    assert calls and all(c.application_id is None and "免申即享" in c.purpose for c in calls)
    mine = client.get("/api/v1/me/data-access", headers=chen).json["items"]
    assert any(item["acting_user"] == "system" and "免申即享" in item["purpose"] for item in mine)

    # Eligible for the pension (61, 31 years paid); not for the housing-fund withdrawal (no account).
    with app.app_context():
        notices = db.session.scalars(sa.select(ProactiveNotice)).all()
        assert [n.matter_code for n in notices] == [PENSION]
        draft_id = notices[0].application_id
        draft = db.session.get(Application, draft_id)
        assert (draft.status, draft.matter_code) == ("draft", PENSION)
        [message] = db.session.scalars(sa.select(Notification).where(Notification.kind == "proactive_eligible"))
        assert message.application_id == draft.id
        assert deliver_pending(limit=10)["sent"] >= 1
    sent = requests.get(f"{wechat_server.url}/_sandbox/messages", timeout=5).json()["messages"]
    told = [m for m in sent if m["data"]["character_string4"]["value"] == draft_id]
    assert told and told[0]["data"]["phrase2"]["value"] == "可申请"
    assert "草稿" in told[0]["data"]["thing5"]["value"]
    assert CHEN_JING[0] not in str(told) and CHEN_JING[1] not in str(told)

    # The draft is hers, with its timeline saying why it is there; it goes on the usual way.
    detail = client.get(f"/api/v1/applications/{draft_id}", headers=chen).json
    assert [e["kind"] for e in detail["timeline"]] == ["created", "proactive_eligible"]
    assert detail["timeline"][-1]["actor"] == "system"

    # Told once: the next pass checks again (the housing fund might change) but sends nothing new.
    assert "'notified': 0" in run_pass(app)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ProactiveNotice.id))) == 1


def test_opting_out_stops_it_at_once(app, client, citizen_as):
    chen = citizen_as(*CHEN_JING)
    receipt = opt_in(client, chen, [PENSION]).json
    withdrawn = client.delete(f"{OPT_INS}/{receipt['id']}", headers=chen)
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    assert "'evaluated': 0" in run_pass(app)
    assert proactive_calls(app) == []
    listed = client.get(OPT_INS, headers=chen).json["items"]
    assert [item["status"] for item in listed] == ["withdrawn"]
    assert client.delete(f"{OPT_INS}/{'0' * 32}", headers=chen).status_code == 404


def test_zhang_wei_opted_in_is_checked_but_not_told(app, client, citizen_as):
    zhang = citizen_as(*ZHANG_WEI)
    assert opt_in(client, zhang, [RETIREMENT]).status_code == 201
    assert "'evaluated': 1, 'notified': 0" in run_pass(app)  # 41 and working: not retired
    assert proactive_calls(app)


def test_an_opt_in_for_a_matter_that_is_not_proactive_is_422(client, citizen_as):
    chen = citizen_as(*CHEN_JING)
    offer = client.get(OFFER, headers=chen).json
    refused = client.post(OPT_INS, headers=chen, json={"matter_codes": ["GJJ-GG-002"], "elements": [],
                                                       "purpose": offer["purpose"]})
    assert refused.status_code == 422 and refused.json["error"] == "not_proactive"
    wrong = client.post(OPT_INS, headers=chen, json={"matter_codes": [PENSION], "elements": ["person.name"],
                                                     "purpose": offer["purpose"]})
    assert wrong.status_code == 422 and wrong.json["error"] == "consent_mismatch"


def test_the_opt_in_needs_a_face_bound_identity(client, login_citizen):
    headers = {"Authorization": f"Bearer {login_citizen('nobody-yet')['access_token']}"}
    refused = client.get(OFFER, headers=headers)
    assert refused.status_code == 403 and refused.json["error"] == "assurance_required"
    assert client.post(OPT_INS, headers=headers, json={"matter_codes": [PENSION], "elements": [],
                                                       "purpose": "x"}).status_code == 403
