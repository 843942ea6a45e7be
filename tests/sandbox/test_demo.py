"""`make demo`: the citizen journey, run against the API served over real HTTP with the sandbox bureaus."""

from __future__ import annotations

import io
import re
import socket

import pytest

from app.sandbox.server import serve
from demo.journey import main, run_journey

PERSON_ID_NUMBER = "410105198503120013"


@pytest.fixture
def api_url(app, bureaus):
    """The test app as a real HTTP server on 127.0.0.1 (as `make run` serves it), its bureaus seeded and up."""
    server = serve(app)
    yield server.url
    server.stop()


def has_evaluation_endpoint(app) -> bool:
    """Whether this build has POST /api/v1/applications/{id}/evaluation (好差评 lands separately)."""
    return any(re.fullmatch(r"/api/v1/applications/<[^>]+>/evaluation", rule.rule) and "POST" in rule.methods
               for rule in app.url_map.iter_rules())


def journey(url: str, **kwargs) -> tuple[dict, str]:
    out = io.StringIO()
    return run_journey(url, out, **kwargs), out.getvalue()


def test_the_whole_journey_completes_and_reads_as_a_story(app, api_url):
    result, text = journey(api_url)

    assert result["status"] == "delivered" and result["chains_ok"] is True
    steps = re.findall(r"^ ?(\d+)\. ", text, flags=re.MULTILINE)
    assert steps == [str(n) for n in range(1, 16)]  # the real-name proof is step 3 on a first run
    # Each call shows its method, path and status.
    assert "POST /api/v1/auth/wechat/login → 200 OK" in text
    assert f"POST /api/v1/applications/{result['application_id']}/submit → 200 OK" in text
    # The prefill shows values with their provenance, and the matter needs no document for 张伟.
    assert re.search(r"住房公积金缴存单位\s+郑州启明软件科技有限公司\s+ok\s+yes\s+郑州住房公积金管理中心\s+A", text)
    assert "零材料 zero_material for 张伟: True" in text
    # 智能预审: the deposit certificate pre-checks eligible, the retirement withdrawal does not, and says why.
    assert "预审结果 result: eligible" in text and "预审结果 result: not_eligible" in text
    assert re.search(r"职工已办理离休、退休手续\s+不符合 not met\s+社会保险参保状态=参保缴费", text)
    assert "submitting it anyway: conditions_not_met" in text
    assert "decision                  : pass" in text
    assert re.search(r"assurance +: face", text)
    assert "submitted (已提交)" in text
    assert "retry with the same key: the same answer, nothing new created" in text
    assert f"e_certificate {result['certificate_number']}, fee 0" in text
    assert "delivered (已送达)" in text
    assert re.search(r"已送达 delivered\s+审核人员 reviewer", text)
    assert "用途 purpose: 实名认证" in text
    assert "verify all: ok=True" in text
    if has_evaluation_endpoint(app):
        assert result["evaluated"] is True
        assert re.search(r"评价 grade\s+: 5 ", text) and "整改 rectification : none" in text
    else:
        assert result["evaluated"] is False
        assert "no evaluation endpoint yet" in text
    # Only masked identity reaches the screen.
    assert PERSON_ID_NUMBER not in text and "4101**********0013" in text


def test_a_second_run_finds_its_binding_and_applies_again(api_url):
    first, _ = journey(api_url)
    second, text = journey(api_url)

    assert second["status"] == "delivered" and second["application_id"] != first["application_id"]
    assert "bound on an earlier run" in text


def test_an_identity_bound_to_another_account_moves_to_the_demos_by_its_face_pass(api_url, citizen_as):
    citizen_as("张伟", PERSON_ID_NUMBER, openid="someone-else")

    result, text = journey(api_url)

    assert result["status"] == "delivered" and re.search(r"assurance +: face", text)


def test_an_unreachable_api_says_to_start_it(capsys):
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    assert main(["--base-url", url, "--timeout", "2"]) == 1
    error = capsys.readouterr().err
    assert f"the API at {url} is not reachable" in error and "start it with `make run` first" in error


def test_no_log_line_of_a_whole_journey_names_anyone(app, bureaus, caplog, capfd):
    """Every log line of `make demo`'s journey, the access log of the development server's request handler
    included, and of an auditor looking people up: no sandbox person's name or ID number."""
    import logging
    import threading

    import requests
    from werkzeug.serving import make_server

    from app.devserver import PathOnlyRequestHandler
    from app.sandbox.people import PEOPLE

    caplog.set_level(logging.DEBUG)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        journey(url)
        token = requests.post(f"{url}/api/v1/auth/staff/login", timeout=10,
                              json={"username": "auditor", "password": "sandbox-pass"}).json()["access_token"]
        auditor = {"Authorization": f"Bearer {token}"}
        for person in PEOPLE:
            for log in ("face-verifications", "data-access"):
                found = requests.post(f"{url}/api/v1/audit/{log}/search", headers=auditor, timeout=10,
                                      json={"id_number": person.id_number})
                assert found.status_code == 200
            # A client that puts the number in the URL anyway: refused, and absent from the server's access
            # log. (This client's own debug log of its bad URL is the client's, and kept out here.)
            urllib3_log = logging.getLogger("urllib3.connectionpool")
            urllib3_log.disabled = True
            try:
                refused = requests.get(f"{url}/api/v1/audit/data-access", headers=auditor, timeout=10,
                                       params={"id_number": person.id_number})
            finally:
                urllib3_log.disabled = False
            assert refused.status_code == 422
    finally:
        server.shutdown()
        thread.join(5)
    logged = caplog.text + capfd.readouterr().err
    assert "POST /api/v1/face/sessions" in logged and "GET /api/v1/audit/data-access" in logged  # it did log
    for person in PEOPLE:
        for secret in (person.name, person.id_number, person.id_number.lower()):
            assert secret not in logged, secret
