"""Schemas of the catalogue: query arguments, the admin's matter body, and every response shape.

Input schemas keep marshmallow's default `unknown=RAISE`: an unknown field is a 422, never ignored.
"""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import ValidationError, fields, post_load, pre_dump, validates_schema
from marshmallow.validate import Length, OneOf, Range

from app.bodies import LARGEST_NUMBER
from app.catalogue.models import (
    CATEGORIES,
    DEFAULT_TRUST_LEVEL,
    DELIVERY_METHODS,
    EVIDENCE_TYPES,
    MATTER_TYPES,
    RESULT_KINDS,
    TRUST_LEVELS,
)
from app.web.jsontypes import JsonBoolean, JsonNumber, WholeNumber
from app.web.schemas import (
    KEYWORD_PATTERN,
    PHONE_PATTERN,
    PRINTABLE_PATTERN,
    Code,
    FullMatch,
    PageQuerySchema,
    Text,
    printable,
)
from shared_data import conditions as rules
from shared_data import elements

RULE_DOC = (
    "a declarative rule over data elements (no expressions): a comparison `{element, op, value}` or "
    "`{element, op, value_of}` with `op` one of ==, !=, <, <=, >, >= (numbers, integers, dates), `in` (value a "
    "list), `starts_with` (text), `present` (no value); `derive: age` (full years from a date element, or from the "
    "birth date in person.id_number) or `derive: years_since` (full years since a date) compares an integer; "
    "combined with `{all: [rules]}`, `{any: [rules]}`, `{not: rule}` (at most 8 levels). Elements are the "
    "dictionary's (GET /api/v1/data-elements); the operator must fit the element's type and the literal be of "
    "that type (422 naming each problem by path)"
)
PRINTABLE_RE = re.compile(PRINTABLE_PATTERN)
_LITERAL_TEXT = {"type": "string", "minLength": 1, "maxLength": rules.MAX_TEXT}
_LITERAL_NUMBER = {"type": "number", "minimum": -LARGEST_NUMBER, "maximum": LARGEST_NUMBER}
# A rule as the document states it: recursive through `all`, `any` and `not` (the component refers to
# itself); which operator fits which element, and the literal's type, are the server's to check.
RULE_COMPONENT = "ConditionRule"
RULE_REF = {"$ref": f"#/components/schemas/{RULE_COMPONENT}"}
RULE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "maxProperties": 5,
    "description": RULE_DOC,
    "properties": {
        "all": {"type": "array", "minItems": 1, "maxItems": rules.MAX_PARTS, "items": RULE_REF},
        "any": {"type": "array", "minItems": 1, "maxItems": rules.MAX_PARTS, "items": RULE_REF},
        "not": RULE_REF,
        "element": {"type": "string", "enum": sorted(elements.ELEMENTS)},
        "op": {"type": "string", "enum": list(rules.OPERATORS)},
        "derive": {"type": "string", "enum": list(rules.DERIVATIONS)},
        "value": {"anyOf": [_LITERAL_TEXT, _LITERAL_NUMBER, {"type": "boolean"},
                            {"type": "array", "minItems": 1, "maxItems": rules.MAX_IN_ITEMS,
                             "items": {"anyOf": [_LITERAL_TEXT, _LITERAL_NUMBER]}}]},
        "value_of": {"type": "string", "enum": sorted(elements.ELEMENTS)},
    },
}
# One condition as the document states it: the server checks the rule against the dictionary (a relation
# between the rule's parts and data the server holds, which JSON Schema cannot say).
CONDITION_ITEM = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": rules.MAX_TEXT, "pattern": PRINTABLE_PATTERN,
         "description": "a condition in text only: shown in the guide, not checked"},
        {"type": "object", "additionalProperties": False, "required": ["text"],
         "properties": {
             "text": {"type": "string", "minLength": 1, "maxLength": rules.MAX_TEXT, "pattern": PRINTABLE_PATTERN,
                      "description": "the condition in plain Chinese (the guide shows it)"},
             "rule": RULE_REF,
             "reviewer_may_decide": {"type": "boolean", "description": "when the data cannot decide it "
                                     "(unknown), a reviewer may, and the application is marked for them; "
                                     "otherwise unknown blocks the submission (default false)"}}},
    ],
}


def _check_conditions(items: list) -> None:
    """Conditions checked against the dictionary; errors by condition index, each naming the path inside."""
    problems = rules.validate_conditions(items)
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else item.get("text") if isinstance(item, dict) else None
        if isinstance(text, str) and not PRINTABLE_RE.fullmatch(text):
            problems.setdefault(str(index) if isinstance(item, str) else f"{index}.text", []).append("不能包含控制字符")
    if problems:
        by_index: dict = {}
        for path, messages in problems.items():
            head, _, rest = path.partition(".")
            key = int(head) if head.isdigit() else head
            by_index.setdefault(key, []).extend(f"{rest}:{m}" if rest else m for m in messages)
        raise ValidationError(by_index)


def _known_element(name: str) -> None:
    if not elements.exists(name):
        raise ValidationError(f"未知的数据元素:{name}")


# ---------------------------------------------------------------------------------------------- queries


class MatterQuerySchema(PageQuerySchema):
    q = Text(max_length=50, metadata={"description": "keyword: finds names, codes, keywords and departments"})
    department = fields.String(
        validate=[Length(max=32), printable], metadata={"description": "department code"}
    )
    category = fields.String(validate=OneOf(list(CATEGORIES)))
    zero_material = fields.Boolean(metadata={"description": "零材料: no upload or visit needed"})
    face = fields.Boolean(metadata={"description": "刷脸办: identity can be proven by face verification"})
    online = fields.Boolean(metadata={"description": "掌上办: can be completed on the phone"})

    @post_load
    def normalise(self, data: dict, **_kwargs) -> dict:
        # One cache entry for "  公积金 " and "公积金"; an empty keyword means no keyword.
        q = (data.get("q") or "").strip()
        if q:
            data["q"] = q
        else:
            data.pop("q", None)
        return data


# --------------------------------------------------------------------------------------- matter (input)


class EvidenceOptionSchema(ma.Schema):
    """One way to satisfy a material."""

    type = fields.String(required=True, validate=OneOf(EVIDENCE_TYPES))
    elements = fields.List(
        fields.String(validate=_known_element, metadata={"enum": sorted(elements.ELEMENTS)}),
        validate=Length(max=30),
        metadata={"description": "standard data element names (GET /api/v1/data-elements)", "uniqueItems": True},
    )
    licence_type = Text(max_length=100, metadata={"description": "e-licence type; only for type e_licence"})
    trust_level = fields.String(
        validate=OneOf(TRUST_LEVELS),
        metadata={
            "description": "defaults by type: shared_data/e_licence/face A, in_person B, upload C, promise D"
        },
    )
    note = Text(max_length=500)
    critical = JsonBoolean(
        metadata={
            "description": "only for shared_data: the application cannot go on without these elements, so a "
            "prefill whose provider fails (or holds no record) is blocked with `prefill_blocked` instead of "
            "returning empty fields"
        }
    )

    @validates_schema
    def check_option(self, data: dict, **_kwargs) -> None:
        kind = data.get("type")
        names = data.get("elements") or []
        if data.get("critical") and kind != "shared_data":
            raise ValidationError("只有共享数据方式可以标记为关键", "critical")
        if kind == "shared_data" and not names:
            raise ValidationError("共享数据方式必须列出所需的数据元素", "elements")
        if kind == "in_person" and names:
            raise ValidationError("现场核验方式不取数据元素", "elements")
        if len(set(names)) != len(names):
            raise ValidationError("数据元素重复", "elements")
        if kind == "e_licence" and not data.get("licence_type"):
            raise ValidationError("电子证照方式必须注明证照类型", "licence_type")
        if kind != "e_licence" and data.get("licence_type"):
            raise ValidationError("只有电子证照方式可以注明证照类型", "licence_type")

    @post_load
    def fill_defaults(self, data: dict, **_kwargs) -> dict:
        data.setdefault("trust_level", DEFAULT_TRUST_LEVEL[data["type"]])
        if "elements" in data and not data["elements"]:
            del data["elements"]
        if not data.get("critical", True):
            del data["critical"]  # stored only when set
        return data


class MaterialInSchema(ma.Schema):
    code = Code(required=True)
    name = Text(required=True, min_length=1, max_length=200)
    required = JsonBoolean(load_default=True)
    original_count = WholeNumber(load_default=0, validate=Range(min=0, max=99))
    copy_count = WholeNumber(load_default=0, validate=Range(min=0, max=99))
    description = Text(max_length=2000, load_default="")
    evidence = fields.List(
        fields.Nested(EvidenceOptionSchema),
        required=True,
        validate=Length(min=1, max=10),
        metadata={"description": "the options that satisfy this material, in order of preference"},
    )
    deferrable = JsonBoolean(
        load_default=False, metadata={"description": "容缺受理: may be supplied later"}
    )


class ProcessStepSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=50)
    description = Text(max_length=500, load_default="")


class FeeItemSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=100)
    amount = JsonNumber(
        required=True, validate=Range(min=0, max=1_000_000), metadata={"description": "yuan"}
    )
    unit = Text(max_length=20, load_default="件")
    basis = Text(max_length=500, load_default="")


class FeesSchema(ma.Schema):
    free = JsonBoolean(required=True)
    items = fields.List(fields.Nested(FeeItemSchema), load_default=list, validate=Length(max=20))
    note = Text(max_length=500)

    @validates_schema
    def check_items(self, data: dict, **_kwargs) -> None:
        if data.get("free") and data.get("items"):
            raise ValidationError("免费事项不能列出收费项目", "items")
        if data.get("free") is False and not data.get("items"):
            raise ValidationError("收费事项必须列出收费项目", "items")


class ResultSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=200)
    kind = fields.String(required=True, validate=OneOf(RESULT_KINDS))


class MatterWriteSchema(ma.Schema):
    """The body of POST /matters: a whole matter with its materials."""

    code = Code(required=True)
    name = Text(required=True, min_length=1, max_length=200)
    matter_type = fields.String(required=True, validate=OneOf(MATTER_TYPES))
    category = fields.String(required=True, validate=OneOf(list(CATEGORIES)))
    department = fields.String(
        required=True,
        validate=[Length(min=1, max=32), printable],
        metadata={"description": "implementing department code"},
    )
    legal_basis = Text(required=True, min_length=1, max_length=2000)
    conditions = fields.List(
        fields.Raw(metadata=CONDITION_ITEM), load_default=list, validate=Length(max=30),
        metadata={"description": "受理条件, in the guide's order: text only, or `{text, rule, reviewer_may_decide}` "
                  "where the shared data can decide it (智能预审: checked at prefill and at submission)"},
    )
    proactive = JsonBoolean(
        load_default=False,
        metadata={"description": "免申即享: citizens who opt in (POST /api/v1/me/proactive/opt-ins) are told when "
                  "they meet every checked condition; needs at least one condition with a rule"},
    )
    process = fields.List(fields.Nested(ProcessStepSchema), load_default=list, validate=Length(max=20))
    legal_time_limit_days = WholeNumber(
        load_default=None,
        allow_none=True,
        validate=Range(min=0, max=3650),
        metadata={"description": "法定时限, working days; null when none"},
    )
    promised_time_limit_days = WholeNumber(
        required=True,
        validate=Range(min=0, max=3650),
        metadata={"description": "承诺时限, working days; 0 = 即办"},
    )
    fees = fields.Nested(FeesSchema, required=True)
    result = fields.Nested(ResultSchema, required=True)
    delivery = fields.List(
        fields.String(validate=OneOf(DELIVERY_METHODS)),
        required=True,
        validate=Length(min=1, max=len(DELIVERY_METHODS)),
        metadata={"uniqueItems": True},
    )
    place = Text(max_length=500, load_default="")
    hours = Text(max_length=200, load_default="")
    consultation_phone = fields.String(
        required=True, validate=FullMatch(PHONE_PATTERN, error="电话号码格式有误")
    )
    complaint_phone = fields.String(
        load_default="12345", validate=FullMatch(PHONE_PATTERN, error="电话号码格式有误")
    )
    non_face_path = Text(
        required=True,
        min_length=1,
        max_length=1000,
        metadata={"description": "how to get the matter done without face recognition"},
    )
    keywords = fields.List(
        fields.String(
            validate=[Length(min=1, max=20), FullMatch(KEYWORD_PATTERN, error="关键词不能含空白或控制字符")]
        ),
        load_default=list,
        validate=Length(max=20),
    )
    materials = fields.List(fields.Nested(MaterialInSchema), load_default=list, validate=Length(max=50))

    @post_load
    def stored_conditions(self, data: dict, **_kwargs) -> dict:
        # The stored form: plain strings stay strings; rules keep only what was given.
        data["conditions"] = [c.to_dict() for c in rules.parse(data.get("conditions") or [])]
        return data

    @validates_schema
    def check_matter(self, data: dict, **_kwargs) -> None:
        errors: dict = {}
        if "conditions" in data:
            try:
                _check_conditions(data["conditions"])
            except ValidationError as refused:
                errors["conditions"] = refused.messages
        legal, promised = data.get("legal_time_limit_days"), data.get("promised_time_limit_days")
        if legal is not None and promised is not None and promised > legal:
            errors["promised_time_limit_days"] = ["承诺时限不能长于法定时限"]
        delivery = data.get("delivery") or []
        if len(set(delivery)) != len(delivery):
            errors["delivery"] = ["送达方式重复"]
        if data.get("proactive") and "conditions" not in errors and not any(
                c.checked for c in rules.parse(data.get("conditions") or [])):
            errors["proactive"] = ["免申即享事项须至少有一条带核验规则的受理条件"]
        codes = [m["code"] for m in data.get("materials") or []]
        if len(set(codes)) != len(codes):
            errors["materials"] = ["材料编码重复"]
        if errors:
            raise ValidationError(errors)


class MatterReplaceSchema(MatterWriteSchema):
    """The body of PUT /matters/{code}: the same as for creation; `code`, if given, must be the path's."""

    code = Code()


# -------------------------------------------------------------------------------------------- responses


class ElementRefSchema(ma.Schema):
    """A data element as a guide shows it."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(required=True)
    personal = fields.Boolean(required=True)

    @pre_dump
    def resolve(self, name, **_kwargs):
        if isinstance(name, str):
            # A name dropped from the dictionary since the matter was written still shows, labelled by itself.
            found = elements.ELEMENTS.get(name)
            return found or {"name": name, "label": name, "type": "string", "personal": True}
        return name


class DepartmentRefSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class MatterSummarySchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    department = fields.Nested(DepartmentRefSchema, required=True)
    category = fields.String(required=True, validate=OneOf(list(CATEGORIES)))
    matter_type = fields.String(required=True)
    online = fields.Boolean(required=True, metadata={"description": "掌上办"})
    zero_material = fields.Boolean(required=True, metadata={"description": "零材料"})
    face = fields.Boolean(required=True, metadata={"description": "刷脸办"})
    promised_time_limit_days = fields.Integer(required=True)


class MatterPageSchema(ma.Schema):
    items = fields.List(fields.Nested(MatterSummarySchema), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class EvidenceOptionOutSchema(ma.Schema):
    type = fields.String(required=True, validate=OneOf(EVIDENCE_TYPES))
    elements = fields.List(fields.Nested(ElementRefSchema), required=True)
    licence_type = fields.String()
    trust_level = fields.String(required=True, validate=OneOf(TRUST_LEVELS))
    note = fields.String()
    critical = fields.Boolean(metadata={"description": "present (true) when the prefill blocks without it"})

    @pre_dump
    def with_elements(self, option: dict, **_kwargs) -> dict:
        return {**option, "elements": option.get("elements", [])}


class MaterialOutSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    required = fields.Boolean(required=True)
    original_count = fields.Integer(required=True)
    copy_count = fields.Integer(required=True)
    description = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceOptionOutSchema), required=True)
    deferrable = fields.Boolean(required=True)


class FeeItemOutSchema(ma.Schema):
    name = fields.String(required=True)
    amount = fields.Float(required=True)
    unit = fields.String(required=True)
    basis = fields.String(required=True)


class FeesOutSchema(ma.Schema):
    free = fields.Boolean(required=True)
    items = fields.List(fields.Nested(FeeItemOutSchema), required=True)
    note = fields.String()


class ResultOutSchema(ma.Schema):
    name = fields.String(required=True)
    kind = fields.String(required=True)


class ProcessStepOutSchema(ma.Schema):
    name = fields.String(required=True)
    description = fields.String(required=True)


class ConditionCheckSchema(ma.Schema):
    index = fields.Integer(required=True, metadata={"description": "its place in `conditions`"})
    text = fields.String(required=True)
    rule = fields.Dict(required=True, metadata=RULE_REF)
    elements = fields.List(fields.String(), required=True, metadata={"description": "the elements it reads"})
    reviewer_may_decide = fields.Boolean(required=True)


class MatterGuideSchema(MatterSummarySchema):
    """The full guide of a matter (一次告知): every standard element and every material."""

    category_label = fields.Method("_category_label", required=True, metadata={"type": "string"})
    legal_basis = fields.String(required=True)
    conditions = fields.List(fields.String(), required=True, attribute="condition_texts",
                             metadata={"description": "受理条件 as the citizen reads them"})
    condition_checks = fields.List(fields.Nested(ConditionCheckSchema), required=True, metadata={
        "description": "the conditions the shared data decides (智能预审), with their rules"})
    proactive = fields.Boolean(required=True, metadata={"description": "免申即享: opt in to be told when eligible"})
    process = fields.List(fields.Nested(ProcessStepOutSchema), required=True)
    legal_time_limit_days = fields.Integer(required=True, allow_none=True)
    fees = fields.Nested(FeesOutSchema, required=True)
    result = fields.Nested(ResultOutSchema, required=True)
    delivery = fields.List(fields.String(validate=OneOf(DELIVERY_METHODS)), required=True)
    place = fields.String(required=True)
    hours = fields.String(required=True)
    consultation_phone = fields.String(required=True)
    complaint_phone = fields.String(required=True)
    non_face_path = fields.String(required=True, metadata={"description": "the way without face recognition"})
    keywords = fields.List(fields.String(), required=True, attribute="keyword_list")
    materials = fields.List(fields.Nested(MaterialOutSchema), required=True)
    data_elements = fields.List(
        fields.Nested(ElementRefSchema),
        required=True,
        attribute="element_names",
        metadata={"description": "every data element the materials may use"},
    )
    version = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)

    def _category_label(self, matter) -> str:
        return CATEGORIES.get(matter.category, matter.category)


class CountsSchema(ma.Schema):
    total = fields.Integer(required=True)
    online = fields.Integer(required=True)
    zero_material = fields.Integer(required=True)
    face = fields.Integer(required=True)
    zero_material_and_face = fields.Integer(required=True)


class DepartmentCountsSchema(CountsSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class CategoryCountsSchema(CountsSchema):
    category = fields.String(required=True)
    label = fields.String(required=True)


class CatalogueStatsSchema(CountsSchema):
    departments = fields.List(fields.Nested(DepartmentCountsSchema), required=True)
    categories = fields.List(fields.Nested(CategoryCountsSchema), required=True)


class DataElementSchema(ma.Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(required=True, validate=OneOf(elements.TYPES))
    description = fields.String(required=True)
    personal = fields.Boolean(required=True)
    providers = fields.List(
        fields.String(), required=True, metadata={"description": "active connectors that provide the element"}
    )


class DataElementListSchema(ma.Schema):
    items = fields.List(fields.Nested(DataElementSchema), required=True)


class MatterRefSchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    department = fields.Nested(DepartmentRefSchema, required=True)


class BundleSummarySchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    life_event = fields.String(required=True)
    matters = fields.List(fields.Nested(MatterRefSchema), required=True)


class BundlePageSchema(ma.Schema):
    items = fields.List(fields.Nested(BundleSummarySchema), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class BundleSchema(BundleSummarySchema):
    """A bundle with the summary of each of its matters."""

    matters = fields.List(fields.Nested(MatterSummarySchema), required=True)
