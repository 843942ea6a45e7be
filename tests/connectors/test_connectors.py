"""The connector registry over the API: lifecycle, who sees what, secrets, the URL guard, health, usage."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from app.accounts.services.staff import create_staff
from app.connectors.models import Connector, ConnectorEvent
from app.extensions import db
from app.pii import vault

POPULATION_ELEMENTS = ["person.name", "person.household_address"]


@pytest.fixture
def admin(staff_headers):
    return staff_headers("admin")


@pytest.fixture
def bureau_ga(staff_headers):
    return staff_headers("bureau-ga")


@pytest.fixture
def bureau_gjj(app, client):
    """A second bureau's account (the sandbox seeds only 公安局's)."""
    with app.app_context():
        create_staff("bureau-gjj", "sandbox-pass", ["bureau"], bureau_code="gjj")
    response = client.post("/api/v1/auth/staff/login", json={"username": "bureau-gjj", "password": "sandbox-pass"})
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def register(client, headers, **body):
    return client.post("/api/v1/connectors", headers=headers, json=body)


def minimal(bureaus, **changes) -> dict:
    """The minimal body of API.md, pointing at the sandbox population bureau (an allowed origin)."""
    return {"name": "人口信息查询(测试)", "base_url": bureaus.url("population"), "elements": POPULATION_ELEMENTS,
            **changes}


def events(app, connector_id: str) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(sa.select(ConnectorEvent).where(ConnectorEvent.connector_id == connector_id)
                                  .order_by(ConnectorEvent.at)).all()
        return [(row.action, row.actor) for row in rows]


# ----------------------------------------------------------------------------------------------- lifecycle


def test_register_with_the_minimal_body_gets_documented_defaults_and_a_secret_once(app, client, bureau_ga,
                                                                                   bureaus):
    response = register(client, bureau_ga, **minimal(bureaus))

    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "pending" and body["bureau"] == "ga"
    assert len(body["secret"]) >= 32
    assert body["mapping"] == {"person.name": "person.name", "person.household_address": "person.household_address"}
    assert body["elements"] == POPULATION_ELEMENTS
    assert (body["query_path"], body["health_path"], body["auth_type"]) == ("/query", "/health", "hmac")
    assert (body["timeout_seconds"], body["trust_level"], body["max_response_bytes"]) == (3.0, "A", 1048576)
    assert body["source_updated_path"] == "updated_at" and body["version"] == 1
    with app.app_context():
        row = db.session.get(Connector, body["id"])
        assert body["secret"] not in row.secret_encrypted
        assert vault().decrypt(row.secret_encrypted) == body["secret"]
    # Never again: not in the detail, the list, an update or the events.
    detail = client.get(f"/api/v1/connectors/{body['id']}", headers=bureau_ga)
    listing = client.get("/api/v1/connectors", headers=bureau_ga)
    updated = client.patch(f"/api/v1/connectors/{body['id']}", headers=bureau_ga, json={"name": "改名"})
    history = client.get(f"/api/v1/connectors/{body['id']}/events", headers=bureau_ga)
    for answer in (detail, listing, updated, history):
        assert answer.status_code == 200
        assert body["secret"] not in answer.get_data(as_text=True)
        assert "secret_encrypted" not in answer.get_data(as_text=True)
    assert "secret" not in detail.json


def test_the_full_lifecycle_with_its_events(app, client, bureau_ga, admin, bureaus):
    created = register(client, bureau_ga, **minimal(bureaus)).json
    path = f"/api/v1/connectors/{created['id']}"

    approved = client.post(f"{path}/approve", headers=admin)
    assert approved.status_code == 200 and approved.json["status"] == "active"
    assert approved.json["approved_by"].startswith("staff:") and approved.json["approved_at"]
    assert client.post(f"{path}/approve", headers=admin).json["version"] == approved.json["version"]  # idempotent

    renamed = client.patch(path, headers=bureau_ga, json={"name": "人口信息查询(改)", "timeout_seconds": 2.5})
    assert renamed.status_code == 200 and renamed.json["status"] == "active"  # nothing approved changed

    moved = client.patch(path, headers=bureau_ga, json={"elements": ["person.name"]})
    assert moved.json["status"] == "pending" and moved.json["approved_at"] is None
    assert moved.json["mapping"] == {"person.name": "person.name"}

    rotated = client.post(f"{path}/rotate-secret", headers=bureau_ga)
    assert rotated.status_code == 200 and rotated.json["secret"] != created["secret"]

    assert client.post(f"{path}/approve", headers=admin).json["status"] == "active"
    disabled = client.post(f"{path}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json["status"] == "disabled"

    history = client.get(f"{path}/events", headers=admin).json["items"]
    assert [e["action"] for e in history] == [
        "registered", "approved", "updated", "updated", "secret_rotated", "approved", "disabled"]
    bureau_actor, admin_actor = history[0]["actor"], history[1]["actor"]
    assert bureau_actor != admin_actor and all(e["actor"].startswith("staff:") for e in history)
    assert history[3]["changes"]["status"] == {"from": "active", "to": "pending"}
    assert history[4]["changes"] == {"secret": "rotated"}
    assert rotated.json["secret"] not in str(history) and created["secret"] not in str(history)


@pytest.mark.parametrize("change", [
    {"base_url": "https://data.bureau.example.cn/rk"},
    {"query_path": "/v2/query"},
    {"health_path": "/v2/health"},
    {"mapping": {"person.name": "data.xm", "person.household_address": "data.hjdz"}},
    {"elements": ["person.name", "person.household_address", "person.gender"]},
    {"trust_level": "B"},
])
def test_changing_what_was_approved_returns_to_pending(client, bureau_ga, admin, bureaus, change):
    created = register(client, bureau_ga, **minimal(bureaus)).json
    client.post(f"/api/v1/connectors/{created['id']}/approve", headers=admin)

    response = client.patch(f"/api/v1/connectors/{created['id']}", headers=bureau_ga, json=change)

    assert response.status_code == 200, response.json
    assert response.json["status"] == "pending"


def test_an_update_that_changes_nothing_records_nothing(app, client, bureau_ga, bureaus):
    created = register(client, bureau_ga, **minimal(bureaus)).json
    again = client.patch(f"/api/v1/connectors/{created['id']}", headers=bureau_ga,
                         json={"name": created["name"], "elements": POPULATION_ELEMENTS})
    assert again.status_code == 200 and again.json["version"] == 1
    assert [action for action, _ in events(app, created["id"])] == ["registered"]


def test_custom_mapping_and_options(client, bureau_ga, bureaus):
    response = register(client, bureau_ga, name="人口库", base_url=bureaus.url("population"),
                        mapping={"person.name": "data.xm"}, query_path="/rkxx/v1/query", auth_type="api_key",
                        timeout_seconds=1.5, trust_level="B", source_updated_path="gxsj",
                        max_response_bytes=65536)
    assert response.status_code == 201, response.json
    assert response.json["elements"] == ["person.name"] and response.json["auth_type"] == "api_key"
    assert response.json["source_updated_path"] == "gxsj"


@pytest.mark.parametrize(("body", "field"), [
    ({"elements": ["person.shoe_size"]}, "elements"),
    ({"elements": []}, "elements"),
    ({"elements": ["person.name", "person.name"]}, "elements"),
    ({"elements": None}, "elements"),
    ({"mapping": {"person.name": "data..xm"}, "elements": ["person.name"]}, "mapping"),
    ({"mapping": {"person.name": "data.xm"}, "elements": ["person.gender"]}, "elements"),
    ({"query_path": "../admin"}, "query_path"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
    ({"timeout_seconds": 120}, "timeout_seconds"),
    ({"auth_type": "basic"}, "auth_type"),
    ({"trust_level": "S"}, "trust_level"),
    ({"max_response_bytes": 10}, "max_response_bytes"),
    ({"name": ""}, "name"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_registrations_are_422_and_store_nothing(client, bureau_ga, bureaus, row_counts, body, field):
    before = row_counts()
    response = register(client, bureau_ga, **minimal(bureaus, **body))
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_failed"
    assert field in response.json["errors"]["json"]
    assert row_counts() == before


def test_registration_needs_elements(client, bureau_ga, bureaus):
    response = register(client, bureau_ga, name="x", base_url=bureaus.url("population"))
    assert response.status_code == 422 and "elements" in response.json["errors"]["json"]


# -------------------------------------------------------------------------------------------------- the URL guard

UNSAFE_URLS = [
    pytest.param("http://data.bureau.example.cn/api", "https_required", id="plain-http"),
    pytest.param("https://127.0.0.1/api", "loopback_address", id="loopback"),
    pytest.param("https://127.8.9.10:8443", "loopback_address", id="loopback-range"),
    pytest.param("https://localhost/api", "loopback_address", id="localhost"),
    pytest.param("https://10.1.2.3/api", "private_address", id="10/8"),
    pytest.param("https://172.16.0.1/api", "private_address", id="172.16/12-low"),
    pytest.param("https://172.31.255.254/api", "private_address", id="172.16/12-high"),
    pytest.param("https://192.168.0.10/api", "private_address", id="192.168/16"),
    pytest.param("https://169.254.169.254/latest/meta-data", "metadata_address", id="cloud-metadata"),
    pytest.param("https://169.254.1.1/", "link_local_address", id="link-local"),
    pytest.param("https://[::1]/api", "loopback_address", id="ipv6-loopback"),
    pytest.param("https://[::ffff:127.0.0.1]/api", "ipv4_mapped_address", id="ipv4-mapped-loopback"),
    pytest.param("https://[::ffff:10.0.0.1]/api", "ipv4_mapped_address", id="ipv4-mapped-private"),
    pytest.param("https://[fe80::1]/api", "link_local_address", id="ipv6-link-local"),
    pytest.param("https://[fd00::1]/api", "private_address", id="ipv6-unique-local"),
    pytest.param("https://2130706433/api", "non_canonical_ip", id="decimal-ip"),
    pytest.param("https://0x7f000001/api", "non_canonical_ip", id="hex-ip"),
    pytest.param("https://0177.0.0.1/api", "non_canonical_ip", id="octal-ip"),
    pytest.param("https://user:pw@data.bureau.example.cn/api", "userinfo_not_allowed", id="userinfo"),
    pytest.param("https://intranet.bureau.example.cn/api", "private_address", id="name-resolving-to-10/8"),
    pytest.param("https://router.bureau.example.cn/api", "private_address", id="name-resolving-to-192.168"),
    pytest.param("https://docker.bureau.example.cn/api", "private_address", id="name-resolving-to-172.17"),
    pytest.param("https://metadata.bureau.example.cn/api", "metadata_address", id="name-resolving-to-metadata"),
    pytest.param("https://loop.bureau.example.cn/api", "loopback_address", id="name-resolving-to-loopback"),
    pytest.param("https://loop6.bureau.example.cn/api", "loopback_address", id="name-resolving-to-ipv6-loopback"),
    pytest.param("https://split.bureau.example.cn/api", "private_address", id="name-resolving-to-both"),
    pytest.param("https://nowhere.bureau.example.cn/api", "unresolvable", id="unresolvable"),
    pytest.param("ftp://data.bureau.example.cn/api", "scheme_not_allowed", id="ftp"),
]


@pytest.mark.parametrize(("url", "reason"), UNSAFE_URLS)
def test_unsafe_urls_are_refused_and_nothing_is_stored(client, bureau_ga, bureaus, row_counts, url, reason):
    before = row_counts()
    response = register(client, bureau_ga, **minimal(bureaus, base_url=url))

    assert response.status_code == 422, response.json
    assert response.json["error"] == "unsafe_url"
    assert response.json["errors"]["json"]["base_url"] == [reason]
    assert reason in response.json["message"]
    assert row_counts() == before


def test_only_the_exact_sandbox_origins_may_be_plain_http(client, bureau_ga, bureaus):
    port = int(bureaus.url("population").rsplit(":", 1)[1])
    other_port = f"http://127.0.0.1:{port + 1000}"
    response = register(client, bureau_ga, **minimal(bureaus, base_url=other_port))
    assert response.status_code == 422 and response.json["error"] == "unsafe_url"
    with_prefix = register(client, bureau_ga, **minimal(bureaus, base_url=bureaus.url("population") + "/v1"))
    assert with_prefix.status_code == 201


def test_an_update_to_an_unsafe_url_is_refused_and_changes_nothing(app, client, bureau_ga, bureaus):
    created = register(client, bureau_ga, **minimal(bureaus)).json
    response = client.patch(f"/api/v1/connectors/{created['id']}", headers=bureau_ga,
                            json={"base_url": "https://169.254.169.254/"})
    assert response.status_code == 422 and response.json["error"] == "unsafe_url"
    detail = client.get(f"/api/v1/connectors/{created['id']}", headers=bureau_ga).json
    assert detail["base_url"] == bureaus.url("population") and detail["version"] == 1
    assert [action for action, _ in events(app, created["id"])] == ["registered"]


def test_a_public_https_url_is_accepted(client, bureau_ga):
    response = register(client, bureau_ga, name="公安人口库", base_url="https://data.bureau.example.cn/rk",
                        elements=["person.name"])
    assert response.status_code == 201, response.json


def test_no_insecure_origin_is_allowed_without_the_sandbox(app, make_app, test_settings, bureaus):
    from app.connectors.services.runtime import allowed_insecure_origins

    production_like = make_app(SANDBOX_ENABLED=False)
    assert allowed_insecure_origins(production_like.config) == []
    sandboxed = make_app()
    assert sorted(allowed_insecure_origins(sandboxed.config)) == sorted(test_settings["SANDBOX_BUREAU_URLS"].values())


# ------------------------------------------------------------------------------------------------- who sees what


def test_a_bureau_sees_and_changes_only_its_own_connectors(client, bureau_ga, bureau_gjj, admin, bureaus, row_counts):
    theirs = register(client, bureau_gjj, name="公积金查询", base_url=bureaus.url("housing_fund"),
                      elements=["housing_fund.balance"]).json
    assert theirs["bureau"] == "gjj"
    path = f"/api/v1/connectors/{theirs['id']}"
    before = row_counts()

    for method, suffix, body in [
        ("get", "", None), ("patch", "", {"name": "被改了"}), ("post", "/rotate-secret", None),
        ("post", "/health-check", None), ("get", "/usage", None), ("get", "/events", None),
    ]:
        response = getattr(client, method)(path + suffix, headers=bureau_ga, json=body)
        assert response.status_code == 404, (method, suffix, response.json)
        assert response.json["error"] == "not_found"
    assert row_counts() == before
    ga_ids = {c["id"] for c in client.get("/api/v1/connectors?per_page=100", headers=bureau_ga).json["items"]}
    assert theirs["id"] not in ga_ids and "ga-population" in ga_ids
    assert "gjj-housing-fund" not in ga_ids
    gjj_ids = {c["id"] for c in client.get("/api/v1/connectors?per_page=100", headers=bureau_gjj).json["items"]}
    assert gjj_ids == {theirs["id"], "gjj-housing-fund"}
    # The admin sees all and may approve, but cannot edit a bureau's connector.
    all_ids = {c["id"] for c in client.get("/api/v1/connectors?per_page=100", headers=admin).json["items"]}
    assert {theirs["id"], "ga-population", "gjj-housing-fund"} <= all_ids
    assert client.get(path, headers=admin).status_code == 200
    assert client.patch(path, headers=admin, json={"name": "x"}).status_code == 403


def test_the_registering_bureau_comes_from_the_account_not_the_body(client, bureau_ga, bureaus):
    response = register(client, bureau_ga, **minimal(bureaus, bureau="gjj"))
    assert response.status_code == 422  # not a field a bureau may set
    assert register(client, bureau_ga, **minimal(bureaus)).json["bureau"] == "ga"


@pytest.mark.parametrize("who", ["citizen", "auditor", "reviewer-gjj", "agent"])
def test_other_roles_are_refused(client, citizen_headers, staff_headers, bureaus, who):
    headers = citizen_headers if who == "citizen" else staff_headers(who)
    assert client.get("/api/v1/connectors", headers=headers).status_code == 403
    assert register(client, headers, **minimal(bureaus)).status_code == 403
    assert client.post("/api/v1/connectors/ga-population/approve", headers=headers).status_code == 403
    assert client.post("/api/v1/connectors/ga-population/disable", headers=headers).status_code == 403
    assert client.get("/api/v1/connectors/ga-population", headers=headers).status_code == 403


def test_a_bureau_cannot_approve_its_own_connector(client, bureau_ga, bureaus):
    created = register(client, bureau_ga, **minimal(bureaus)).json
    response = client.post(f"/api/v1/connectors/{created['id']}/approve", headers=bureau_ga)
    assert response.status_code == 403


def test_anonymous_calls_are_401(client):
    assert client.get("/api/v1/connectors").status_code == 401
    assert client.post("/api/v1/connectors", json={}).status_code == 401


def test_unknown_and_odd_ids_are_404(client, admin):
    for connector_id in ["nope", "a" * 65, "x%00y", "..", "ga-population%27"]:
        response = client.get(f"/api/v1/connectors/{connector_id}", headers=admin)
        assert response.status_code == 404, connector_id


# ---------------------------------------------------------------------------------------- active set and providers


def test_approval_and_disabling_change_the_providers_of_data_elements(client, bureau_ga, admin, bureaus):
    created = register(client, bureau_ga, name="户籍地址(备用)", base_url=bureaus.url("population"),
                       mapping={"person.household_address": "data.hjdz"}, query_path="/rkxx/v1/query",
                       trust_level="B").json

    def providers(element):
        items = client.get("/api/v1/data-elements").json["items"]
        return next(i["providers"] for i in items if i["name"] == element)

    assert providers("person.household_address") == ["ga-population"]
    client.post(f"/api/v1/connectors/{created['id']}/approve", headers=admin)
    assert providers("person.household_address") == ["ga-population", created["id"]]  # trust A before B
    client.post("/api/v1/connectors/ga-population/disable", headers=admin)
    assert providers("person.household_address") == [created["id"]]
    assert providers("person.name") == []


def test_sandbox_seeding_is_idempotent_and_keeps_secrets(app, client, admin):
    from app.sandbox.seed import sandbox_secrets, seed_sandbox_connectors

    with app.app_context():
        before = sandbox_secrets()
        assert seed_sandbox_connectors() == 0
        assert sandbox_secrets() == before
        rows = db.session.scalars(sa.select(Connector).order_by(Connector.id)).all()
        assert [(r.id, r.status, r.bureau_code) for r in rows] == [
            ("ga-population", "active", "ga"),
            ("gjj-housing-fund", "active", "gjj"),
            ("mz-marriage", "active", "mz"),
            ("rsj-social-insurance", "active", "rsj"),
            ("scjg-business", "active", "scjg"),
            ("zrzy-property", "active", "zrzy"),
        ]
        assert {url for url, _secret, _auth in before.values()} == set(app.config["SANDBOX_BUREAU_URLS"].values())
    # An admin's decision survives seeding.
    client.post("/api/v1/connectors/mz-marriage/disable", headers=admin)
    with app.app_context():
        seed_sandbox_connectors()
        assert db.session.get(Connector, "mz-marriage").status == "disabled"


# --------------------------------------------------------------------------------------------- health and usage


def test_health_check_reports_ok_and_faults(client, admin, staff_headers, bureaus):
    ok = client.post("/api/v1/connectors/ga-population/health-check", headers=staff_headers("bureau-ga"))
    assert ok.status_code == 200 and ok.json["ok"] is True and ok.json["error"] is None
    assert ok.json["latency_ms"] >= 0

    bureaus.set_mode("housing_fund", "error500")
    failed = client.post("/api/v1/connectors/gjj-housing-fund/health-check", headers=admin)
    assert failed.status_code == 200 and failed.json == {**failed.json, "ok": False, "error": "http_500"}

    bureaus.set_mode("property", "hang")
    hung = client.post("/api/v1/connectors/zrzy-property/health-check", headers=admin)
    assert hung.json["ok"] is False and hung.json["error"] == "read_timeout"


def test_health_check_of_a_service_that_is_gone(app, make_app):
    """A connector at an allowed origin where nothing listens any more: ok false, no 5xx."""
    from app.sandbox.bureaus import create_bureau_app
    from app.sandbox.server import serve

    server = serve(create_bureau_app("population"))
    url = server.url
    server.stop()
    other = make_app(CONNECTOR_ALLOWED_INSECURE_ORIGINS=[url])
    client = other.test_client()
    login = client.post("/api/v1/auth/staff/login", json={"username": "bureau-ga", "password": "sandbox-pass"})
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    created = client.post("/api/v1/connectors", headers=headers,
                          json={"name": "停机的服务", "base_url": url, "elements": ["person.name"]})
    assert created.status_code == 201, created.json

    response = client.post(f"/api/v1/connectors/{created.json['id']}/health-check", headers=headers)

    assert response.status_code == 200
    assert response.json["ok"] is False and response.json["error"] == "connection_error"


def test_usage_counts_calls_per_day_with_percentiles(app, client, staff_headers, citizen_as, bureaus):
    citizen_as("张伟", "410105198503120013")  # one real-name call to the population registry
    bureaus.set_mode("population", "error500")
    headers = {"Authorization": staff_headers("bureau-ga")["Authorization"]}
    citizen_as_again = client.post("/api/v1/auth/wechat/login", json={"code": "dev-second"}).json
    client.post("/api/v1/me/real-name", headers={"Authorization": f"Bearer {citizen_as_again['access_token']}"},
                json={"name": "李娜", "id_number": "410102199207040225"})

    usage = client.get("/api/v1/connectors/ga-population/usage?days=7", headers=headers)

    assert usage.status_code == 200, usage.json
    body = usage.json
    assert len(body["days"]) == 7 and body["days"][-1]["date"] == body["to"]
    today = body["days"][-1]
    assert (today["calls"], today["ok"], today["errors"], today["timeouts"]) == (2, 1, 1, 0)
    assert today["p50_ms"] is not None and today["p95_ms"] >= today["p50_ms"]
    assert body["days"][0]["calls"] == 0 and body["days"][0]["p50_ms"] is None
    assert body["total"]["calls"] == 2
    assert client.get("/api/v1/connectors/ga-population/usage?days=91", headers=headers).status_code == 422


def test_percentiles_are_nearest_rank():
    from app.connectors.services.registry import percentile

    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50, 95)
    assert percentile([100, 1, 50], 0.5) == 50


def test_a_rotated_secret_is_used_for_the_next_call(client, bureau_ga, bureaus, citizen_as):
    rotated = client.post("/api/v1/connectors/ga-population/rotate-secret", headers=bureau_ga).json
    # The bureau has not configured the new secret yet: its registry refuses our signature.
    login = client.post("/api/v1/auth/wechat/login", json={"code": "dev-rotation"}).json
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    refused = client.post("/api/v1/me/real-name", headers=headers,
                          json={"name": "张伟", "id_number": "410105198503120013"})
    assert refused.status_code == 503
    requests.post(f"{bureaus.url('population')}/_sandbox/secret", json={"secret": rotated["secret"]}, timeout=5)
    accepted = client.post("/api/v1/me/real-name", headers=headers,
                           json={"name": "张伟", "id_number": "410105198503120013"})
    assert accepted.status_code == 200
