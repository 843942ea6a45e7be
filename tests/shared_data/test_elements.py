"""The dictionary of standard data elements (shared_data.elements): a plain library, no Flask."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from shared_data import elements
from shared_data.elements import ELEMENTS, DataElement, UnknownElement

CJK = re.compile(r"[\u4e00-\u9fff]")

NAMED_IN_THE_ISSUE = [
    "person.name",
    "person.id_number",
    "person.gender",
    "person.birth_date",
    "person.ethnicity",
    "person.household_address",
    "person.household_region",
    "person.marital_status",
    "person.photo",
    "social_insurance.status",
    "social_insurance.months_paid",
    "social_insurance.employer",
    "social_insurance.medical_insurance_status",
    "housing_fund.account_status",
    "housing_fund.account_number",
    "housing_fund.balance",
    "housing_fund.monthly_deposit",
    "property.certificates",
    "property.count",
    "business.uscc",
    "business.name",
    "business.legal_representative",
    "business.type",
    "business.registered_address",
    "business.status",
    "marriage.status",
    "marriage.spouse_name",
    "vehicle.driving_licence_status",
    "birth.medical_certificate_number",
]


@pytest.mark.parametrize("name", NAMED_IN_THE_ISSUE)
def test_the_elements_other_modules_rely_on_exist(name):
    assert elements.exists(name)
    assert elements.get(name).name == name


def test_every_element_is_well_formed():
    for name, element in ELEMENTS.items():
        assert element.name == name
        assert element.type in elements.TYPES
        assert CJK.search(element.label), name
        assert "." in name and name == name.lower()


def test_types_of_notable_elements():
    assert elements.get("person.photo").type == "image"
    assert elements.get("property.certificates").type == "list"
    assert elements.get("property.count").type == "integer"
    assert elements.get("housing_fund.balance").type == "number"
    assert elements.get("person.birth_date").type == "date"
    assert elements.get("person.id_number").personal is True
    assert elements.get("business.uscc").personal is False


def test_unknown_names():
    assert not elements.exists("person.shoe_size")
    with pytest.raises(UnknownElement):
        elements.get("person.shoe_size")
    with pytest.raises(KeyError):  # UnknownElement is a KeyError, for callers that expect one
        elements.get("")
    assert elements.unknown(["person.name", "x.y", "person.shoe_size"]) == ["x.y", "person.shoe_size"]


def test_elements_are_immutable_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ELEMENTS["person.name"].label = "名字"  # type: ignore[misc]
    with pytest.raises(ValueError):
        DataElement("person.age", "年龄", "float")
    with pytest.raises(ValueError):
        DataElement("Person Name", "姓名", "string")


def test_the_library_imports_neither_flask_nor_the_app():
    code = (
        "import sys, shared_data.elements; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'app')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
