"""Connector specs: validation, source paths, value types, source times, the registry."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime

import pytest

from shared_data.connectors import (
    ConnectorRegistry,
    ConnectorSpec,
    coerce,
    extract,
    parse_path,
    parse_source_time,
)
from shared_data.elements import UnknownElement
from shared_data.errors import (
    DuplicateConnector,
    InvalidPath,
    InvalidSpec,
    PathNotFound,
    UnknownConnector,
    ValueTypeError,
)

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 32).decode()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def make_spec(**changes) -> ConnectorSpec:
    fields = {
        "id": "ga-population",
        "name": "人口基础信息查询",
        "bureau": "郑州市公安局",
        "base_url": "https://rkk.ga.zhengzhou.example",
        "mapping": {"person.name": "data.xm", "person.household_address": "data.hjdz"},
        "secret": "0123456789abcdef0123",
        "source_updated_path": "gxsj",
    }
    fields.update(changes)
    return ConnectorSpec(**fields)


# --- validation -------------------------------------------------------------------------------------------


def test_a_well_formed_spec_validates():
    spec = make_spec()
    spec.validate()
    assert spec.elements == {"person.name", "person.household_address"}
    assert spec.query_url == "https://rkk.ga.zhengzhou.example/query"
    assert spec.health_url == "https://rkk.ga.zhengzhou.example/health"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mapping": {"person.nickname": "data.nc"}}, "mapping"),
        ({"mapping": {"person.name": "data..xm"}}, "mapping"),
        ({"mapping": {"person.name": "data.xm[-1]"}}, "mapping"),
        ({"mapping": {}}, "mapping"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 31}, "timeout_seconds"),
        ({"timeout_seconds": "3"}, "timeout_seconds"),
        ({"id": "Population Registry"}, "id"),
        ({"name": ""}, "name"),
        ({"bureau": "   "}, "bureau"),
        ({"auth_type": "basic"}, "auth_type"),
        ({"secret": "short"}, "secret"),
        ({"trust_level": "E"}, "trust_level"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"max_response_bytes": 64 * 1024 * 1024}, "max_response_bytes"),
        ({"base_url": "ftp://bureau.example"}, "base_url"),
        ({"base_url": "https://bureau.example/api?token=1"}, "base_url"),
        ({"base_url": "https://user:pw@bureau.example"}, "base_url"),
        ({"query_path": "query"}, "query_path"),
        ({"query_path": "/a/../admin"}, "query_path"),
        ({"health_path": "//evil.example/health"}, "health_path"),
        ({"source_updated_path": "gx sj"}, "source_updated_path"),
    ],
)
def test_validation_names_the_bad_field(changes, field):
    with pytest.raises(InvalidSpec) as caught:
        make_spec(**changes).validate()
    assert field in caught.value.errors


def test_validation_reports_every_problem_at_once():
    with pytest.raises(InvalidSpec) as caught:
        make_spec(id="X", secret="", timeout_seconds=100, mapping={"no.such": "a"}).validate()
    assert {"id", "secret", "timeout_seconds", "mapping"} <= set(caught.value.errors)


def test_a_spec_is_frozen_hashable_and_keeps_its_secret_out_of_repr():
    mapping = {"person.name": "data.xm"}
    spec = make_spec(mapping=mapping)
    mapping["person.photo"] = "data.zp"  # the caller's dict changing later does not change the spec
    assert dict(spec.mapping) == {"person.name": "data.xm"}
    with pytest.raises(TypeError):
        spec.mapping["person.photo"] = "data.zp"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.secret = "another"
    assert {spec: 1}[make_spec(mapping={"person.name": "data.xm"})] == 1
    assert spec.secret not in repr(spec)


# --- source paths -----------------------------------------------------------------------------------------

DOCUMENT = {
    "data": {"xm": "张伟", "list": [{"tyshxydm": "91410100MA44XK3P76"}], "zero": 0, "empty": None},
    "result": {"insured": {"months": 120}},
    "data2": {"bdcqz": [{"bdcqzh": "A"}, {"bdcqzh": "B"}]},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.xm", "张伟"),
        ("result.insured.months", 120),
        ("data.list[0].tyshxydm", "91410100MA44XK3P76"),
        ("data.list[0]", {"tyshxydm": "91410100MA44XK3P76"}),
        ("data2.bdcqz[*].bdcqzh", ["A", "B"]),
        ("data.zero", 0),
        ("data.empty", None),
    ],
)
def test_extract_follows_keys_and_indices(path, value):
    assert extract(DOCUMENT, path) == value


@pytest.mark.parametrize(
    "path", ["data.nope", "data.list[1].tyshxydm", "data.xm.more", "data.list.tyshxydm", "data[0]"]
)
def test_extract_reports_a_path_that_leads_nowhere(path):
    with pytest.raises(PathNotFound):
        extract(DOCUMENT, path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "data.",
        ".data",
        "data..xm",
        "data[-1]",
        "data[x]",
        "data xm",
        "1data",
        "__import__('os').system('id')",
        "data['xm']",
        "data[0",
        "a" * 201,
        "data.xm()",
        "$.data",
    ],
)
def test_parse_path_refuses_anything_but_keys_and_indices(path):
    with pytest.raises(InvalidPath):
        parse_path(path)


def test_parse_path_steps():
    assert parse_path("data.list[0].name") == ("data", "list", 0, "name")
    assert parse_path("qlxx.证书[*].号") == ("qlxx", "证书", "*", "号")


# --- value types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        ("张伟", "string", "张伟"),
        (410101234567, "string", "410101234567"),
        (120, "integer", 120),
        ("120", "integer", 120),
        (120.0, "integer", 120),
        (" -3 ", "integer", -3),
        (86432.15, "number", 86432.15),
        ("86432.15", "number", 86432.15),
        (50, "number", 50),
        (True, "boolean", True),
        ("false", "boolean", False),
        ("1985-03-12", "date", "1985-03-12"),
        ("19850312", "date", "1985-03-12"),
        ([{"bdcqzh": "A"}], "list", [{"bdcqzh": "A"}]),
        ({"a": 1}, "object", {"a": 1}),
        (JPEG, "image", JPEG),
        (PNG[:20] + "\n" + PNG[20:], "image", PNG),
    ],
)
def test_coerce_accepts_values_of_the_declared_type(value, type_, expected):
    assert coerce(value, type_) == expected


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("一百二十", "integer"),
        ("1.5", "integer"),
        (1.5, "integer"),
        (True, "integer"),
        ("١٢٠", "integer"),  # Arabic-Indic digits: int() would take them, a registry must not send them
        ("八万六千", "number"),
        (float("nan"), "number"),
        (float("inf"), "number"),
        ("1e5", "number"),
        (False, "number"),
        ({"xm": "张伟"}, "string"),
        (True, "string"),
        (12.5, "string"),
        ("yes", "boolean"),
        (1, "boolean"),
        ("八五年三月十二日", "date"),
        ("1985-02-30", "date"),
        ("19851312", "date"),
        (19850312, "date"),
        ("A", "list"),
        ([1], "object"),
        ("照片暂缺", "image"),
        (base64.b64encode(b"GIF89a....").decode(), "image"),
        (123, "image"),
    ],
)
def test_coerce_refuses_values_of_another_type(value, type_):
    with pytest.raises(ValueTypeError) as caught:
        coerce(value, type_)
    assert caught.value.expected == type_


def test_type_errors_never_quote_the_value():
    with pytest.raises(ValueTypeError) as caught:
        coerce("一百二十", "integer")
    assert "一百二十" not in str(caught.value)


def test_coerce_refuses_an_unknown_type():
    with pytest.raises(ValueError, match="unknown element type"):
        coerce("x", "money")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-18 10:12:45", datetime(2024, 3, 18, 2, 12, 45, tzinfo=UTC)),  # Beijing time
        ("2024-06-30T18:00:00+08:00", datetime(2024, 6, 30, 10, 0, tzinfo=UTC)),
        ("2024-06-30T10:00:00Z", datetime(2024, 6, 30, 10, 0, tzinfo=UTC)),
        ("20121008102600", datetime(2012, 10, 8, 2, 26, tzinfo=UTC)),
        (1708479077000, datetime(2024, 2, 21, 1, 31, 17, tzinfo=UTC)),  # epoch milliseconds
        (1708479077, datetime(2024, 2, 21, 1, 31, 17, tzinfo=UTC)),
    ],
)
def test_source_times_become_utc(value, expected):
    assert parse_source_time(value) == expected


@pytest.mark.parametrize("value", ["昨天", "2024-13-01", None, [], "x" * 50])
def test_bad_source_times_are_type_errors(value):
    with pytest.raises(ValueTypeError):
        parse_source_time(value)


# --- the registry -----------------------------------------------------------------------------------------


def test_registry_register_get_and_refusals():
    registry = ConnectorRegistry([make_spec()])
    assert registry.get("ga-population").bureau == "郑州市公安局"
    assert "ga-population" in registry and len(registry) == 1
    with pytest.raises(DuplicateConnector):
        registry.register(make_spec())
    with pytest.raises(UnknownConnector):
        registry.get("nope")
    with pytest.raises(InvalidSpec):
        registry.register(make_spec(id="other", mapping={"no.such": "x"}))
    assert len(registry) == 1


def test_providers_are_ordered_by_trust_level_then_name():
    a = make_spec(id="ga-population", name="人口库", trust_level="A")
    b = make_spec(id="street-office", name="街道办", trust_level="B")
    c2 = make_spec(id="upload-z", name="Z 上传", trust_level="C")
    c1 = make_spec(id="upload-a", name="A 上传", trust_level="C")
    registry = ConnectorRegistry([c2, b, c1, a])
    assert [s.id for s in registry.providers_of("person.name")] == [
        "ga-population",
        "street-office",
        "upload-a",
        "upload-z",
    ]
    assert registry.providers_of("business.uscc") == []
    with pytest.raises(UnknownElement):
        registry.providers_of("person.nickname")


def test_connectors_for_picks_one_provider_per_element():
    population = make_spec(trust_level="B")
    registry_office = make_spec(
        id="ga-registry", name="户籍窗口", trust_level="A", mapping={"person.name": "data.name"}
    )
    marriage = make_spec(id="mz-marriage", name="婚姻登记", mapping={"marriage.status": "data.hyzt"})
    registry = ConnectorRegistry([population, registry_office, marriage])
    plan = registry.connectors_for(
        ["person.name", "person.household_address", "marriage.status", "tax.taxpayer_status", "person.name"]
    )
    assert {spec.id: elements for spec, elements in plan.items()} == {
        "ga-registry": ["person.name"],  # the A source wins over the B one
        "ga-population": ["person.household_address"],
        "mz-marriage": ["marriage.status"],
    }  # tax.taxpayer_status has no provider: left out, for the engine to mark skipped
