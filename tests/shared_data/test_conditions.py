"""Conditions as data (shared_data.conditions): the validator against the dictionary and the evaluator's
three-valued logic. A plain library: no Flask, no app."""

from __future__ import annotations

from datetime import date

import pytest

from shared_data import conditions as c
from shared_data.conditions import Fact

TODAY = date(2026, 12, 7)
SOURCE = {"connector": "rsj-sandbox", "bureau": "rsj", "trust_level": "A", "source_updated_at": None,
          "fetched_at": "2026-12-07T08:00:00Z"}


def ok(value):
    return Fact(value, "ok", SOURCE)


def one(rule, facts, **extra):
    """The outcome of a single checked condition."""
    result = c.evaluate([{"text": "条件", "rule": rule, **extra}], facts, today=TODAY)
    return result.conditions[0]


# ---------------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize(("op", "value", "datum", "outcome"), [
    ("==", "退休", "退休", "met"),
    ("==", "退休", "参保缴费", "not_met"),
    ("!=", "终止", "退休", "met"),
    ("!=", "退休", "退休", "not_met"),
    ("in", ["退休", "终止"], "终止", "met"),
    ("in", ["退休", "终止"], "参保缴费", "not_met"),
])
def test_string_operators(op, value, datum, outcome):
    rule = {"element": "social_insurance.status", "op": op, "value": value}
    assert one(rule, {"social_insurance.status": ok(datum)}).result == outcome


@pytest.mark.parametrize(("op", "value", "outcome"), [
    ("<", 121, "met"), ("<", 120, "not_met"),
    ("<=", 120, "met"), ("<=", 119, "not_met"),
    (">", 119, "met"), (">", 120, "not_met"),
    (">=", 120, "met"), (">=", 121, "not_met"),
    ("==", 120, "met"), ("!=", 120, "not_met"),
    ("in", [60, 120], "met"),
])
def test_numeric_operators(op, value, outcome):
    rule = {"element": "social_insurance.months_paid", "op": op, "value": value}
    assert one(rule, {"social_insurance.months_paid": ok(120)}).result == outcome


def test_number_compares_with_integer_and_float():
    rule = {"element": "housing_fund.balance", "op": ">", "value": 0}
    assert one(rule, {"housing_fund.balance": ok(86432.15)}).result == "met"
    assert one(rule, {"housing_fund.balance": ok(0.0)}).result == "not_met"


def test_dates_compare_as_dates():
    rule = {"element": "social_insurance.retirement_date", "op": "<=", "value": "2020-01-01"}
    assert one(rule, {"social_insurance.retirement_date": ok("2015-10-01")}).result == "met"
    assert one(rule, {"social_insurance.retirement_date": ok("2021-10-01")}).result == "not_met"


def test_starts_with_is_a_prefix():
    rule = {"element": "person.household_region", "op": "starts_with", "value": "4101"}
    assert one(rule, {"person.household_region": ok("410105")}).result == "met"
    assert one(rule, {"person.household_region": ok("410201")}).result == "not_met"


def test_present_and_not_found():
    rule = {"element": "housing_fund.account_status", "op": "present"}
    assert one(rule, {"housing_fund.account_status": ok("正常")}).result == "met"
    # The registry answered and holds no such record: that is what `present` asks.
    assert one(rule, {"housing_fund.account_status": Fact(None, "not_found", SOURCE)}).result == "not_met"
    assert one(rule, {"housing_fund.account_status": Fact(None, "timeout", SOURCE)}).result == "unknown"
    listed = {"element": "property.certificates", "op": "present"}
    assert one(listed, {"property.certificates": ok([])}).result == "not_met"


def test_value_of_compares_two_elements():
    rule = {"element": "business.legal_representative", "op": "==", "value_of": "person.name"}
    assert one(rule, {"business.legal_representative": ok("李娜"), "person.name": ok("李娜")}).result == "met"
    assert one(rule, {"business.legal_representative": ok("李娜"), "person.name": ok("张伟")}).result == "not_met"
    assert one(rule, {"business.legal_representative": ok("李娜"),
                      "person.name": Fact(None, "not_consented")}).result == "unknown"


# ---------------------------------------------------------------------------------------------- derived


def test_age_from_the_id_numbers_birth_date_never_shows_the_number():
    rule = {"element": "person.id_number", "derive": "age", "op": ">=", "value": 60}
    result = one(rule, {"person.id_number": ok("41010419650908058X")})
    assert result.result == "met"
    fact = result.facts[0]
    assert fact["value"] == 61 and fact["derive"] == "age"
    assert "41010419650908058X" not in repr(result.to_dict())
    young = one(rule, {"person.id_number": ok("410105198503120013")})
    assert young.result == "not_met" and young.facts[0]["value"] == 41


def test_age_counts_full_years_on_the_birthday():
    rule = {"element": "person.birth_date", "derive": "age", "op": ">=", "value": 60}
    assert one(rule, {"person.birth_date": ok("1966-12-07")}).result == "met"
    assert one(rule, {"person.birth_date": ok("1966-12-08")}).result == "not_met"


def test_years_since_a_date():
    rule = {"element": "social_insurance.retirement_date", "derive": "years_since", "op": ">=", "value": 10}
    assert one(rule, {"social_insurance.retirement_date": ok("2015-10-01")}).result == "met"
    assert one(rule, {"social_insurance.retirement_date": ok("2020-10-01")}).result == "not_met"


def test_a_malformed_date_is_unknown_not_a_crash():
    rule = {"element": "person.birth_date", "derive": "age", "op": ">=", "value": 18}
    assert one(rule, {"person.birth_date": ok("yesterday")}).result == "unknown"


# ---------------------------------------------------------------------------------------------- logic


MET = {"element": "social_insurance.status", "op": "==", "value": "退休"}
FAILS = {"element": "social_insurance.months_paid", "op": ">=", "value": 999}
UNKNOWN = {"element": "housing_fund.balance", "op": ">", "value": 0}
FACTS = {"social_insurance.status": ok("退休"), "social_insurance.months_paid": ok(120),
         "housing_fund.balance": Fact(None, "timeout", SOURCE)}


@pytest.mark.parametrize(("rule", "outcome"), [
    ({"all": [MET, MET]}, "met"),
    ({"all": [MET, FAILS]}, "not_met"),
    ({"all": [MET, UNKNOWN]}, "unknown"),
    ({"all": [UNKNOWN, FAILS]}, "not_met"),
    ({"any": [FAILS, MET]}, "met"),
    ({"any": [FAILS, UNKNOWN]}, "unknown"),
    ({"any": [UNKNOWN, MET]}, "met"),
    ({"any": [FAILS, FAILS]}, "not_met"),
    ({"not": MET}, "not_met"),
    ({"not": FAILS}, "met"),
    ({"not": UNKNOWN}, "unknown"),
    ({"all": [MET, {"not": {"any": [FAILS, UNKNOWN]}}]}, "unknown"),
])
def test_three_valued_logic(rule, outcome):
    assert one(rule, FACTS).result == outcome


@pytest.mark.parametrize("status", ["not_found", "failed", "timeout", "skipped", "not_consented", "not_fetched"])
def test_data_not_at_hand_makes_a_comparison_unknown(status):
    facts = {"social_insurance.status": Fact(None, status, SOURCE)} if status != "not_fetched" else {}
    result = one(MET, facts)
    assert result.result == "unknown"
    assert result.reasons and result.facts[0]["status"] == status


def test_overall_result_and_provenance():
    items = [
        "提取资金转入职工本人名下银行借记卡",  # text only: shown, not checked
        {"text": "已退休", "rule": MET},
        {"text": "有余额", "rule": UNKNOWN, "reviewer_may_decide": True},
    ]
    eligibility = c.evaluate(items, FACTS, today=TODAY)
    assert eligibility.result == "unknown"
    text_only, retired, balance = eligibility.conditions
    assert (text_only.checked, text_only.result) == (False, "not_checked")
    assert retired.result == "met" and retired.facts[0]["source"]["connector"] == "rsj-sandbox"
    assert balance.result == "unknown" and balance.reviewer_may_decide
    assert c.evaluate(items + [{"text": "x", "rule": FAILS}], FACTS, today=TODAY).result == "not_eligible"
    assert c.evaluate(items[:2], FACTS, today=TODAY).result == "eligible"
    assert c.evaluate([], {}, today=TODAY).result == "eligible"


def test_a_datum_of_the_wrong_type_is_unknown():
    assert one(FAILS, {"social_insurance.months_paid": ok("很多")}).result == "unknown"


def test_elements_needed_and_texts():
    items = ["纯文字", {"text": "t", "rule": {"all": [MET, {"element": "business.legal_representative", "op": "==",
                                                            "value_of": "person.name"}]}}]
    assert c.elements_needed(items) == ["social_insurance.status", "business.legal_representative", "person.name"]
    assert c.texts(items) == ["纯文字", "t"]


# ---------------------------------------------------------------------------------------------- validation


def test_valid_conditions_have_no_problems():
    items = ["纯文字", {"text": "已退休", "rule": {"any": [MET, {"not": FAILS}]}, "reviewer_may_decide": True},
             {"text": "年满 60", "rule": {"element": "person.id_number", "derive": "age", "op": ">=", "value": 60}},
             {"text": "有房", "rule": {"element": "property.count", "op": ">=", "value": 1}},
             {"text": "日期", "rule": {"element": "social_insurance.retirement_date", "op": "<",
                                     "value": "2030-01-01"}}]
    assert c.validate_conditions(items) == {}


@pytest.mark.parametrize(("rule", "path", "fragment"), [
    ({"element": "no.such_thing", "op": "==", "value": "x"}, "0.rule.element", "未知的数据元素"),
    ({"element": "social_insurance.status", "op": "~=", "value": "x"}, "0.rule.op", "运算符"),
    ({"element": "social_insurance.status", "op": ">", "value": "x"}, "0.rule.op", "不适用"),
    ({"element": "property.certificates", "op": "==", "value": "x"}, "0.rule.op", "不适用"),
    ({"element": "social_insurance.months_paid", "op": ">=", "value": "120"}, "0.rule.value", "整数"),
    ({"element": "social_insurance.months_paid", "op": ">=", "value": True}, "0.rule.value", "整数"),
    ({"element": "housing_fund.balance", "op": ">", "value": "0"}, "0.rule.value", "数字"),
    ({"element": "social_insurance.retirement_date", "op": "<", "value": "last year"}, "0.rule.value", "日期"),
    ({"element": "social_insurance.status", "op": "in", "value": "退休"}, "0.rule.value", "列表"),
    ({"element": "social_insurance.status", "op": "in", "value": ["退休", 3]}, "0.rule.value.1", "文字"),
    ({"element": "social_insurance.status", "op": "present", "value": "x"}, "0.rule", "present"),
    ({"element": "social_insurance.status", "op": "=="}, "0.rule", "value"),
    ({"element": "social_insurance.status", "derive": "age", "op": ">=", "value": 1}, "0.rule.derive", "不是日期"),
    ({"element": "person.birth_date", "derive": "weeks", "op": ">=", "value": 1}, "0.rule.derive", "推算方式"),
    ({"element": "person.id_number", "op": "==", "value": "410105198503120013"}, "0.rule.element", "年龄"),
    ({"element": "social_insurance.months_paid", "op": "==", "value_of": "person.name"}, "0.rule.value_of",
     "不能比较"),
    ({"element": "social_insurance.status", "op": "==", "value": "x", "extra": 1}, "0.rule.extra", "未知的字段"),
    ({"all": []}, "0.rule.all", "列表"),
    ({"all": [MET], "any": [MET]}, "0.rule", "单独"),
    ({"not": "x"}, "0.rule.not", "对象"),
    ("rule", "0.rule", "对象"),
    ({"all": [MET, {"element": "nope.nope", "op": "present"}]}, "0.rule.all.1.element", "未知的数据元素"),
])
def test_bad_rules_are_named_by_path(rule, path, fragment):
    problems = c.validate_conditions([{"text": "条件", "rule": rule}])
    assert path in problems, problems
    assert any(fragment in message for message in problems[path]), problems


def test_bad_condition_shapes():
    problems = c.validate_conditions(["", 3, {"rule": MET}, {"text": "t", "reviewer_may_decide": True},
                                      {"text": "t", "rule": MET, "reviewer_may_decide": "yes"}])
    assert set(problems) == {"0", "1", "2.text", "3.reviewer_may_decide", "4.reviewer_may_decide"}
    assert c.validate_conditions("x") == {"": ["受理条件须为列表"]}


def test_deep_nesting_is_refused():
    rule = MET
    for _ in range(12):
        rule = {"not": rule}
    problems = c.validate_conditions([{"text": "t", "rule": rule}])
    assert any("嵌套" in m for messages in problems.values() for m in messages)


def test_stored_form_round_trips():
    items = ["纯文字", {"text": "t", "rule": MET, "reviewer_may_decide": False}]
    assert [condition.to_dict() for condition in c.parse(items)] == items
