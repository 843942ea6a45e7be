"""The dictionary of standard data elements: the names matters and connectors agree on.

A material names the elements it needs (`person.name`, `housing_fund.account_status`, …) and a connector
declares the elements it provides; neither knows the other (BRIEF §3, the EU once-only lesson). Names are
dotted `<domain>.<attribute>`, stable, and never reused for another meaning: add a new name instead.

This module is plain data. It must not import Flask or the app, so bureaus' tools and the prefill engine
can use it on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TYPES = ("string", "integer", "number", "boolean", "date", "list", "object", "image")

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class DataElement:
    """One standard data element: its dotted name, Chinese label, value type and whether it is personal."""

    name: str
    label: str
    type: str
    description: str = ""
    # Personal data about a natural person (PIPL): consent, masking and the access log apply to it.
    personal: bool = True

    def __post_init__(self):
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"data element name must be dotted lower-case, got {self.name!r}")
        if self.type not in TYPES:
            raise ValueError(f"data element {self.name}: type must be one of {TYPES}, got {self.type!r}")

    @property
    def domain(self) -> str:
        """The part before the first dot: `person`, `housing_fund`, …"""
        return self.name.split(".", 1)[0]


_E = DataElement

_DEFINITIONS: tuple[DataElement, ...] = (
    # Population registry (公安人口库)
    _E("person.name", "姓名", "string", "居民身份证登记的姓名"),
    _E("person.id_number", "公民身份号码", "string", "18 位居民身份证号码(GB 11643)"),
    _E("person.gender", "性别", "string", "男 / 女"),
    _E("person.birth_date", "出生日期", "date"),
    _E("person.ethnicity", "民族", "string"),
    _E("person.household_address", "户籍地址", "string", "常住户口登记地址"),
    _E("person.household_region", "户籍地行政区划", "string", "6 位行政区划代码,如 410105"),
    _E("person.household_head", "户主姓名", "string"),
    _E("person.marital_status", "婚姻状况", "string", "人口库登记的婚姻状况"),
    _E("person.photo", "证件照片", "image", "人口库存档的证件照片,刷脸核验时作为比对底图"),
    _E("person.phone", "手机号码", "string", "申请人预留的手机号码"),
    _E("person.residence_address", "居住地址", "string", "现居住地址(可用于邮寄送达)"),
    # Social insurance (人社)
    _E("social_insurance.status", "社会保险参保状态", "string", "参保缴费 / 暂停缴费 / 退休 / 终止"),
    _E("social_insurance.months_paid", "养老保险累计缴费月数", "integer"),
    _E("social_insurance.employer", "参保单位名称", "string"),
    _E("social_insurance.insured_region", "参保地", "string", "参保地行政区划"),
    _E("social_insurance.retirement_date", "退休日期", "date"),
    _E("social_insurance.card_number", "社会保障卡卡号", "string"),
    _E("social_insurance.card_status", "社会保障卡状态", "string", "正常 / 挂失 / 未申领"),
    _E("social_insurance.unemployment_status", "失业登记状态", "string"),
    _E("social_insurance.medical_insurance_status", "基本医疗保险参保状态", "string", "医保局登记的参保状态"),
    _E("social_insurance.medical_insurance_type", "医疗保险险种", "string", "职工医保 / 城乡居民医保"),
    # Housing fund (住房公积金)
    _E("housing_fund.account_status", "住房公积金账户状态", "string", "正常 / 封存 / 销户"),
    _E("housing_fund.account_number", "住房公积金个人账号", "string"),
    _E("housing_fund.balance", "住房公积金账户余额", "number", "单位:元"),
    _E("housing_fund.monthly_deposit", "住房公积金月缴存额", "number", "单位与个人合计,单位:元"),
    _E("housing_fund.employer", "住房公积金缴存单位", "string"),
    _E("housing_fund.deposit_months", "住房公积金连续缴存月数", "integer"),
    _E("housing_fund.loan_status", "住房公积金贷款状态", "string", "无贷款 / 还款中 / 已结清"),
    _E("housing_fund.unit_account_number", "单位住房公积金账号", "string", personal=False),
    # Property (自然资源和规划 / 不动产登记)
    _E("property.certificates", "不动产权证书", "list", "名下不动产权证书:证号、坐落、面积、用途"),
    _E("property.count", "名下不动产数量", "integer", "本市范围内登记在本人名下的住房套数"),
    _E("property.mortgage_status", "不动产抵押状态", "string"),
    # Market entities (市场监管)
    _E("business.uscc", "统一社会信用代码", "string", "18 位统一社会信用代码(GB 32100)", personal=False),
    _E("business.name", "市场主体名称", "string", personal=False),
    _E("business.legal_representative", "法定代表人(经营者)姓名", "string"),
    _E("business.type", "市场主体类型", "string", "有限责任公司 / 个体工商户 等", personal=False),
    _E("business.registered_address", "住所(经营场所)", "string", personal=False),
    _E("business.status", "登记状态", "string", "存续 / 注销 / 吊销", personal=False),
    _E("business.registered_capital", "注册资本", "number", "单位:万元", personal=False),
    _E("business.scope", "经营范围", "string", personal=False),
    _E("business.established_date", "成立日期", "date", personal=False),
    _E("business.food_licence_number", "食品经营许可证编号", "string", personal=False),
    # Tax (税务)
    _E("tax.taxpayer_status", "纳税人状态", "string", "正常 / 非正常 / 注销", personal=False),
    _E("tax.deed_tax_paid", "契税完税信息", "object", "不动产交易契税缴纳凭证号、金额、日期"),
    # Marriage (民政婚姻登记)
    _E("marriage.status", "婚姻登记状态", "string", "未婚 / 已婚 / 离婚 / 丧偶(以婚姻登记记录为准)"),
    _E("marriage.spouse_name", "配偶姓名", "string"),
    _E("marriage.spouse_id_number", "配偶公民身份号码", "string"),
    _E("marriage.certificate_number", "结婚证字号", "string"),
    _E("marriage.registration_date", "婚姻登记日期", "date"),
    # Civil affairs (民政)
    _E("civil_affairs.assistance_status", "社会救助享受状态", "string", "低保 / 特困 / 无"),
    # Vehicles and drivers (车驾管)
    _E("vehicle.driving_licence_status", "机动车驾驶证状态", "string", "正常 / 超分 / 注销 等"),
    _E("vehicle.driving_licence_class", "准驾车型", "string", "如 C1"),
    _E("vehicle.driving_licence_valid_until", "驾驶证有效期止", "date"),
    _E("vehicle.unhandled_violations", "未处理交通违法记录数", "integer"),
    _E("vehicle.plates", "名下机动车号牌", "list", "号牌号码与车辆类型"),
    _E("vehicle.compulsory_insurance", "机动车交通事故责任强制保险", "object", "保单号、保险期间"),
    _E("health.driver_fitness", "机动车驾驶人身体条件证明", "object", "医疗机构出具的体检结论与日期"),
    # Exit and entry (出入境)
    _E("exit_entry.travel_records", "出入境记录", "list", "出入境日期、口岸、证件"),
    _E("exit_entry.hk_macao_permit_status", "往来港澳通行证状态", "string", "有效 / 过期 / 作废"),
    _E("exit_entry.passport_status", "普通护照状态", "string"),
    # Birth (卫健委出生医学证明)
    _E("birth.medical_certificate_number", "出生医学证明编号", "string"),
    _E("birth.child_name", "新生儿姓名", "string"),
    _E("birth.child_gender", "新生儿性别", "string"),
    _E("birth.child_birth_date", "新生儿出生日期", "date"),
    _E("birth.place", "出生地点", "string", "助产机构名称"),
    _E("birth.mother_name", "母亲姓名", "string"),
    _E("birth.father_name", "父亲姓名", "string"),
)

ELEMENTS: dict[str, DataElement] = {element.name: element for element in _DEFINITIONS}
if len(ELEMENTS) != len(_DEFINITIONS):  # a duplicated name would silently drop a definition
    raise RuntimeError("duplicate data element name in shared_data.elements")


class UnknownElement(KeyError):
    """A name that is not in the dictionary."""


def exists(name: str) -> bool:
    """Whether `name` is a standard data element."""
    return name in ELEMENTS


def get(name: str) -> DataElement:
    """The element called `name`; UnknownElement if there is none."""
    try:
        return ELEMENTS[name]
    except (KeyError, TypeError):
        raise UnknownElement(name) from None


def unknown(names: Iterable[str]) -> list[str]:
    """The names among `names` that are not in the dictionary, in their order."""
    return [name for name in names if not exists(name)]
