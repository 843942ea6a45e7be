"""The reviewers' console in a real browser (fixtures and the Chromium skip in conftest.py): a citizen submits
through the API, the department's reviewer finds the application in the inbox, accepts, approves and delivers it."""

from __future__ import annotations

from application_flow import review_url, submitted_application, url

from tests.console.conftest import assert_accessible, log_in, needs_chromium, shot

pytestmark = needs_chromium


def test_a_reviewer_finds_accepts_approves_and_delivers_an_application_submitted_through_the_api(
        served, page, client, zhang, reviewer):
    # The citizen, through the API (as the mini-program does): consent, prefill, face, submit.
    application_id = submitted_application(client, zhang)
    assert client.get(url(application_id), headers=zhang).json["status"] == "submitted"

    log_in(page, served, "reviewer-gjj")
    page.get_by_role("link", name="办件审核").first.click()
    page.wait_for_url(f"{served}/console/review/")
    row = page.locator("#inbox-table tbody tr").filter(has_text="住房公积金个人缴存证明出具")
    assert row.count() == 1 and "已提交" in row.inner_text() and "4101**********0013" in row.inner_text()
    shot(page, "review-inbox")
    assert_accessible(page)

    # The filters answer in place (htmx) and put themselves in the address bar.
    page.get_by_label("状态").select_option("accepted")
    page.get_by_role("button", name="筛选").click()
    page.locator("#inbox-empty").wait_for()
    assert "status=accepted" in page.url
    assert_accessible(page)
    page.get_by_label("状态").select_option("submitted")
    page.get_by_role("button", name="筛选").click()
    page.locator("#inbox-table").wait_for()

    page.get_by_role("link", name="住房公积金个人缴存证明出具").click()
    page.wait_for_url(f"{served}/console/review/applications/{application_id}")
    assert "郑州住房公积金管理中心" in page.locator("#fields").inner_text()
    assert "A 级 · 权威来源" in page.locator("#fields").inner_text()
    assert "已满足" in page.locator("#materials").inner_text()
    shot(page, "review-detail")
    assert_accessible(page)

    page.get_by_role("button", name="受理", exact=True).click()
    page.get_by_text("已受理。").wait_for()
    assert "已受理" in page.locator("#timeline").inner_text()
    assert_accessible(page)

    # An empty supplement request: the API's message next to the field, nothing sent.
    page.get_by_role("button", name="一次性告知补正").click()
    error = page.locator("#supplement-items-error")
    error.wait_for()
    assert "长度须在 1 到 50 之间" in error.inner_text()
    assert page.get_by_label("需补正的全部事项(每行一项)").get_attribute("aria-invalid") == "true"
    assert_accessible(page)

    # Approving asks first; dismissing it changes nothing, agreeing approves with the result typed in.
    page.get_by_label("证照或文书编号").fill("GJJ-2024-0001")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="办结", exact=True).click()
    assert client.get(review_url(application_id), headers=reviewer).json["status"] == "accepted"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="办结", exact=True).click()
    page.get_by_text("已办结,办理结果已生成。").wait_for()
    assert "GJJ-2024-0001" in page.locator("main").inner_text()
    assert_accessible(page)

    page.get_by_role("button", name="电子证照送达").click()
    page.get_by_text("已送达。").wait_for()
    assert page.locator("#no-actions").is_visible()
    assert "已送达" in page.locator("#timeline").inner_text()
    shot(page, "review-delivered")
    assert_accessible(page)

    detail = client.get(url(application_id), headers=zhang).json
    assert detail["status"] == "delivered"
    assert detail["delivery"] == {"method": "e_certificate", "fee": 0, "certificate_number": "GJJ-2024-0001"}
    assert [event["kind"] for event in detail["timeline"]][-3:] == ["accepted", "approved", "delivered"]
    assert {event["actor"] for event in detail["timeline"][-3:]} == {"reviewer"}


def test_the_rectifications_page_in_the_browser(served, page, client, zhang, reviewer):
    application_id = submitted_application(client, zhang)
    client.post(review_url(application_id, "accept"), headers=reviewer)
    client.post(review_url(application_id, "approve"), headers=reviewer, json={})
    client.post(review_url(application_id, "deliver"), headers=reviewer, json={"method": "e_certificate"})
    client.post(url(application_id, "evaluation"), headers=zhang, json={"grade": 1, "comment": "排队太久"})

    log_in(page, served, "reviewer-gjj")
    page.goto(f"{served}/console/review/")
    page.get_by_role("link", name="差评整改").click()
    page.wait_for_url(f"{served}/console/review/rectifications")
    assert "排队太久" in page.locator("#rectifications").inner_text()
    shot(page, "review-rectifications")
    assert_accessible(page)
    page.get_by_label("整改情况(做了哪些改进)").fill("增设了自助服务终端")
    page.get_by_role("button", name="整改完成").click()
    page.get_by_text("整改已完成。").wait_for()
    assert "已整改" in page.locator("#rectifications").inner_text()
    assert_accessible(page)
