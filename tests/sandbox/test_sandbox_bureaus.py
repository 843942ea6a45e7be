"""The sandbox people and bureaus: consistent data, the wire protocol over real HTTP, auth, fault modes."""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import quote

import pytest
import requests
from stdnum.cn import ric, uscc

from app.sandbox import people
from app.sandbox.bureaus import BUREAUS, KINDS, MODES, create_bureau_app, sandbox_specs
from app.sandbox.server import serve
from shared_data import signing
from shared_data.client import CallContext, ConnectorClients
from shared_data.connectors import ConnectorRegistry
from shared_data.elements import ELEMENTS
from shared_data.urls import UrlGuard

SECRET = "sandbox-bureau-test-secret-42"


# --- the people ---------------------------------------------------------------------------------------------


def test_the_six_people_of_api_md():
    assert [(p.name, p.id_number) for p in people.PEOPLE] == [
        ("张伟", "410105198503120013"),
        ("李娜", "410102199207040225"),
        ("王强", "410103197811300350"),
        ("刘洋", "41012220010215047X"),
        ("陈静", "41010419650908058X"),
        ("赵磊", "410105199001010636"),
    ]


@pytest.mark.parametrize("person", people.PEOPLE, ids=lambda p: p.name)
def test_id_numbers_are_valid(person):
    number = person.id_number
    # stdnum's check character and birth date; its ric.is_valid also demands that the region code existed in
    # the birth year, which 王强 (1978, 二七区 since 1983) and 陈静 (1965) fail although their numbers are
    # real-world valid: codes are assigned at issue (app/face/services/real_name.py explains).
    assert number[-1] == ric.calc_check_digit(number)
    assert ric.get_birth_date(number)
    assert number[:6] in people.DISTRICTS


@pytest.mark.parametrize("record", people.BUSINESS.values(), ids=lambda r: r.name)
def test_business_credit_codes_are_valid(record):
    assert uscc.validate(record.uscc) == record.uscc


def test_the_spouse_id_number_is_valid():
    number = people.MARRIAGE["410105198503120013"].spouse_id_number
    assert number[-1] == ric.calc_check_digit(number)


@pytest.mark.parametrize("record", people.POPULATION.values(), ids=lambda r: r.name)
def test_population_records_agree_with_the_id_number(record):
    number = record.id_number
    assert people.person(number).name == record.name
    assert record.birth_date == ric.get_birth_date(number)
    assert record.gender == ("男" if int(number[16]) % 2 else "女")
    assert record.household_region == number[:6]
    assert record.household_address.startswith("河南省郑州市" + people.DISTRICTS[number[:6]])
    assert record.ethnicity == "汉族"


def test_the_registries_hold_what_api_md_says():
    zhang, li, wang, liu, chen, zhao = (p.id_number for p in people.PEOPLE)
    registries = (
        people.POPULATION,
        people.SOCIAL_INSURANCE,
        people.HOUSING_FUND,
        people.PROPERTY,
        people.BUSINESS,
        people.MARRIAGE,
    )
    assert all(zhao not in registry for registry in registries)
    assert set(people.POPULATION) == {zhang, li, wang, liu, chen}
    assert people.SOCIAL_INSURANCE[zhang].months_paid == 120
    assert people.SOCIAL_INSURANCE[liu].months_paid == 18
    assert people.SOCIAL_INSURANCE[chen].status == "退休" and people.SOCIAL_INSURANCE[chen].retirement_date
    assert {k for k, v in people.HOUSING_FUND.items() if v.account_status == "正常"} == {zhang, wang}
    assert liu not in people.HOUSING_FUND
    assert set(people.PROPERTY) == {zhang, chen}
    assert people.PROPERTY[zhang].certificates[0].number == "豫(2019)郑州市不动产权第0123456号"
    assert people.BUSINESS[li].uscc == "91410100MA44XK3P76"
    assert people.BUSINESS[li].name == "郑州市李娜餐饮有限公司"
    assert people.BUSINESS[li].legal_representative == "李娜"
    assert (people.BUSINESS[wang].uscc, people.BUSINESS[wang].type) == ("92410105MA9GQ1T2XH", "个体工商户")
    assert people.MARRIAGE[zhang].status == "已婚" and people.MARRIAGE[zhang].spouse_name
    assert people.POPULATION[zhang].marital_status == "已婚"


def test_reference_photos_are_small_jpegs():
    for record in people.POPULATION.values():
        if record.photo:
            data = (people.DATA_DIR / record.photo).read_bytes()
            assert data.startswith(b"\xff\xd8\xff") and len(data) < 64 * 1024
    assert people.POPULATION["410105198503120013"].photo == "astronaut.jpg"
    assert people.POPULATION["410102199207040225"].photo == "grace_hopper.jpg"


# --- the services -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers():
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # no access log line for every call
    running = {kind: serve(create_bureau_app(kind, secret=SECRET)) for kind in KINDS}
    yield running
    werkzeug_log.setLevel(level)
    for server in running.values():
        requests.post(f"{server.url}/_sandbox/reset", timeout=5)
    threads = [threading.Thread(target=server.stop) for server in running.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture(autouse=True)
def reset(request):
    """Normal mode and an empty journal for every test that uses the servers."""
    if "servers" not in request.fixturenames:
        yield
        return
    running = request.getfixturevalue("servers")
    for server in running.values():
        requests.post(f"{server.url}/_sandbox/reset", timeout=5)
    yield
    for server in running.values():
        requests.post(f"{server.url}/_sandbox/reset", timeout=5)


def query(
    server,
    kind: str,
    body: dict | bytes,
    *,
    secret: str = SECRET,
    purpose: str | None = "不动产登记:核验权利人信息",
    timestamp: float | None = None,
    nonce: str | None = None,
    headers: dict | None = None,
    timeout: float = 5,
) -> requests.Response:
    """A hand-made signed query, so tests control every header."""
    path = BUREAUS[kind].query_path
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"}
    sent.update(
        signing.signature_headers(secret, "POST", path, raw, timestamp=timestamp or time.time(), nonce=nonce)
    )
    if purpose is not None:
        sent["X-Purpose"] = quote(purpose, safe="")
    sent.update(headers or {})
    # Never follow a redirect: the redirect mode points at the cloud metadata address.
    return requests.post(server.url + path, data=raw, headers=sent, timeout=timeout, allow_redirects=False)


def journal(server) -> list[dict]:
    return requests.get(f"{server.url}/_sandbox/state", timeout=5).json()["journal"]


def set_mode(server, mode: str, **options) -> requests.Response:
    return requests.post(f"{server.url}/_sandbox/mode", json={"mode": mode, **options}, timeout=5)


def test_every_bureau_answers_for_its_people_and_404_for_the_rest(servers):
    holdings = {
        "population": people.POPULATION,
        "social_insurance": people.SOCIAL_INSURANCE,
        "housing_fund": people.HOUSING_FUND,
        "property": people.PROPERTY,
        "business": people.BUSINESS,
        "marriage": people.MARRIAGE,
    }
    for kind, registry in holdings.items():
        elements = sorted(BUREAUS[kind].fields)
        for person in people.PEOPLE:
            response = query(servers[kind], kind, {"id_number": person.id_number, "elements": elements})
            expected = 200 if person.id_number in registry else 404
            assert response.status_code == expected, (kind, person.name, response.text)
            assert response.headers["Content-Type"].startswith("application/json")


def test_the_native_shapes(servers):
    zhang = "410105198503120013"
    population = query(servers["population"], "population", {"id_number": zhang, "elements": ["person.name"]})
    assert population.json() == {
        "code": 0,
        "msg": "查询成功",
        "data": {"xm": "张伟"},
        "gxsj": "2024-03-18 10:12:45",
    }
    social = query(
        servers["social_insurance"],
        "social_insurance",
        {
            "id_number": zhang,
            "elements": ["social_insurance.months_paid", "social_insurance.medical_insurance_type"],
        },
    ).json()
    assert social["result"]["insured"] == {"ljjfys": 120, "yb": {"xzmc": "职工医保"}}
    business = query(
        servers["business"], "business", {"id_number": "410102199207040225", "elements": ["business.uscc"]}
    ).json()
    assert business["data"]["list"] == [{"tyshxydm": "91410100MA44XK3P76"}]
    assert isinstance(business["lastModified"], int)


def test_answers_hold_only_the_requested_fields(servers):
    response = query(
        servers["housing_fund"],
        "housing_fund",
        {"id_number": "410105198503120013", "elements": ["housing_fund.balance"]},
    )
    assert response.json()["data"] == {"zhye": "86432.15"}


def test_the_sandbox_specs_map_every_element_of_every_answer(servers):
    specs = sandbox_specs({k: s.url for k, s in servers.items()}, dict.fromkeys(KINDS, SECRET))
    registry = ConnectorRegistry(specs)  # validates each spec
    assert {spec.id for spec in registry} == {
        "ga-population",
        "rsj-social-insurance",
        "gjj-housing-fund",
        "zrzy-property",
        "scjg-business",
        "mz-marriage",
    }
    assert all(spec.trust_level == "A" and spec.name and spec.bureau.startswith("郑州") for spec in specs)
    clients = ConnectorClients(url_guard=UrlGuard(allowed_insecure=[s.url for s in servers.values()]))
    context = CallContext(purpose="核验", application_id="a-1", acting_user="staff:1", request_id="r-1")
    try:
        for spec, (kind, bureau) in zip(specs, BUREAUS.items(), strict=True):
            assert set(spec.mapping) == set(bureau.fields) and all(e in ELEMENTS for e in spec.mapping)
            holders = {
                "population": "410105198503120013",
                "social_insurance": "41010419650908058X",
                "housing_fund": "410105198503120013",
                "property": "410105198503120013",
                "business": "410102199207040225",
                "marriage": "410105198503120013",
            }
            result = clients(spec).fetch(holders[kind], sorted(spec.elements), context)
            assert result.status == "ok", (kind, result)
            assert not result.field_errors and not result.missing, (kind, result)
            assert result.source_updated_at is not None
    finally:
        clients.close()


# --- auth and the protocol's checks -------------------------------------------------------------------------

ZHANG = {"id_number": "410105198503120013", "elements": ["person.name"]}


def test_a_replayed_nonce_is_refused(servers):
    server = servers["population"]
    assert query(server, "population", ZHANG, nonce="replay-nonce-000001").status_code == 200
    replay = query(server, "population", ZHANG, nonce="replay-nonce-000001")
    assert replay.status_code == 401 and replay.json()["reason"] == "replayed_nonce"


# 30 s beyond the 300 s window: a request delayed in a loaded run still arrives outside it (a future timestamp
# comes closer to the server's clock while the request travels).
@pytest.mark.parametrize("skew", [-330, 330])
def test_a_timestamp_outside_the_window_is_refused(servers, skew):
    response = query(servers["population"], "population", ZHANG, timestamp=time.time() + skew)
    assert response.status_code == 401 and response.json()["reason"] == "stale_timestamp"


def test_a_timestamp_inside_the_window_is_accepted(servers):
    assert query(servers["population"], "population", ZHANG, timestamp=time.time() - 250).status_code == 200


def test_a_wrong_secret_or_a_tampered_body_is_refused(servers):
    server = servers["population"]
    wrong = query(server, "population", ZHANG, secret="another-secret-0123456789")
    assert wrong.status_code == 401 and wrong.json()["reason"] == "bad_signature"
    path = BUREAUS["population"].query_path
    raw = json.dumps(ZHANG).encode()
    headers = signing.signature_headers(SECRET, "POST", path, raw, timestamp=time.time())
    headers.update({"Content-Type": "application/json", "X-Purpose": "x"})
    tampered = raw.replace(b"person.name", b"person.photo")
    response = requests.post(server.url + path, data=tampered, headers=headers, timeout=5)
    assert response.status_code == 401 and response.json()["reason"] == "bad_signature"


def test_an_unsigned_query_is_refused(servers):
    path = BUREAUS["population"].query_path
    response = requests.post(
        servers["population"].url + path, json=ZHANG, headers={"X-Purpose": "x"}, timeout=5
    )
    assert response.status_code == 401 and response.json()["reason"] == "missing_signature"
    assert journal(servers["population"]) == []


def test_a_query_without_purpose_is_refused(servers):
    response = query(servers["population"], "population", ZHANG, purpose=None)
    assert response.status_code == 400
    not_utf8 = query(
        servers["population"], "population", ZHANG, purpose=None, headers={"X-Purpose": "%FF%FE"}
    )
    assert not_utf8.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"id_number": "410105198503120013"},
        {"id_number": "410105198503120013", "elements": []},
        {"id_number": "410105198503120013", "elements": ["housing_fund.balance"]},
        {"id_number": 410105198503120013, "elements": ["person.name"]},
    ],
)
def test_a_bad_body_is_refused(servers, body):
    assert query(servers["population"], "population", body).status_code == 400


def test_the_purpose_and_context_headers_are_journaled_without_the_id_number(servers):
    server = servers["population"]
    query(
        server,
        "population",
        ZHANG,
        purpose="住房公积金提取:核验身份",
        headers={"X-Application-Id": "app-1", "X-Acting-User": "staff:9", "X-Request-Id": "req-9"},
    )
    (entry,) = journal(server)
    assert entry == {
        "elements": ["person.name"],
        "purpose": "住房公积金提取:核验身份",
        "application_id": "app-1",
        "acting_user": "staff:9",
        "request_id": "req-9",
        "known_person": True,
    }
    assert "410105198503120013" not in json.dumps(entry)


def test_a_bureau_without_a_secret_refuses_until_told_one():
    server = serve(create_bureau_app("marriage"))
    try:
        refused = query(
            server, "marriage", {"id_number": "410105198503120013", "elements": ["marriage.status"]}
        )
        assert refused.status_code == 401 and refused.json()["reason"] == "no_secret"
        short = requests.post(f"{server.url}/_sandbox/secret", json={"secret": "short"}, timeout=5)
        assert short.status_code == 400
        told = requests.post(f"{server.url}/_sandbox/secret", json={"secret": SECRET}, timeout=5)
        assert told.status_code == 204
        body = {"id_number": "410105198503120013", "elements": ["marriage.status"]}
        assert query(server, "marriage", body).json()["data"] == {"hyzt": "已婚"}
    finally:
        server.stop()


def test_api_key_auth():
    server = serve(create_bureau_app("business", secret=SECRET, auth_type="api_key"))
    try:
        url = server.url + BUREAUS["business"].query_path
        body = {"id_number": "410103197811300350", "elements": ["business.name"]}
        ok = requests.post(url, json=body, headers={"X-Api-Key": SECRET, "X-Purpose": "x"}, timeout=5)
        assert ok.json()["data"]["list"] == [{"ztmc": "郑州市金水区王强日用百货店"}]
        wrong = requests.post(url, json=body, headers={"X-Api-Key": "nope", "X-Purpose": "x"}, timeout=5)
        assert wrong.status_code == 401 and wrong.json()["reason"] == "bad_api_key"
    finally:
        server.stop()


def test_health_needs_no_auth(servers):
    for kind, server in servers.items():
        response = requests.get(server.url + BUREAUS[kind].health_path, timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "UP"}


# --- fault modes --------------------------------------------------------------------------------------------


def test_the_mode_control_validates_and_reports(servers):
    server = servers["property"]
    assert set_mode(server, "sideways").status_code == 400
    assert set_mode(server, "slow", delay_ms=-1).status_code == 400
    assert set_mode(server, "oversized", size_bytes=10).status_code == 400
    state = set_mode(server, "slow", delay_ms=50).json()
    assert (state["mode"], state["delay_ms"]) == ("slow", 50)
    assert requests.post(f"{server.url}/_sandbox/reset", timeout=5).status_code == 204
    assert requests.get(f"{server.url}/_sandbox/state", timeout=5).json()["mode"] == "normal"


@pytest.mark.parametrize(
    ("mode", "status", "content_type"),
    [
        ("error500", 500, "text/html"),
        ("malformed", 200, "application/json"),
        ("wrong_content_type", 200, "text/html"),
        ("redirect", 302, None),
    ],
)
def test_simple_fault_modes(servers, mode, status, content_type):
    server = servers["population"]
    set_mode(server, mode)
    response = query(server, "population", ZHANG)
    assert response.status_code == status
    if content_type:
        assert response.headers["Content-Type"].startswith(content_type)
    if mode == "malformed":
        with pytest.raises(ValueError):
            response.json()
    if mode == "redirect":
        assert response.headers["Location"].startswith("http://169.254.169.254/")


def test_wrong_types_replace_non_string_values(servers):
    server = servers["social_insurance"]
    set_mode(server, "wrong_types")
    body = {
        "id_number": "410105198503120013",
        "elements": ["social_insurance.months_paid", "social_insurance.employer"],
    }
    insured = query(server, "social_insurance", body).json()["result"]["insured"]
    assert insured == {"ljjfys": "一百二十", "dwmc": "郑州启明软件科技有限公司"}


def test_slow_and_normal_delays(servers):
    server = servers["marriage"]
    body = {"id_number": "410105198503120013", "elements": ["marriage.status"]}
    for mode in ("slow", "normal"):
        set_mode(server, mode, delay_ms=150)
        started = time.monotonic()
        assert query(server, "marriage", body).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_hang_holds_the_request_until_the_mode_changes(servers):
    server = servers["marriage"]
    set_mode(server, "hang")
    with pytest.raises(requests.Timeout):
        query(
            server,
            "marriage",
            {"id_number": "410105198503120013", "elements": ["marriage.status"]},
            timeout=0.3,
        )
    outcome = {}

    def held_query():
        body = {"id_number": "410105198503120013", "elements": ["marriage.status"]}
        outcome["response"] = query(server, "marriage", body, timeout=10)

    thread = threading.Thread(target=held_query)
    thread.start()
    time.sleep(0.2)
    set_mode(server, "normal")  # releases it
    thread.join(5)
    assert outcome["response"].status_code == 504


def test_oversized_streams_more_than_the_size(servers):
    server = servers["property"]
    set_mode(server, "oversized", size_bytes=2 * 1024 * 1024)
    response = query(server, "property", {"id_number": "410105198503120013", "elements": ["property.count"]})
    assert response.status_code == 200 and "Content-Length" not in response.headers
    assert len(response.content) > 2 * 1024 * 1024


def test_dribble_sends_the_answer_in_pieces(servers):
    server = servers["marriage"]
    set_mode(server, "dribble", delay_ms=10)
    body = {"id_number": "410105198503120013", "elements": ["marriage.status"]}
    response = query(server, "marriage", body)
    assert response.json()["data"] == {"hyzt": "已婚"}


def test_every_mode_is_documented_and_switchable(servers):
    for mode in MODES:
        assert set_mode(servers["business"], mode).json()["mode"] == mode


def test_unknown_kinds_and_auth_types_are_refused():
    with pytest.raises(ValueError):
        create_bureau_app("tax")
    with pytest.raises(ValueError):
        create_bureau_app("population", auth_type="basic")
