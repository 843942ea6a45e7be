"""The Chinese words the admins' pages show for the API's codes (the codes themselves are the domains')."""

from __future__ import annotations

from app.accounts.models import ROLES
from app.applications.models import APPLICATION_STATUSES, GRADE_LABELS, RECTIFICATION_LABELS, STATUS_LABELS
from app.catalogue.models import CATEGORIES, DELIVERY_METHODS, EVIDENCE_TYPES, RESULT_KINDS
from app.console import connector_forms
from app.console.connectors import EVENT_LABELS as CONNECTOR_EVENT_LABELS
from app.console.connectors import HEALTH_ERRORS
from app.console.forms import TRUST_LABELS

ROLE_LABELS = {"admin": "系统管理员", "bureau": "委办局(数据接口)", "reviewer": "审核人员", "auditor": "审计人员",
               "agent": "帮办代办人员"}
EVIDENCE_LABELS = {"upload": "上传材料", "shared_data": "共享数据", "e_licence": "电子证照", "face": "刷脸核验",
                   "promise": "告知承诺", "in_person": "现场核验"}
DELIVERY_LABELS = {"e_certificate": "电子证照/电子证明", "mail": "免费邮寄", "window": "窗口领取"}
RESULT_KIND_LABELS = {"licence": "许可证件", "certificate": "证明", "decision": "决定书", "payment": "款项支付",
                      "record": "备案"}
assert set(ROLE_LABELS) == set(ROLES) and set(EVIDENCE_LABELS) == set(EVIDENCE_TYPES)
assert set(DELIVERY_LABELS) == set(DELIVERY_METHODS) and set(RESULT_KIND_LABELS) == set(RESULT_KINDS)

LABELS = {
    "statuses": connector_forms.STATUS_LABELS, "auth_types": connector_forms.AUTH_LABELS,
    "trust_levels": connector_forms.TRUST_LABELS, "event_labels": CONNECTOR_EVENT_LABELS,
    "health_errors": HEALTH_ERRORS, "roles": ROLE_LABELS, "categories": CATEGORIES, "evidence_types": EVIDENCE_LABELS,
    "delivery_methods": DELIVERY_LABELS, "result_kinds": RESULT_KIND_LABELS, "evidence_trust": TRUST_LABELS,
    "application_statuses": [(status, STATUS_LABELS[status]) for status in APPLICATION_STATUSES],
    "grades": GRADE_LABELS, "rectification_statuses": RECTIFICATION_LABELS,
}
