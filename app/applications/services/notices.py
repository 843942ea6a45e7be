"""What a citizen is told when their application changes status: the 办理进度通知 subscription message,
queued in the outbox in the transaction of the change (app/notifications/services.py sends it).

The template (WECHAT_SUBSCRIBE_TEMPLATE_ID): thing1 事项名称, phrase2 办理状态, time3 更新时间, character_string4
申请编号, thing5 备注; values are cut to WeChat's limits there. A remark is a fixed text or a reviewer's short
reason: never a name or an ID number.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.applications.models import STATUS_LABELS
from app.modelbase import new_id, utcnow
from app.notifications.models import Notification
from app.notifications.services import CHARACTER_STRING_MAX, CHINA_TIME, PHRASE_MAX, enqueue, thing

log = logging.getLogger(__name__)

UNKNOWN_STATUS_LABEL = "已更新"
# The remark when the caller gives none: what the citizen may do next.
DEFAULT_REMARKS: dict[str, str] = {
    "submitted": "请等待部门受理",
    "accepted": "部门正在办理",
    "supplement_requested": "请按要求补正材料",
    "resubmitted": "请等待部门审核",
    "approved": "请留意办理结果送达",
    "rejected": "点击查看不予许可原因",
    "delivered": "办理结果已送达",
    "withdrawn": "申请已撤回",
}
DEFAULT_REMARK = "点击查看办理详情"
DEFAULT_MATTER_NAME = "政务服务事项"


def notify_status_change(application, matter_name: str | None, status: str | None = None,
                         remark: str | None = None) -> Notification:
    """Enqueue the `status_changed` message for `application` (now in `status`, default its own) to its citizen.

    The usual call from a transition, in its transaction; like `enqueue` it does not commit.
    """
    status = status or application.status
    data = status_message(application, matter_name, status, remark)  # first: it gives a new application its id
    return enqueue(citizen_id=application.citizen_id, application_id=application.id, kind="status_changed",
                   data=data)


def status_message(application, matter_name: str | None, status: str, remark: str | None = None, *,
                   at: datetime | None = None) -> dict:
    """Template data announcing that `application` is now in `status` (values cut to WeChat's limits).

    `remark` is a fixed text or a reviewer's short reason: never a name or an ID number. `at` (default now) is
    the time shown. An application not yet flushed gets its id here (the column default would give it one).
    """
    label = STATUS_LABELS.get(status)
    if label is None:
        # A status added without a label: announce the change rather than fail the caller's transaction.
        log.warning("no notification label for application status %r", status)
        label = UNKNOWN_STATUS_LABEL
    if application.id is None:
        application.id = new_id()
    shown_at = (at or utcnow()).astimezone(CHINA_TIME)
    return {
        "thing1": {"value": thing(matter_name, DEFAULT_MATTER_NAME)},
        "phrase2": {"value": label[:PHRASE_MAX]},
        "time3": {"value": shown_at.strftime("%Y年%m月%d日 %H:%M")},
        "character_string4": {"value": str(application.id)[:CHARACTER_STRING_MAX]},
        "thing5": {"value": thing(remark, DEFAULT_REMARKS.get(status, DEFAULT_REMARK))},
    }


DUE_LABEL = "待补材料"


def material_due_message(application, matter_name: str | None, material_name: str, due_on, *,
                         overdue: bool) -> dict:
    """Template data reminding the citizen of a material they chose to bring later (容缺), due on `due_on`."""
    remark = (f"{material_name}已逾期,请尽快补交" if overdue
              else f"请于{due_on.month}月{due_on.day}日前补交{material_name}")
    return {
        "thing1": {"value": thing(matter_name, DEFAULT_MATTER_NAME)},
        "phrase2": {"value": DUE_LABEL[:PHRASE_MAX]},
        "time3": {"value": utcnow().astimezone(CHINA_TIME).strftime("%Y年%m月%d日 %H:%M")},
        "character_string4": {"value": str(application.id)[:CHARACTER_STRING_MAX]},
        "thing5": {"value": thing(remark, "请尽快补交材料")},
    }


def supplement_due_message(application, matter_name: str | None) -> dict:
    """Template data reminding the citizen of a supplement (补正) the reviewer asked for and still waits for."""
    items = len(application.supplement_items or [])
    return {
        "thing1": {"value": thing(matter_name, DEFAULT_MATTER_NAME)},
        "phrase2": {"value": STATUS_LABELS["supplement_requested"][:PHRASE_MAX]},
        "time3": {"value": utcnow().astimezone(CHINA_TIME).strftime("%Y年%m月%d日 %H:%M")},
        "character_string4": {"value": str(application.id)[:CHARACTER_STRING_MAX]},
        "thing5": {"value": thing(f"尚有{items}项待补正,请尽快补正后重新提交" if items else "请尽快补正后重新提交",
                                  "请尽快补正后重新提交")},
    }


ELIGIBLE_LABEL = "可申请"


def proactive_message(application, matter_name: str | None) -> dict:
    """Template data telling a citizen who opted in (免申即享) that they meet a matter's conditions; the draft's
    number leads to it (no name, no value of their data)."""
    return {
        "thing1": {"value": thing(matter_name, DEFAULT_MATTER_NAME)},
        "phrase2": {"value": ELIGIBLE_LABEL[:PHRASE_MAX]},
        "time3": {"value": utcnow().astimezone(CHINA_TIME).strftime("%Y年%m月%d日 %H:%M")},
        "character_string4": {"value": str(application.id)[:CHARACTER_STRING_MAX]},
        "thing5": {"value": thing("您已符合条件,申请草稿已备好", "申请草稿已备好")},
    }
