"""A matter's conditions (受理条件) as data: a small declarative rule language, its validator and its evaluator.

Each condition keeps its plain Chinese `text` (what the guide shows) and may carry a `rule` the platform checks
against the shared data a prefill fetched (智能预审). A condition without a rule is text only: shown, never
checked. The rule is plain JSON — no `eval`, no expression language to parse — built from:

- a comparison over one data element of the dictionary (`shared_data/elements.py`):
  `{"element": "social_insurance.status", "op": "==", "value": "退休"}`; operators `==`, `!=`, `<`, `<=`,
  `>`, `>=` (numbers, integers and dates), `in` (the value is a list), `starts_with` (text, e.g. a region
  code's prefix `4101` for 郑州), and `present` (the registry holds the datum; no value);
- a derived value instead of the element's own: `"derive": "age"` (full years from a date element, or from
  the birth date inside `person.id_number`, GB 11643) or `"derive": "years_since"` (full years since a date
  element), compared with an integer;
- another element instead of a literal on the right: `"value_of": "person.name"` (the legal representative is
  the applicant);
- `{"all": [rule, …]}`, `{"any": [rule, …]}`, `{"not": rule}`.

`validate_conditions` checks a matter's conditions against the dictionary (unknown elements, an operator that
does not fit the element's type, a literal of the wrong type, a malformed structure) and returns every problem
by path, so an admin write can answer one 422 naming them all.

`evaluate` gives each condition `met`, `not_met` or `unknown` with the values and provenance it used, in three-
valued logic: a datum the prefill did not get (`failed`, `timeout`, `skipped`, not consented, not fetched) makes
a comparison `unknown`, never a silent pass or fail. `not_found` — the registry answered and holds no such
record — is `unknown` for a comparison too, but decides `present` (`not_met`): that is what `present` asks.
`all` is `not_met` if one part is, else `unknown` if one part is, else `met`; `any` the dual; `not` swaps
`met` and `not_met`. The overall result: any `not_met` → `not_eligible`; else any `unknown` → `unknown`;
else `eligible`.

The person's identity number is never a value the answer shows: `person.id_number` may only be used to derive
an age.

This module is plain Python: no Flask, no app (the import-linter contracts in setup.cfg).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from shared_data.elements import ELEMENTS

Outcome = Literal["met", "not_met", "unknown"]
Result = Literal["eligible", "not_eligible", "unknown"]

COMBINATORS = ("all", "any", "not")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "starts_with", "present")
DERIVATIONS = ("age", "years_since")
ORDERED = frozenset({"<", "<=", ">", ">="})
# Which operators fit which value type (the element's, or the derived value's: an integer).
OPERATORS_BY_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"==", "!=", "in", "starts_with", "present"}),
    "integer": frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "present"}),
    "number": frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "present"}),
    "date": frozenset({"==", "!=", "<", "<=", ">", ">=", "present"}),
    "boolean": frozenset({"==", "!=", "present"}),
    "list": frozenset({"present"}),
    "object": frozenset({"present"}),
    "image": frozenset({"present"}),
}
OPERATOR_LABELS = {"==": "等于", "!=": "不等于", "<": "小于", "<=": "不大于", ">": "大于", ">=": "不小于",
                   "in": "属于", "starts_with": "以…开头", "present": "有记录"}
DERIVATION_LABELS = {"age": "周岁", "years_since": "距今年数"}
# The identity number may feed an age (its birth date digits) and nothing else: never shown as a value.
ID_NUMBER = "person.id_number"
MAX_DEPTH = 8
MAX_PARTS = 20
MAX_IN_ITEMS = 50
MAX_TEXT = 500
# Statuses a fact may have: the prefill's five, and two for data that never reached the evaluator.
FACT_STATUSES = ("ok", "not_found", "failed", "timeout", "skipped", "not_consented", "not_fetched")
STATUS_LABELS = {"not_found": "未查到记录", "failed": "查询失败", "timeout": "查询超时",
                 "skipped": "暂无可用的数据提供方", "not_consented": "未授权查询", "not_fetched": "尚未查询"}


# --------------------------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """One condition of a matter: its guide text, and optionally the rule that checks it."""

    text: str
    rule: Mapping[str, Any] | None = None
    # May a reviewer decide it by hand when the data cannot (unknown)? Otherwise unknown blocks a submission.
    reviewer_may_decide: bool = False

    @property
    def checked(self) -> bool:
        return self.rule is not None

    def to_dict(self) -> dict[str, Any]:
        """The stored form: a plain string for a text-only condition, else {text, rule, reviewer_may_decide}."""
        if self.rule is None and not self.reviewer_may_decide:
            return self.text  # type: ignore[return-value]
        return {"text": self.text, "rule": self.rule, "reviewer_may_decide": self.reviewer_may_decide}


def parse(items: Iterable[Any]) -> list[Condition]:
    """Stored (or validated) conditions → `Condition`s; plain strings are text-only conditions."""
    conditions = []
    for item in items or ():
        if isinstance(item, str):
            conditions.append(Condition(item))
        else:
            conditions.append(Condition(item["text"], item.get("rule"), bool(item.get("reviewer_may_decide"))))
    return conditions


def texts(items: Iterable[Any]) -> list[str]:
    """The guide's texts of stored conditions, in order."""
    return [condition.text for condition in parse(items)]


def elements_of(rule: Mapping[str, Any] | None) -> list[str]:
    """Every element a (valid) rule reads, in first-use order."""
    seen: dict[str, None] = {}

    def walk(node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        for key in ("all", "any"):
            for part in node.get(key) or ():
                walk(part)
        if "not" in node:
            walk(node["not"])
        for key in ("element", "value_of"):
            if isinstance(node.get(key), str):
                seen.setdefault(node[key], None)

    walk(rule)
    return list(seen)


def elements_needed(items: Iterable[Any]) -> list[str]:
    """Every element any checked condition reads, in first-use order."""
    seen: dict[str, None] = {}
    for condition in parse(items):
        for name in elements_of(condition.rule):
            seen.setdefault(name, None)
    return list(seen)


# ---------------------------------------------------------------------------------------------- validation


def validate_conditions(items: Any) -> dict[str, list[str]]:
    """Problems of a matter's `conditions` (strings or {text, rule?, reviewer_may_decide?}), by path such as
    `2.rule.all.0.op`; empty when valid."""
    problems: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        problems.setdefault(path, []).append(message)

    if not isinstance(items, list):
        add("", "受理条件须为列表")
        return problems
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item.strip() or len(item) > MAX_TEXT:
                add(str(index), f"条件文字须为 1–{MAX_TEXT} 个字")
            continue
        if not isinstance(item, Mapping):
            add(str(index), "条件须为文字,或含 text 与 rule 的对象")
            continue
        unknown = sorted(set(item) - {"text", "rule", "reviewer_may_decide"})
        for key in unknown:
            add(f"{index}.{key}", "未知的字段")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            add(f"{index}.text", f"条件须有 1–{MAX_TEXT} 个字的文字说明(办事指南中显示)")
        if "reviewer_may_decide" in item and not isinstance(item["reviewer_may_decide"], bool):
            add(f"{index}.reviewer_may_decide", "须为 true 或 false")
        if "rule" in item and item["rule"] is None:
            add(f"{index}.rule", "规则须为对象(纯文字条件不带 rule)")
        elif item.get("rule") is not None:
            for path, messages in validate_rule(item["rule"]).items():
                for message in messages:
                    add(f"{index}.rule" + (f".{path}" if path else ""), message)
        elif item.get("reviewer_may_decide"):
            add(f"{index}.reviewer_may_decide", "只有带核验规则的条件才需要人工判定")
    return problems


def validate_rule(rule: Any) -> dict[str, list[str]]:
    """Problems of one rule, by path inside it; empty when valid."""
    problems: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        problems.setdefault(path, []).append(message)

    def join(path: str, key: str | int) -> str:
        return f"{path}.{key}" if path else str(key)

    def walk(node: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            add(path, f"规则嵌套不能超过 {MAX_DEPTH} 层")
            return
        if not isinstance(node, Mapping):
            add(path, "规则须为对象")
            return
        combinators = [key for key in COMBINATORS if key in node]
        if combinators:
            if len(node) != 1:
                add(path, "all / any / not 须单独成一个对象")
                return
            key = combinators[0]
            parts = node[key]
            if key == "not":
                walk(parts, join(path, "not"), depth + 1)
                return
            if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_PARTS:
                add(join(path, key), f"须为 1–{MAX_PARTS} 条规则的列表")
                return
            for index, part in enumerate(parts):
                walk(part, join(join(path, key), index), depth + 1)
            return
        _validate_comparison(node, path, add, join)

    walk(rule, "", 0)
    return problems


def _validate_comparison(node: Mapping[str, Any], path: str, add, join) -> None:
    allowed = {"element", "op", "value", "value_of", "derive"}
    for key in sorted(set(node) - allowed):
        add(join(path, key), "未知的字段(比较规则的字段:element、op、value、value_of、derive)")
    name, op = node.get("element"), node.get("op")
    if not isinstance(name, str) or name not in ELEMENTS:
        add(join(path, "element"), f"未知的数据元素:{name}" if isinstance(name, str) else "须为数据元素名")
        return
    if op not in OPERATORS:
        add(join(path, "op"), f"运算符须为 {'、'.join(OPERATORS)} 之一")
        return
    element_type = ELEMENTS[name].type
    derive = node.get("derive")
    if derive is not None:
        if derive not in DERIVATIONS:
            add(join(path, "derive"), f"推算方式须为 {'、'.join(DERIVATIONS)} 之一")
            return
        if element_type != "date" and not (derive == "age" and name == ID_NUMBER):
            add(join(path, "derive"), f"“{name}”({element_type})不是日期,不能推算{DERIVATION_LABELS[derive]}")
            return
        value_type = "integer"
    elif name == ID_NUMBER:
        add(join(path, "element"), "公民身份号码只能用于推算年龄(derive: age),不能直接比较")
        return
    else:
        value_type = element_type
    if op not in OPERATORS_BY_TYPE[value_type]:
        add(join(path, "op"), f"运算符 {op} 不适用于 {value_type} 类型的“{name}”"
                              f"(可用:{'、'.join(sorted(OPERATORS_BY_TYPE[value_type]))})")
        return
    has_value, has_ref = "value" in node, "value_of" in node
    if op == "present":
        if has_value or has_ref:
            add(path, "present 不带 value 或 value_of")
        return
    if has_value == has_ref:
        add(path, "须给出 value(字面值)或 value_of(另一数据元素)之一")
        return
    if has_ref:
        other = node["value_of"]
        if not isinstance(other, str) or other not in ELEMENTS:
            add(join(path, "value_of"), f"未知的数据元素:{other}" if isinstance(other, str) else "须为数据元素名")
        elif other == ID_NUMBER:
            add(join(path, "value_of"), "公民身份号码不能直接比较")
        elif op in ("in", "starts_with"):
            add(join(path, "op"), f"运算符 {op} 只能与字面值比较")
        elif not _same_kind(ELEMENTS[other].type, value_type):
            add(join(path, "value_of"), f"“{other}”({ELEMENTS[other].type})与 {value_type} 类型不能比较")
        return
    value = node["value"]
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_ITEMS:
            add(join(path, "value"), f"in 的取值须为 1–{MAX_IN_ITEMS} 项的列表")
            return
        for index, item in enumerate(value):
            problem = _literal_problem(item, value_type)
            if problem:
                add(join(join(path, "value"), index), problem)
        return
    problem = _literal_problem(value, value_type)
    if problem:
        add(join(path, "value"), problem)


def _same_kind(a: str, b: str) -> bool:
    numeric = {"integer", "number"}
    return a == b or (a in numeric and b in numeric)


def _literal_problem(value: Any, value_type: str) -> str | None:
    if value_type == "string":
        ok = isinstance(value, str) and 0 < len(value) <= MAX_TEXT
        return None if ok else f"须为 1–{MAX_TEXT} 个字的文字"
    if value_type == "integer":
        return None if isinstance(value, int) and not isinstance(value, bool) else "须为整数"
    if value_type == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "须为数字"
    if value_type == "boolean":
        return None if isinstance(value, bool) else "须为 true 或 false"
    if value_type == "date":
        if isinstance(value, str):
            try:
                date.fromisoformat(value)
                if len(value) == 10:
                    return None
            except ValueError:
                pass
        return "须为 YYYY-MM-DD 格式的日期"
    return f"{value_type} 类型不能与字面值比较"


# ---------------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Fact:
    """One element's value as a prefill left it: its status and provenance (the prefill's `source` object)."""

    value: Any
    status: str
    source: Mapping[str, Any] | None = None


@dataclass
class ConditionResult:
    """One condition evaluated: its outcome, a reason in Chinese, and the facts it used."""

    index: int
    text: str
    checked: bool
    result: Outcome | Literal["not_checked"]
    reviewer_may_decide: bool
    reasons: list[str] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "text": self.text, "checked": self.checked, "result": self.result,
                "reviewer_may_decide": self.reviewer_may_decide, "reason": ";".join(self.reasons) or None,
                "facts": self.facts}


@dataclass
class Eligibility:
    """Every condition's result and the overall one."""

    result: Result
    conditions: list[ConditionResult]

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "conditions": [c.to_dict() for c in self.conditions]}


def overall(outcomes: Iterable[str]) -> Result:
    """any not_met → not_eligible; else any unknown → unknown; else eligible (text-only conditions aside)."""
    outcomes = [o for o in outcomes if o in ("met", "not_met", "unknown")]
    if "not_met" in outcomes:
        return "not_eligible"
    if "unknown" in outcomes:
        return "unknown"
    return "eligible"


def evaluate(items: Iterable[Any], facts: Mapping[str, Fact], *, today: date) -> Eligibility:
    """Evaluate a matter's conditions over `facts` (element → Fact; a missing element is `not_fetched`).

    `today` is the date ages and years are counted to (the caller's calendar: Beijing dates)."""
    results = []
    for index, condition in enumerate(parse(items)):
        if condition.rule is None:
            results.append(ConditionResult(index, condition.text, False, "not_checked", False))
            continue
        evaluation = _Evaluation(facts, today)
        outcome = evaluation.node(condition.rule)
        results.append(ConditionResult(index, condition.text, True, outcome, condition.reviewer_may_decide,
                                       evaluation.reasons, list(evaluation.used.values())))
    return Eligibility(overall(r.result for r in results), results)


class _Evaluation:
    def __init__(self, facts: Mapping[str, Fact], today: date):
        self.facts, self.today = facts, today
        self.reasons: list[str] = []
        self.used: dict[tuple[str, str | None], dict[str, Any]] = {}

    def node(self, node: Mapping[str, Any]) -> Outcome:
        if "all" in node:
            outcomes = [self.node(part) for part in node["all"]]
            return "not_met" if "not_met" in outcomes else "unknown" if "unknown" in outcomes else "met"
        if "any" in node:
            outcomes = [self.node(part) for part in node["any"]]
            return "met" if "met" in outcomes else "unknown" if "unknown" in outcomes else "not_met"
        if "not" in node:
            inner = self.node(node["not"])
            return {"met": "not_met", "not_met": "met"}.get(inner, "unknown")  # type: ignore[return-value]
        return self.comparison(node)

    def fact(self, name: str, derive: str | None) -> tuple[Fact, Any, str | None]:
        """The fact, the value compared (derived where asked) and why it cannot be used (None if it can)."""
        fact = self.facts.get(name) or Fact(None, "not_fetched")
        value, problem = fact.value, None
        if fact.status != "ok":
            problem = STATUS_LABELS.get(fact.status, fact.status)
        elif value is None:
            problem = "无数据"
        elif derive is not None:
            value = _derived(name, derive, value, self.today)
            if value is None:
                problem = "数据格式有误,无法推算"
        shown = value
        if name == ID_NUMBER and (derive is None or problem):
            shown = None  # the number itself is never part of an answer
        entry = {"element": name, "label": ELEMENTS[name].label if name in ELEMENTS else name, "derive": derive,
                 "value": _jsonable(shown) if problem is None else None, "status": fact.status,
                 "source": dict(fact.source) if fact.source else None}
        self.used.setdefault((name, derive), entry)
        return fact, value, problem

    def comparison(self, node: Mapping[str, Any]) -> Outcome:
        name, op, derive = node["element"], node["op"], node.get("derive")
        label = ELEMENTS[name].label if name in ELEMENTS else name
        if derive:
            label = f"{label}({DERIVATION_LABELS.get(derive, derive)})"
        fact, value, problem = self.fact(name, derive)
        if op == "present":
            if fact.status == "ok":
                present = value is not None and value != [] and value != {} and value != ""
                self.reasons.append(f"{label}:{'有记录' if present else '无记录'}")
                return "met" if present else "not_met"
            if fact.status == "not_found":
                self.reasons.append(f"{label}:未查到记录")
                return "not_met"
            self.reasons.append(f"{label}:{problem}")
            return "unknown"
        if problem is not None:
            self.reasons.append(f"{label}:{problem}")
            return "unknown"
        if "value_of" in node:
            other, other_value, other_problem = self.fact(node["value_of"], None)
            if other_problem is not None:
                self.reasons.append(f"{ELEMENTS[node['value_of']].label}:{other_problem}")
                return "unknown"
            expected, expected_label = other_value, ELEMENTS[node["value_of"]].label
        else:
            expected = node["value"]
            expected_label = "、".join(map(str, expected)) if isinstance(expected, list) else str(expected)
        try:
            met = _compare(op, value, expected, ELEMENTS[name].type if not derive else "integer")
        except (TypeError, ValueError):
            self.reasons.append(f"{label}:数据类型不符,无法比较")
            return "unknown"
        shown = _jsonable(value) if name != ID_NUMBER else "—"
        verdict = "符合" if met else "不符合"
        self.reasons.append(f"{label}为“{shown}”,{verdict}“{OPERATOR_LABELS[op]} {expected_label}”")
        return "met" if met else "not_met"


def _derived(name: str, derive: str, value: Any, today: date) -> int | None:
    born = _birth_date_of_id(value) if name == ID_NUMBER else _as_date(value)
    if born is None:
        return None
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years


def _birth_date_of_id(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 18 or not value[:17].isdigit():
        return None
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _compare(op: str, value: Any, expected: Any, value_type: str) -> bool:
    if value_type == "date":
        value = _as_date(value)
        expected = _as_date(expected)
        if value is None or expected is None:
            raise ValueError("not a date")
    elif value_type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("not a number")
        items = expected if isinstance(expected, list) else [expected]
        if any(isinstance(item, bool) or not isinstance(item, int | float) for item in items):
            raise TypeError("not a number")
    elif value_type == "string":
        if not isinstance(value, str):
            raise TypeError("not text")
    elif value_type == "boolean" and not isinstance(value, bool):
        raise TypeError("not a boolean")
    if op == "==":
        return value == expected
    if op == "!=":
        return value != expected
    if op == "in":
        return value in expected
    if op == "starts_with":
        if not isinstance(expected, str):
            raise TypeError("not text")
        return value.startswith(expected)
    if op in ORDERED:
        return {"<": value < expected, "<=": value <= expected, ">": value > expected,
                ">=": value >= expected}[op]
    raise ValueError(f"unknown operator {op}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def facts_from_fields(fields: Mapping[str, Mapping[str, Any]], wanted: Sequence[str]) -> dict[str, Fact]:
    """Facts from a prefill's per-field objects ({value, status, source}); wanted elements it lacks are
    `not_consented` (the prefill fetches exactly the consented elements)."""
    facts = {}
    for name in wanted:
        entry = fields.get(name)
        facts[name] = (Fact(entry.get("value"), entry.get("status", "failed"), entry.get("source"))
                       if entry is not None else Fact(None, "not_consented"))
    return facts
