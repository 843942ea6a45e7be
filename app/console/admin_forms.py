"""The admins' forms: a matter's edit form, a new staff account, the dashboard's date range.

A matter form becomes the body PUT /api/v1/matters/{code} (or POST /api/v1/matters) would be sent and is
loaded by that endpoint's own schema (`MatterReplaceSchema`, `MatterWriteSchema`), so every rule — lengths,
phones, evidence options, 承诺时限 not beyond 法定时限, duplicate codes — is the API's, and each error is shown
next to the input it is about with the API's message (marshmallow's English built-ins put in Chinese, as for
the bureaus' forms). What is left here is reading HTML inputs: lists typed one item a line (conditions,
`名称 | 说明` process steps, `名称 | 金额 | 单位 | 依据` fee items), keywords separated by spaces, checkboxes
for flags, numbers arriving as text, and a material and each of its evidence options as a row of inputs
(`materials-<i>-…`, `materials-<i>-evidence-<j>-…`; an all-empty row is no row, a ticked "删除" drops one).

There is no staff-accounts endpoint in the API: the account form is read into the arguments of the accounts
domain's `create_staff`, which checks them (and says which field is wrong). The dashboard's range is two
dates in Beijing time, the end date included, loaded by the stats endpoints' `StatsQuerySchema`.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from app.catalogue.schemas import MatterReplaceSchema, MatterWriteSchema
from app.console.forms import BEIJING, DECIMAL, FormInvalid, field_text, message, typed_number
from app.errors import AppError
from app.stats.schemas import StatsQuerySchema

# ------------------------------------------------------------------------------------------ the matter form

# Inputs copied as typed (stripped) into the body; an empty one is left out (the schema's default, or 必填).
TEXT_FIELDS = ("name", "matter_type", "category", "department", "legal_basis", "place", "hours",
               "consultation_phone", "complaint_phone", "non_face_path")
NUMBER_FIELDS = ("legal_time_limit_days", "promised_time_limit_days")
MATERIAL_TEXT = ("code", "name", "description")
MATERIAL_NUMBERS = ("original_count", "copy_count")
MATERIAL_FLAGS = ("required", "deferrable")
EVIDENCE_TEXT = ("type", "licence_type", "trust_level", "note")
# Where a nested field's error is shown: the input that holds it.
NESTED_INPUTS = {("fees", "free"): "fees_free", ("fees", "items"): "fee_items", ("fees", "note"): "fees_note",
                 ("result", "name"): "result_name", ("result", "kind"): "result_kind"}
PART_LABELS = {"name": "名称", "description": "说明", "amount": "金额", "unit": "单位", "basis": "依据"}
LINE_UNITS = {"conditions": "行", "process": "行", "fee_items": "行", "keywords": "个关键词"}
INDEX = re.compile(r"materials-(\d{1,3})-(?:evidence-(\d{1,3})-)?([a-z_]+)")
SEPARATORS = re.compile(r"[\s,,、;;]+")



def _lines(text: str) -> list[tuple[int, str]]:
    """The non-empty lines of a textarea with their line numbers (from 1)."""
    return [(number, line.strip()) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _parts(line: str, names: tuple[str, ...]) -> dict:
    """`a | b | c` as {names[0]: a, …}; empty parts left out; the last name takes the rest of the line."""
    values = [part.strip() for part in line.split("|", len(names) - 1)]
    return {name: value for name, value in zip(names, values, strict=False) if value}


def _rows(form: MultiDict) -> dict[int, dict[int, None]]:
    """The materials' row indexes in the form, each with its evidence rows' indexes, in order."""
    found: dict[int, dict[int, None]] = {}
    for key in form:
        match = INDEX.fullmatch(key)
        if match:
            options = found.setdefault(int(match.group(1)), {})
            if match.group(2) is not None:
                options.setdefault(int(match.group(2)), None)
    return {index: dict.fromkeys(sorted(found[index])) for index in sorted(found)}


def materials_of(form: MultiDict) -> list[dict]:
    """The material rows as typed (every row, empty ones too), for the form shown again."""
    rows = []
    for index, options in _rows(form).items():
        prefix = f"materials-{index}-"
        rows.append({
            **{name: field_text(form, prefix + name) for name in (*MATERIAL_TEXT, *MATERIAL_NUMBERS)},
            **{name: bool(form.get(prefix + name)) for name in (*MATERIAL_FLAGS, "remove")},
            "evidence": [{**{name: field_text(form, f"{prefix}evidence-{option}-{name}")
                             for name in (*EVIDENCE_TEXT, "elements")},
                          "critical": bool(form.get(f"{prefix}evidence-{option}-critical"))}
                         for option in options],
        })
    return rows


def _blank_material(row: dict) -> bool:
    return not any(row[name] for name in (*MATERIAL_TEXT, *MATERIAL_NUMBERS)) and \
        not any(not _blank_option(option) for option in row["evidence"])


def _blank_option(option: dict) -> bool:
    return not any(option[name] for name in (*EVIDENCE_TEXT, "elements")) and not option["critical"]


def _condition(line: str):
    """A condition typed one a line: plain text, or a JSON object {text, rule, reviewer_may_decide} (智能预审);
    JSON that does not parse stays text, and the API's validation says what is wrong with the rest."""
    if line.startswith("{"):
        try:
            return json.loads(line)
        except ValueError:
            return line
    return line


class MatterForm:
    """A posted matter form read into the API's body, remembering where each part of the body was typed."""

    def __init__(self, form: MultiDict):
        self.form = form
        self.errors: dict[str, str] = {}
        self.line_numbers: dict[str, list[int]] = {}
        # Body index of a material (and of an option within it) → its row in the form (as shown).
        self.material_rows: list[int] = []
        self.option_rows: list[list[int]] = []
        self.body = self._body()

    def _body(self) -> dict:
        form = self.form
        body: dict = {}
        for name in TEXT_FIELDS:
            if field_text(form, name):
                body[name] = field_text(form, name)
        for name in NUMBER_FIELDS:
            text = field_text(form, name)
            if text:
                body[name] = typed_number(text)
            elif name == "legal_time_limit_days":
                body[name] = None  # no 法定时限
        body["conditions"] = self._list("conditions", _condition)
        body["proactive"] = bool(form.get("proactive"))
        body["process"] = self._list("process", lambda line: _parts(line, ("name", "description")))
        body["keywords"] = [word for word in field_text(form, "keywords").split() if word]
        delivery = [value for value in form.getlist("delivery") if value]
        if delivery:
            body["delivery"] = delivery
        items = self._list("fee_items", lambda line: _parts(line, ("name", "amount", "unit", "basis")))
        for item in items:
            if "amount" in item:
                item["amount"] = typed_number(item["amount"], DECIMAL)
        body["fees"] = {"free": bool(form.get("fees_free")), "items": items,
                        **({"note": field_text(form, "fees_note")} if field_text(form, "fees_note") else {})}
        body["result"] = {key: field_text(form, name) for key, name in (("name", "result_name"),
                                                                        ("kind", "result_kind"))
                          if field_text(form, name)}
        body["materials"] = self._materials()
        return body

    def _list(self, name: str, read) -> list:
        lines = _lines(field_text(self.form, name))
        self.line_numbers[name] = [number for number, _ in lines]
        return [read(line) for _, line in lines]

    def _materials(self) -> list[dict]:
        materials = []
        for position, row in enumerate(materials_of(self.form)):
            if row["remove"] or _blank_material(row):
                continue
            material: dict = {name: row[name] for name in ("code", "name") if row[name]}
            material["description"] = row["description"]
            for name in MATERIAL_NUMBERS:
                if row[name]:
                    material[name] = typed_number(row[name])
            for name in MATERIAL_FLAGS:
                material[name] = row[name]
            options, rows = [], []
            for option_row, option in enumerate(row["evidence"]):
                if _blank_option(option):
                    continue
                loaded = {name: option[name] for name in EVIDENCE_TEXT if option[name]}
                names = [name for name in SEPARATORS.split(option["elements"]) if name]
                if names:
                    loaded["elements"] = names
                if option["critical"]:
                    loaded["critical"] = True
                options.append(loaded)
                rows.append(option_row)
            material["evidence"] = options
            materials.append(material)
            self.material_rows.append(position)
            self.option_rows.append(rows)
        return materials

    def load(self, schema: ma.Schema) -> dict:
        """The body as `schema` loads it; FormInvalid with every error next to its input."""
        try:
            return schema.load(self.body)
        except ma.ValidationError as error:
            messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
            self.place(messages)
            raise FormInvalid(self.errors) from None

    def place(self, messages: dict) -> dict[str, str]:
        """The API's error messages (a body's field → messages) as the form's input → one line of text."""
        for name, found in messages.items():
            if name in ("fees", "result") and isinstance(found, dict):
                for part, texts in found.items():
                    target = NESTED_INPUTS.get((name, part)) or ("fee_items" if name == "fees" else "result_name")
                    self._put(target, self._by_line(target, texts) if part == "items" else message(texts))
            elif name in ("conditions", "process", "keywords"):
                self._put(name, self._by_line(name, found))
            elif name == "materials":
                self._place_materials(found)
            elif name in (*TEXT_FIELDS, *NUMBER_FIELDS, "delivery", "code", "proactive"):
                self._put(name, message(found))
            else:
                self._put("form", message(found))
        return self.errors

    def _put(self, name: str, text: str) -> None:
        self.errors[name] = f"{self.errors[name]};{text}" if name in self.errors else text

    def _by_line(self, name: str, found) -> str:
        """Errors of a list typed one item a line: `第 3 行 金额:应为数字`."""
        if not isinstance(found, dict):
            return message(found)
        numbers = self.line_numbers.get(name, [])
        unit = LINE_UNITS.get(name, "行")
        texts = []
        for index, texts_of_item in sorted(found.items(), key=lambda item: str(item[0])):
            where = numbers[index] if isinstance(index, int) and index < len(numbers) else \
                (index + 1 if isinstance(index, int) else index)
            if isinstance(texts_of_item, dict):
                detail = ";".join(f"{PART_LABELS.get(part, part)}:{message(value)}"
                                  for part, value in texts_of_item.items())
            else:
                detail = message(texts_of_item)
            texts.append(f"第 {where} {unit} {detail}")
        return ";".join(texts)

    def _place_materials(self, found) -> None:
        if not isinstance(found, dict):
            self._put("materials", message(found))
            return
        for index, fields in found.items():
            if not isinstance(index, int) or index >= len(self.material_rows) or not isinstance(fields, dict):
                self._put("materials", message(fields))
                continue
            prefix = f"materials-{self.material_rows[index]}-"
            for name, texts in fields.items():
                if name == "evidence" and isinstance(texts, dict):
                    rows = self.option_rows[index]
                    for option, option_errors in texts.items():
                        if not isinstance(option, int) or option >= len(rows) or not isinstance(option_errors, dict):
                            self._put(prefix + "evidence", message(option_errors))
                            continue
                        for part, part_texts in option_errors.items():
                            part = "type" if part == "_schema" else part
                            self._put(f"{prefix}evidence-{rows[option]}-{part}", message(part_texts))
                else:
                    self._put(prefix + ("name" if name == "_schema" else name), message(texts))


def matter_changes(form: MultiDict) -> tuple[dict, MatterForm]:
    """The body of PUT /api/v1/matters/{code} the edit form stands for, as `MatterReplaceSchema` loads it."""
    read = MatterForm(form)
    return read.load(MatterReplaceSchema()), read


def new_matter(form: MultiDict) -> tuple[dict, MatterForm]:
    """The body of POST /api/v1/matters the new-matter form stands for, as `MatterWriteSchema` loads it."""
    read = MatterForm(form)
    if field_text(form, "code"):
        read.body["code"] = field_text(form, "code")
    return read.load(MatterWriteSchema()), read


def service_errors(error: AppError, read: MatterForm) -> dict[str, str]:
    """A catalogue service's refusal (unknown department, code taken, changed meanwhile) next to its inputs."""
    fields = (error.errors or {}).get("json") or {}
    return read.place(fields) if fields else {"form": error.message}


def expected_version(form: MultiDict) -> int | None:
    """The version the form was loaded at (its hidden input), if it names one."""
    text = field_text(form, "version")
    return int(text) if text.isdigit() and len(text) < 10 else None


def values_of(form: MultiDict) -> dict:
    """What the admin typed, to show the form again with its errors."""
    return {
        **{name: field_text(form, name) for name in (*TEXT_FIELDS, *NUMBER_FIELDS, "code", "conditions", "process",
                                                "keywords", "fee_items", "fees_note", "result_name", "result_kind",
                                                "version")},
        "fees_free": bool(form.get("fees_free")),
        "proactive": bool(form.get("proactive")),
        "delivery": form.getlist("delivery"),
        "materials": materials_of(form),
    }


def values_of_matter(matter) -> dict:
    """A stored matter as its edit form shows it (the inverse of `MatterForm`)."""
    def joined(parts) -> str:
        return " | ".join(str(part) for part in parts).rstrip(" |")

    fees = matter.fees or {}
    return {
        **{name: getattr(matter, name) or "" for name in TEXT_FIELDS if name != "department"},
        "department": matter.department_code,
        "code": matter.code,
        "version": str(matter.version),
        "legal_time_limit_days": "" if matter.legal_time_limit_days is None else str(matter.legal_time_limit_days),
        "promised_time_limit_days": str(matter.promised_time_limit_days),
        "conditions": "\n".join(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
                                for item in matter.conditions),
        "process": "\n".join(joined((step["name"], step.get("description", ""))) for step in matter.process),
        "keywords": matter.keywords,
        "proactive": matter.proactive,
        "delivery": list(matter.delivery),
        "fees_free": bool(fees.get("free")),
        "fee_items": "\n".join(joined((item["name"], f"{item['amount']:g}", item.get("unit", ""),
                                        item.get("basis", ""))) for item in fees.get("items", [])),
        "fees_note": fees.get("note", ""),
        "result_name": (matter.result or {}).get("name", ""),
        "result_kind": (matter.result or {}).get("kind", ""),
        "materials": [{
            **{name: getattr(material, name) or "" for name in ("code", "name", "description")},
            **{name: str(getattr(material, name)) for name in MATERIAL_NUMBERS},
            "required": material.required, "deferrable": material.deferrable, "remove": False,
            "evidence": [{**{name: option.get(name, "") for name in EVIDENCE_TEXT},
                          "elements": ", ".join(option.get("elements", [])), "critical": bool(option.get("critical"))}
                         for option in material.evidence],
        } for material in matter.materials],
    }


def blank_material() -> dict:
    return {**dict.fromkeys((*MATERIAL_TEXT, *MATERIAL_NUMBERS), ""), "required": True, "deferrable": False,
            "remove": False, "evidence": [blank_option()]}


def blank_option() -> dict:
    return {**dict.fromkeys((*EVIDENCE_TEXT, "elements"), ""), "critical": False}


def with_blank_rows(values: dict) -> dict:
    """The form's values with one empty evidence row per material and one empty material to add."""
    materials = [{**row, "evidence": [*row["evidence"], blank_option()]} for row in values["materials"]]
    return {**values, "materials": [*materials, blank_material()]}


# ------------------------------------------------------------------------------------------ staff accounts

STAFF_TEXT = ("username", "display_name", "bureau_code", "department_code")


def new_staff(form: MultiDict) -> dict:
    """The arguments of `create_staff` the account form stands for (the service checks them)."""
    return {"username": field_text(form, "username"), "password": form.get("password") or "",
            "roles": [role for role in form.getlist("roles") if role],
            "display_name": field_text(form, "display_name"),
            "bureau_code": field_text(form, "bureau_code") or None,
            "department_code": field_text(form, "department_code") or None}


def staff_values(form: MultiDict) -> dict:
    """What the admin typed (never the password), to show the form again."""
    return {**{name: field_text(form, name) for name in STAFF_TEXT}, "roles": form.getlist("roles"),
            "active": bool(form.get("active"))}


def staff_values_of(user) -> dict:
    """An account's current values, to fill the change form."""
    return {"username": user.username, "display_name": user.display_name, "roles": list(user.roles),
            "bureau_code": user.bureau_code or "", "department_code": user.department_code or "",
            "active": user.active}


def staff_changes(form: MultiDict) -> dict:
    """The arguments of `update_staff` the change form stands for (the service checks them)."""
    return {"roles": [role for role in form.getlist("roles") if role],
            "bureau_code": field_text(form, "bureau_code") or None,
            "department_code": field_text(form, "department_code") or None,
            "active": bool(form.get("active"))}


def staff_errors(error: AppError) -> dict[str, str]:
    fields = (error.errors or {}).get("json") or {}
    if error.error == "username_taken":
        return {"username": error.message}
    return {name: message(texts) for name, texts in fields.items()} or {"form": error.message}


# ------------------------------------------------------------------------------------------ the dashboard

DEFAULT_DAYS = 30
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def period_values(args: MultiDict, today: date) -> dict[str, str]:
    """The dashboard's dates as typed; by default the last 30 days to today (Beijing time)."""
    return {"from": (args.get("from") or "").strip() or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "to": (args.get("to") or "").strip() or today.isoformat()}


def period(values: dict[str, str]) -> dict:
    """The dashboard's dates (Beijing time, the last day included) as the stats endpoints' query loads them:
    `from` the first day's midnight, `to` (exclusive) the midnight after the last day."""
    errors: dict[str, str] = {}
    query = {}
    for name, shift in (("from", 0), ("to", 1)):
        text = values[name]
        try:
            day = date.fromisoformat(text) if DATE.fullmatch(text) else None
        except ValueError:
            day = None
        if day is None:
            errors[name] = "请填写有效的日期(年-月-日)"
            continue
        query[name] = datetime.combine(day + timedelta(days=shift), time.min, BEIJING).isoformat()
    if errors:
        raise FormInvalid(errors)
    try:
        return StatsQuerySchema().load(query)
    except ma.ValidationError as error:
        raise FormInvalid({name: message(texts) for name, texts in error.messages.items()}) from None


def period_errors(error: AppError) -> dict[str, str]:
    """A stats service's refusal of the period (ends before it starts, too long) next to the start date."""
    fields = (error.errors or {}).get("query") or {}
    return {name: message(texts) for name, texts in fields.items()} or {"from": error.message}
