"""What the reviewers' pages call things: the Chinese labels of statuses, evidence, provenance and timeline events.

The statuses' own labels are the applications domain's (`STATUS_LABELS`, `RECTIFICATION_LABELS`, the ones the
citizen reads too); the rest are the console's words for the API's codes, each table checked against the codes
it labels, so a new code cannot go unlabelled.
"""

from __future__ import annotations

from app.applications.models import APPLICATION_STATUSES, RECTIFICATION_LABELS, STATUS_LABELS
from app.applications.schemas.applications import MATERIAL_STATUSES, MATERIAL_VIA
from app.console.forms import TRUST_LABELS
from app.web.schemas import FIELD_STATUSES

MATERIAL_STATUS_LABELS = {
    "satisfied": "已满足", "promised": "告知承诺", "deferred": "容缺后补", "available": "可免提交",
    "needs_upload": "待上传", "in_person": "须现场提交", "unavailable": "未取得", "awaiting_prefill": "待获取",
}
VIA_LABELS = {
    "upload": "申请人上传", "shared_data": "共享数据", "e_licence": "电子证照", "face": "刷脸核验",
    "promise": "告知承诺", "in_person": "现场提交", "deferred": "容缺受理",
}
FIELD_STATUS_LABELS = {"ok": "已获取", "not_found": "未查到", "failed": "获取失败", "timeout": "超时",
                       "skipped": "无数据来源"}
# BRIEF glossary (电子证照): A issued by an authority, B checked by staff, C uploaded by the user, D a promise.
ACTOR_LABELS = {"citizen": "申请人", "agent": "代办人", "reviewer": "审核人员", "system": "系统"}
ACTING_LABELS = {"citizen": "本人办理", "agent": "帮办代办"}
DELIVERY_LABELS = {"e_certificate": "电子证照", "mail": "免费邮寄"}
EVENT_LABELS = {
    "created": "创建申请", "consent_granted": "同意调取数据", "consent_withdrawn": "撤回同意", "prefilled": "自动填充",
    "prefill_blocked": "自动填充受阻", "form_updated": "填写表单", "material_uploaded": "上传材料",
    "material_promised": "签署告知承诺", "material_deferred": "申请容缺", "promise_breach_recorded": "记录承诺不实",
    "evaluated": "好差评", "rectification_resolved": "整改完成", "rectification_unfixable": "无法整改",
    "conditions_refused": "不符合受理条件,未能提交", "condition_decided": "人工判定受理条件",
    "proactive_eligible": "免申即享:符合条件,已备好草稿",
    **{status: STATUS_LABELS[status] for status in APPLICATION_STATUSES if status != "draft"},
}
# What a timeline event's detail says, by key (others are shown by their key).
DETAIL_LABELS = {
    "items": "补正事项", "result": "办理结果", "method": "送达方式", "carrier": "快递公司",
    "tracking_number": "快递单号", "fee": "费用(元)", "grade": "评价等级", "material": "材料", "fields": "字段",
    "matter_version": "事项版本", "rectification": "整改编号", "elements": "数据项(个)", "zero_material": "零材料",
    "face_verified": "已刷脸核验", "eligibility": "智能预审", "conditions_to_decide": "待人工判定的条件",
    "conditions": "受理条件", "index": "条件序号", "met": "符合", "note": "有说明",
}
RECTIFICATION_STATUS_LABELS = RECTIFICATION_LABELS
# The review actions a form stands for, as the service names them (lifecycle.TRANSITIONS), and the notice
# shown after one succeeded.
DONE_NOTICES = {
    "accept": "已受理。", "request_supplement": "已一次性告知申请人需补正的全部事项。",
    "approve": "已办结,办理结果已生成。",
    "reject": "已作出不予受理或不予许可决定,理由已告知申请人。", "deliver": "已送达。",
    "promise_breach": "已记录告知承诺不实:申请人今后不能再以告知承诺方式提交材料。",
    "resolved": "整改已完成。", "unfixable": "已记录无法整改及其原因。",
    "decide_condition": "已记录对该受理条件的人工判定。",
}
# 智能预审: each condition's result, as reviewers read it.
CONDITION_RESULT_LABELS = {"met": "符合", "not_met": "不符合", "unknown": "无法核验", "not_checked": "不核验(仅文字)"}
ELIGIBILITY_LABELS = {"eligible": "符合全部受理条件", "not_eligible": "不符合受理条件",
                      "unknown": "部分条件待人工判定"}

assert set(MATERIAL_STATUS_LABELS) == set(MATERIAL_STATUSES) and set(VIA_LABELS) == set(MATERIAL_VIA)
assert set(FIELD_STATUS_LABELS) == set(FIELD_STATUSES)

LABELS = {
    "condition_results": CONDITION_RESULT_LABELS, "eligibility_labels": ELIGIBILITY_LABELS,
    "status_labels": STATUS_LABELS, "material_statuses": MATERIAL_STATUS_LABELS, "vias": VIA_LABELS,
    "field_statuses": FIELD_STATUS_LABELS, "trust_levels": TRUST_LABELS, "actors": ACTOR_LABELS,
    "acting": ACTING_LABELS, "deliveries": DELIVERY_LABELS, "events": EVENT_LABELS, "details": DETAIL_LABELS,
    "rectification_statuses": RECTIFICATION_STATUS_LABELS,
}
