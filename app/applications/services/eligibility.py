"""The pre-check (智能预审): a matter's conditions evaluated over an application's prefilled data, so the citizen
is told which condition fails, and why, before doing anything else (一次告知) — and a submission that does not
meet them is refused, not left for a reviewer to reject.

The rules and their three-valued evaluation are `shared_data/conditions.py`'s; this module supplies the facts:
the prefill's fields (value, status, provenance) and, for `person.name` and `person.id_number`, the identity
proven by face (never fetched again: the bound real name is what the population registry confirmed). An
element the prefill did not fetch is `not_consented` (the consent covers exactly the matter's elements).

What is stored in clear (the submission snapshot, the statistics) holds no value: `without_values` strips
them; the full pre-check travels with the other values, encrypted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.accounts.models import Citizen
from app.applications.workdays import work_calendar
from app.catalogue.models import Matter
from app.errors import ValidationFailed
from app.pii import vault
from shared_data import conditions as rules

# Elements a bound real name provides; the conditions read them from the identity, not from a bureau.
IDENTITY_ELEMENTS = ("person.name", "person.id_number")
IDENTITY_SOURCE = {"connector": None, "bureau": "实名认证(刷脸核验)", "trust_level": "A", "source_updated_at": None,
                   "fetched_at": None}
# The key the full pre-check is kept under among an application's encrypted values (no element or form field
# can be called so: those are lower-case dotted words).
VALUES_KEY = "$eligibility"


class ConditionsNotMet(ValidationFailed):
    error, message = "conditions_not_met", "不符合本事项的受理条件"


class ConditionsUnverified(ValidationFailed):
    error, message = "conditions_unverified", "部分受理条件暂时无法核验"


def identity_facts(citizen: Citizen) -> dict[str, rules.Fact]:
    """The name and ID number of the identity proven by face, as facts; not_found before it is proven."""
    if not citizen.real_name_verified or not citizen.id_number_encrypted:
        return {name: rules.Fact(None, "not_found") for name in IDENTITY_ELEMENTS}
    source = {**IDENTITY_SOURCE, "source_updated_at": _iso(citizen.bound_at)}
    return {
        "person.name": rules.Fact(citizen.real_name, "ok", source),
        "person.id_number": rules.Fact(vault().decrypt(citizen.id_number_encrypted), "ok", source),
    }


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def evaluate(matter: Matter, fields: Mapping[str, Mapping[str, Any]] | None, citizen: Citizen) -> dict:
    """The matter's conditions over `fields` (a prefill's per-field objects; None before any) → the API's
    `eligibility` object {result, conditions: [...]}, ages counted to today's Beijing date."""
    wanted = matter.condition_elements
    facts = rules.facts_from_fields(fields or {}, [n for n in wanted if n not in IDENTITY_ELEMENTS])
    if fields is None:
        facts = {name: rules.Fact(None, "not_fetched") for name in facts}
    if any(name in IDENTITY_ELEMENTS for name in wanted):
        facts.update(identity_facts(citizen))
    return rules.evaluate(matter.conditions, facts, today=work_calendar().today()).to_dict()


def without_values(eligibility: Mapping) -> dict:
    """The pre-check without any value or reason (which quotes values): what may be kept in clear."""
    return {
        "result": eligibility["result"],
        "conditions": [
            {**{k: v for k, v in condition.items() if k not in ("reason", "facts")},
             "facts": [{k: v for k, v in fact.items() if k != "value"} for fact in condition["facts"]]}
            for condition in eligibility["conditions"]
        ],
    }


def check_submittable(eligibility: Mapping) -> list[int]:
    """Refuse a submission the pre-check rules out; → the indices left for the reviewer to decide.

    Any `not_met` → 422 `conditions_not_met` listing them; an `unknown` the matter does not let a reviewer
    decide → 422 `conditions_unverified` listing them (never a silent pass); an `unknown` a reviewer may decide
    is allowed and marked for them.
    """
    conditions = eligibility["conditions"]
    failed = [c for c in conditions if c["result"] == "not_met"]
    if failed:
        raise ConditionsNotMet(
            f"不符合受理条件:{'；'.join(c['text'] for c in failed)}",
            errors={"conditions": [_listed(c) for c in failed]},
        )
    blocked = [c for c in conditions if c["result"] == "unknown" and not c["reviewer_may_decide"]]
    if blocked:
        raise ConditionsUnverified(
            f"以下受理条件暂时无法通过共享数据核验,请稍后重新预填或到窗口办理:{'；'.join(c['text'] for c in blocked)}",
            errors={"conditions": [_listed(c) for c in blocked]},
        )
    return [c["index"] for c in conditions if c["result"] == "unknown"]


def _listed(condition: Mapping) -> dict:
    return {"index": condition["index"], "text": condition["text"], "result": condition["result"],
            "reason": condition.get("reason")}
