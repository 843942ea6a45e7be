"""The sandbox people (API.md's table) and what each sandbox registry holds about them.

Everyone here is fictitious: names, ID numbers, addresses, employers, accounts and certificate numbers were
made up to look like real 郑州 records (ID numbers and USCCs carry correct check characters; addresses lie in
the district of the ID's region code). Each registry is a dict keyed by ID number; a person missing from a
registry is "not found" there. 赵磊 is in no registry at all.

Reference photos (`app/sandbox/data/README.md`): 张伟 has `astronaut.jpg`, 李娜 `grace_hopper.jpg`; the
others have none, so the population registry answers without a photo for them.

`updated_at` is each record's last change in the registry, in Beijing time.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


@dataclass(frozen=True)
class Person:
    """A sandbox citizen as API.md lists them."""

    name: str
    id_number: str


@dataclass(frozen=True)
class PopulationRecord:
    """公安人口库: the household registration (户籍) record."""

    name: str
    id_number: str
    gender: str  # 男 / 女, from the ID's sequence digit (odd = male)
    birth_date: date  # the ID's birth date
    ethnicity: str
    household_region: str  # the district's 6-digit code, the ID's first six digits here
    household_address: str
    household_head: str
    marital_status: str
    photo: str | None  # a file in app/sandbox/data
    updated_at: datetime


@dataclass(frozen=True)
class SocialInsuranceRecord:
    """人社: pension insurance, social security card, medical insurance and unemployment registration."""

    status: str  # 参保缴费 / 暂停缴费 / 退休 / 终止
    months_paid: int
    employer: str
    insured_region: str
    card_number: str
    card_status: str
    medical_insurance_status: str
    medical_insurance_type: str
    unemployment_status: str
    retirement_date: date | None
    updated_at: datetime


@dataclass(frozen=True)
class HousingFundRecord:
    """住房公积金管理中心: the personal account (amounts in yuan)."""

    account_number: str
    account_status: str  # 正常 / 封存 / 销户
    balance: Decimal
    monthly_deposit: Decimal  # employer and employee together
    employer: str
    unit_account_number: str
    deposit_months: int
    loan_status: str
    updated_at: datetime


@dataclass(frozen=True)
class PropertyCertificate:
    """One 不动产权证书."""

    number: str
    location: str
    area_m2: Decimal
    usage: str
    registered_on: date


@dataclass(frozen=True)
class PropertyRecord:
    """不动产登记: the certificates registered to the person in the city."""

    certificates: tuple[PropertyCertificate, ...]
    mortgage_status: str
    updated_at: datetime


@dataclass(frozen=True)
class BusinessRecord:
    """市场监管: a market entity whose legal representative (or operator) the person is."""

    uscc: str
    name: str
    legal_representative: str
    type: str
    registered_address: str
    status: str
    registered_capital: Decimal  # 万元
    scope: str
    established_date: date
    food_licence_number: str | None
    updated_at: datetime


@dataclass(frozen=True)
class MarriageRecord:
    """民政婚姻登记: the person's current marriage registration."""

    status: str
    spouse_name: str
    spouse_id_number: str  # fictitious, with a correct check character
    certificate_number: str
    registration_date: date
    registration_office: str
    updated_at: datetime


ZHANG_WEI = Person("张伟", "410105198503120013")
LI_NA = Person("李娜", "410102199207040225")
WANG_QIANG = Person("王强", "410103197811300350")
LIU_YANG = Person("刘洋", "41012220010215047X")
CHEN_JING = Person("陈静", "41010419650908058X")
ZHAO_LEI = Person("赵磊", "410105199001010636")  # valid ID, in no registry

PEOPLE: tuple[Person, ...] = (ZHANG_WEI, LI_NA, WANG_QIANG, LIU_YANG, CHEN_JING, ZHAO_LEI)

# District names by the region code in the ID numbers above.
DISTRICTS = {
    "410102": "中原区",
    "410103": "二七区",
    "410104": "管城回族区",
    "410105": "金水区",
    "410122": "中牟县",
}

POPULATION: dict[str, PopulationRecord] = {
    ZHANG_WEI.id_number: PopulationRecord(
        name="张伟",
        id_number=ZHANG_WEI.id_number,
        gender="男",
        birth_date=date(1985, 3, 12),
        ethnicity="汉族",
        household_region="410105",
        household_address="河南省郑州市金水区经八路街道农业路东段16号院2号楼1单元502号",
        household_head="张伟",
        marital_status="已婚",
        photo="astronaut.jpg",
        updated_at=_at("2024-03-18T10:12:45"),
    ),
    LI_NA.id_number: PopulationRecord(
        name="李娜",
        id_number=LI_NA.id_number,
        gender="女",
        birth_date=date(1992, 7, 4),
        ethnicity="汉族",
        household_region="410102",
        household_address="河南省郑州市中原区建设路街道桐柏路99号院5号楼3单元1201号",
        household_head="李建国",
        marital_status="未婚",
        photo="grace_hopper.jpg",
        updated_at=_at("2023-08-02T16:40:11"),
    ),
    WANG_QIANG.id_number: PopulationRecord(
        name="王强",
        id_number=WANG_QIANG.id_number,
        gender="男",
        birth_date=date(1978, 11, 30),
        ethnicity="汉族",
        household_region="410103",
        household_address="河南省郑州市二七区五里堡街道大学路78号院9号楼2单元301号",
        household_head="王强",
        marital_status="未婚",
        photo=None,
        updated_at=_at("2022-12-09T09:05:37"),
    ),
    LIU_YANG.id_number: PopulationRecord(
        name="刘洋",
        id_number=LIU_YANG.id_number,
        gender="男",
        birth_date=date(2001, 2, 15),
        ethnicity="汉族",
        household_region="410122",
        household_address="河南省郑州市中牟县青年路街道商都大道266号院3号楼1单元602号",
        household_head="刘建军",
        marital_status="未婚",
        photo=None,
        updated_at=_at("2024-01-26T11:20:03"),
    ),
    CHEN_JING.id_number: PopulationRecord(
        name="陈静",
        id_number=CHEN_JING.id_number,
        gender="女",
        birth_date=date(1965, 9, 8),
        ethnicity="汉族",
        household_region="410104",
        household_address="河南省郑州市管城回族区北下街街道书院街112号院1号楼2单元402号",
        household_head="陈静",
        marital_status="丧偶",
        photo=None,
        updated_at=_at("2021-05-14T14:48:29"),
    ),
}

SOCIAL_INSURANCE: dict[str, SocialInsuranceRecord] = {
    ZHANG_WEI.id_number: SocialInsuranceRecord(
        status="参保缴费",
        months_paid=120,
        employer="郑州启明软件科技有限公司",
        insured_region="410100",
        card_number="H41005832",
        card_status="正常",
        medical_insurance_status="参保缴费",
        medical_insurance_type="职工医保",
        unemployment_status="未登记",
        retirement_date=None,
        updated_at=_at("2024-06-30T18:00:00"),
    ),
    LI_NA.id_number: SocialInsuranceRecord(
        status="参保缴费",
        months_paid=64,
        employer="郑州市李娜餐饮有限公司",
        insured_region="410100",
        card_number="H41017264",
        card_status="正常",
        medical_insurance_status="参保缴费",
        medical_insurance_type="职工医保",
        unemployment_status="未登记",
        retirement_date=None,
        updated_at=_at("2024-06-30T18:00:00"),
    ),
    LIU_YANG.id_number: SocialInsuranceRecord(
        status="参保缴费",
        months_paid=18,
        employer="河南速达物流有限公司中牟分公司",
        insured_region="410122",
        card_number="H41093517",
        card_status="正常",
        medical_insurance_status="参保缴费",
        medical_insurance_type="职工医保",
        unemployment_status="未登记",
        retirement_date=None,
        updated_at=_at("2024-06-30T18:00:00"),
    ),
    CHEN_JING.id_number: SocialInsuranceRecord(
        status="退休",
        months_paid=372,
        employer="郑州第二纺织机械厂",
        insured_region="410100",
        card_number="H40862190",
        card_status="正常",
        medical_insurance_status="参保缴费",
        medical_insurance_type="职工医保",
        unemployment_status="未登记",
        retirement_date=date(2015, 10, 1),
        updated_at=_at("2024-05-31T18:00:00"),
    ),
}

HOUSING_FUND: dict[str, HousingFundRecord] = {
    ZHANG_WEI.id_number: HousingFundRecord(
        account_number="410101234567",
        account_status="正常",
        balance=Decimal("86432.15"),
        monthly_deposit=Decimal("2160.00"),
        employer="郑州启明软件科技有限公司",
        unit_account_number="4101000862",
        deposit_months=118,
        loan_status="无贷款",
        updated_at=_at("2024-07-01T02:00:00"),
    ),
    WANG_QIANG.id_number: HousingFundRecord(
        account_number="410103876543",
        account_status="正常",
        balance=Decimal("35210.56"),
        monthly_deposit=Decimal("960.00"),
        employer="郑州市金水区王强日用百货店",
        unit_account_number="4101051377",
        deposit_months=72,
        loan_status="无贷款",
        updated_at=_at("2024-07-01T02:00:00"),
    ),
}

PROPERTY: dict[str, PropertyRecord] = {
    ZHANG_WEI.id_number: PropertyRecord(
        certificates=(
            PropertyCertificate(
                number="豫(2019)郑州市不动产权第0123456号",
                location="金水区农业路东段16号院2号楼1单元502号",
                area_m2=Decimal("118.56"),
                usage="住宅",
                registered_on=date(2019, 6, 18),
            ),
        ),
        mortgage_status="无抵押",
        updated_at=_at("2023-11-20T15:30:00"),
    ),
    CHEN_JING.id_number: PropertyRecord(
        certificates=(
            PropertyCertificate(
                number="豫(2016)郑州市不动产权第0045678号",
                location="管城回族区书院街112号院1号楼2单元402号",
                area_m2=Decimal("89.37"),
                usage="住宅",
                registered_on=date(2016, 11, 2),
            ),
        ),
        mortgage_status="无抵押",
        updated_at=_at("2022-04-07T10:02:54"),
    ),
}

BUSINESS: dict[str, BusinessRecord] = {
    LI_NA.id_number: BusinessRecord(
        uscc="91410100MA44XK3P76",
        name="郑州市李娜餐饮有限公司",
        legal_representative="李娜",
        type="有限责任公司(自然人独资)",
        registered_address="河南省郑州市中原区建设西路158号1层",
        status="存续",
        registered_capital=Decimal(50),
        scope="餐饮服务;食品销售(仅销售预包装食品)",
        established_date=date(2018, 5, 9),
        food_licence_number="JY24101020056781",
        updated_at=_at("2024-02-21T09:31:17"),
    ),
    WANG_QIANG.id_number: BusinessRecord(
        uscc="92410105MA9GQ1T2XH",
        name="郑州市金水区王强日用百货店",
        legal_representative="王强",
        type="个体工商户",
        registered_address="河南省郑州市金水区文化路街道文化路85号",
        status="存续",
        registered_capital=Decimal(10),
        scope="日用百货、五金交电零售",
        established_date=date(2016, 4, 12),
        food_licence_number=None,
        updated_at=_at("2023-06-12T14:05:48"),
    ),
}

MARRIAGE: dict[str, MarriageRecord] = {
    ZHANG_WEI.id_number: MarriageRecord(
        status="已婚",
        spouse_name="王丽",
        spouse_id_number="410105198708150021",
        certificate_number="J410105-2012-003456",
        registration_date=date(2012, 10, 8),
        registration_office="郑州市金水区民政局婚姻登记处",
        updated_at=_at("2012-10-08T10:26:00"),
    ),
}


def person(id_number: str) -> Person | None:
    """The sandbox person with this ID number, if any."""
    return next((p for p in PEOPLE if p.id_number == id_number), None)


@cache
def photo_base64(file_name: str) -> str:
    """A reference photo from app/sandbox/data, base64-encoded as the population registry sends it."""
    return base64.b64encode((DATA_DIR / file_name).read_bytes()).decode("ascii")
