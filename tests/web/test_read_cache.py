"""The hot path's cached reads (app/web/readcache.py): a repeat is served from memory, never stale.

Each test makes a read the process then remembers (the same request twice), changes what it shows the way the
service changes it — through the ORM, through a bulk UPDATE, from another app of the same database (another
process), by a face pass that moves an identity — and shows the next read sees the change at once. The last
ones show the documented edges: a change made by hand in the database is seen after `flask read-cache renew`
or READ_CACHE_SECONDS, and a stamp the store lost is simply set again.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from app.accounts.models import Citizen, StaffUser
from app.extensions import db
from app.web import readcache
from tests.face_flow import ZHANG_WEI, bind_person
from tests.helpers import assert_error, bearer

MATTER = "GJJ-GG-002"


@pytest.fixture
def queries(app):
    """A counter of the SQL statements the app's engine runs: queries() → how many so far."""
    with app.app_context():
        engine = db.engine
    seen = []

    def count(*_args):
        seen.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    yield lambda: len(seen)
    sa.event.remove(engine, "before_cursor_execute", count)


def me(client, headers) -> dict:
    answer = client.get("/api/v1/me", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def my_list(client, headers) -> list[tuple[str, str]]:
    answer = client.get("/api/v1/applications", headers=headers)
    assert answer.status_code == 200, answer.json
    return [(item["matter_code"], item["status"]) for item in answer.json["items"]]


def test_a_repeated_profile_read_runs_no_query_and_answers_the_same(client, login_citizen, queries):
    headers = bearer(login_citizen("cache-repeat")["access_token"])
    first = me(client, headers)
    before = queries()
    assert me(client, headers) == first
    assert queries() == before


def test_an_account_changed_through_the_orm_shows_at_once(app, client, citizen, login_citizen):
    headers = bearer(login_citizen("cache-orm")["access_token"])
    with app.app_context():
        ident = citizen("cache-orm")
    assert me(client, headers)["assurance"] == "none"
    with app.app_context():
        row = db.session.get(Citizen, ident)
        row.id_number_masked, row.assurance = "4101**********0013", "claimed"
        db.session.commit()
    shown = me(client, headers)
    assert (shown["assurance"], shown["id_number"]) == ("claimed", "4101**********0013")


def test_an_account_changed_by_a_bulk_update_shows_at_once(app, client, citizen, login_citizen):
    headers = bearer(login_citizen("cache-bulk")["access_token"])
    with app.app_context():
        ident = citizen("cache-bulk")
    assert me(client, headers)["assurance"] == "none"
    with app.app_context():
        db.session.execute(sa.update(Citizen).where(Citizen.id == ident).values(assurance="claimed"))
        db.session.commit()
    assert me(client, headers)["assurance"] == "claimed"


def test_a_change_made_by_another_process_shows_at_once(app, client, make_app, citizen, login_citizen):
    headers = bearer(login_citizen("cache-other")["access_token"])
    with app.app_context():
        ident = citizen("cache-other")
    assert me(client, headers)["assurance"] == "none"
    other = make_app()  # another API process on the same database and store
    with other.app_context():
        db.session.execute(sa.update(Citizen).where(Citizen.id == ident).values(assurance="claimed"))
        db.session.commit()
    assert me(client, headers)["assurance"] == "claimed"


def test_the_list_follows_new_drafts_and_transitions(client):
    headers = bind_person(client, ZHANG_WEI)
    assert my_list(client, headers) == []
    assert my_list(client, headers) == []  # remembered
    created = client.post("/api/v1/applications", headers=headers, json={"matter_code": MATTER})
    assert created.status_code == 201, created.json
    assert my_list(client, headers) == [(MATTER, "draft")]
    withdrawn = client.post(f"/api/v1/applications/{created.json['id']}/withdraw", headers=headers, json={})
    assert withdrawn.status_code == 200, withdrawn.json
    assert my_list(client, headers) == [(MATTER, "withdrawn")]


def test_the_list_follows_a_renamed_matter(app, client):
    headers = bind_person(client, ZHANG_WEI)
    assert client.post("/api/v1/applications", headers=headers, json={"matter_code": MATTER}).status_code == 201
    assert client.get("/api/v1/applications", headers=headers).json["items"][0]["matter_name"] != "改名以后"
    from app.catalogue.models import Matter

    with app.app_context():
        db.session.scalars(sa.select(Matter).where(Matter.code == MATTER)).one().name = "改名以后"
        db.session.commit()
    assert client.get("/api/v1/applications", headers=headers).json["items"][0]["matter_name"] == "改名以后"


def test_tokens_of_an_account_whose_identity_moved_are_refused_at_once(client):
    first = bind_person(client, ZHANG_WEI, openid="cache-first-holder")
    assert me(client, first)["assurance"] == "face"
    assert me(client, first)["assurance"] == "face"  # remembered, in the guard and in /me
    bind_person(client, ZHANG_WEI, openid="cache-second-holder")  # the same person proves it on another phone
    assert_error(client.get("/api/v1/me", headers=first), 401, "unauthorized")


def test_a_deactivated_staff_account_is_refused_at_once(app, client, staff_headers):
    headers = staff_headers("reviewer-gjj")
    assert client.get("/api/v1/staff/me", headers=headers).status_code == 200
    assert client.get("/api/v1/staff/me", headers=headers).status_code == 200  # remembered
    with app.app_context():
        db.session.scalars(sa.select(StaffUser).where(StaffUser.username == "reviewer-gjj")).one().active = False
        db.session.commit()
    assert_error(client.get("/api/v1/staff/me", headers=headers), 401, "unauthorized")


def test_a_stamp_the_store_lost_is_set_again(app, client, citizen, login_citizen):
    headers = bearer(login_citizen("cache-evicted")["access_token"])
    me(client, headers)
    with app.app_context():
        ident = citizen("cache-evicted")
    store = readcache._store(app)
    store.delete(readcache.account_stamp("citizen", ident))
    store.delete(readcache.GENERATION)
    with app.app_context():
        db.session.execute(sa.update(Citizen).where(Citizen.id == ident).values(assurance="claimed"))
        db.session.commit()
    store.delete(readcache.account_stamp("citizen", ident))
    assert me(client, headers)["assurance"] == "claimed"
    assert me(client, headers)["assurance"] == "claimed"


def test_a_change_by_hand_shows_after_renew(app, client, citizen, login_citizen):
    headers = bearer(login_citizen("cache-by-hand")["access_token"])
    with app.app_context():
        ident = citizen("cache-by-hand")
    assert me(client, headers)["assurance"] == "none"
    with app.app_context(), db.engine.begin() as connection:  # not through the service: no stamp renewed
        connection.execute(sa.text("UPDATE citizens SET assurance = 'claimed' WHERE id = :id"), {"id": ident})
    assert me(client, headers)["assurance"] == "none"  # the documented edge
    result = app.test_cli_runner().invoke(args=["read-cache", "renew"])
    assert result.exit_code == 0, result.output
    assert me(client, headers)["assurance"] == "claimed"


def test_a_change_by_hand_shows_after_read_cache_seconds(app, make_app, citizen):
    short = make_app(READ_CACHE_SECONDS=0.5)
    client = short.test_client()
    login = client.post("/api/v1/auth/wechat/login", json={"code": "dev-cache-max-age"})
    headers = bearer(login.json["access_token"])
    with app.app_context():
        ident = citizen("cache-max-age")
    assert me(client, headers)["assurance"] == "none"
    with short.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE citizens SET assurance = 'claimed' WHERE id = :id"), {"id": ident})
    time.sleep(0.6)
    assert me(client, headers)["assurance"] == "claimed"


def test_the_cache_can_be_turned_off(app, make_app, citizen):
    off = make_app(READ_CACHE_ENTRIES=0)
    client = off.test_client()
    headers = bearer(client.post("/api/v1/auth/wechat/login", json={"code": "dev-cache-off"}).json["access_token"])
    with app.app_context():
        ident = citizen("cache-off")
    assert me(client, headers)["assurance"] == "none"
    with off.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE citizens SET assurance = 'claimed' WHERE id = :id"), {"id": ident})
    assert me(client, headers)["assurance"] == "claimed"
