"""How each material of an application stands, and the ways an applicant provides one without a document.

A material lists evidence options (the catalogue's guide, 一次告知); it is met by the first that applies, best
evidence first:

- `satisfied` via `shared_data`: every element of one of its shared-data options came back `ok` in the prefill
  (provenance on the fields);
- `satisfied` via `face`: it accepts face verification and the citizen's face-verified window is open;
- `satisfied` via `e_licence`: every element of the licence is at hand with authority — fetched `ok`, or the
  person's name and ID number from the real name bound against the population registry;
- `satisfied` via `upload`: the applicant uploaded it (trust level C);
- `promised` via `promise`: the applicant signed the written promise (告知承诺; trust level D);
- `deferred` via `deferred`: the matter allows it later (容缺), due by `due_on`;
- `awaiting_prefill`: shared data may meet it, but there has been no prefill yet;
- `available`: a document-free way is open but not taken yet (verify by face, sign the promise);
- `needs_upload`, `in_person`: only a document or a visit is left;
- `unavailable`: only shared data could meet it, and it did not come back.

`zero_material` (for this citizen) is true when no required material needs a document: each is met, promised,
deferred or can be met online without one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.applications.models import ApplicationMaterial
from app.catalogue.models import Material, Matter

# The identity elements a bound real name provides (checked against the population registry when bound).
REAL_NAME_ELEMENTS = frozenset({"person.name", "person.id_number"})
MET = frozenset({"satisfied", "promised", "deferred"})
DOCUMENT_FREE = MET | {"available"}


def material_status(material: Material, fields: Mapping[str, Mapping[str, Any]] | None, *,
                    provided: ApplicationMaterial | None = None, face_ok: bool = False,
                    real_name: bool = False) -> dict:
    """The material's status (module docstring); `fields` is None before the first prefill."""
    options = material.evidence
    types = {option["type"] for option in options}
    answer = {"code": material.code, "name": material.name, "required": material.required,
              "deferrable": material.deferrable, "status": "unavailable", "via": None}

    def ok(name: str) -> bool:
        return (fields or {}).get(name, {}).get("status") == "ok"

    for option in options:
        if option["type"] == "shared_data" and fields is not None and all(ok(n) for n in option.get("elements", ())):
            return {**answer, "status": "satisfied", "via": "shared_data", "elements": list(option["elements"])}
    if face_ok and "face" in types:
        return {**answer, "status": "satisfied", "via": "face"}
    for option in options:
        if option["type"] == "e_licence" and all(ok(n) or (real_name and n in REAL_NAME_ELEMENTS)
                                                 for n in option.get("elements", ())):
            return {**answer, "status": "satisfied", "via": "e_licence", "licence_type": option.get("licence_type"),
                    "elements": list(option.get("elements", ()))}
    if provided is not None:
        if provided.via == "upload":
            return {**answer, "status": "satisfied", "via": "upload", "upload": {
                "sha256": provided.sha256, "size": provided.size, "content_type": provided.content_type,
                "uploaded_at": provided.provided_at}}
        if provided.via == "promise":
            return {**answer, "status": "promised", "via": "promise", "promised_at": provided.provided_at}
        if provided.via == "deferred":
            return {**answer, "status": "deferred", "via": "deferred", "due_on": provided.due_on}
    if "shared_data" in types and fields is None:
        return {**answer, "status": "awaiting_prefill", "via": "shared_data"}
    for kind in ("face", "promise"):
        if kind in types:
            return {**answer, "status": "available", "via": kind}
    if "upload" in types:
        return {**answer, "status": "needs_upload", "via": "upload"}
    if "in_person" in types:
        return {**answer, "status": "in_person", "via": "in_person"}
    return answer


def statuses(matter: Matter, fields: Mapping[str, Mapping[str, Any]] | None, *,
             provided: Mapping[str, ApplicationMaterial] | None = None, face_ok: bool = False,
             real_name: bool = False) -> list[dict]:
    """Every material of the matter with its status, in the guide's order."""
    provided = provided or {}
    return [material_status(material, fields, provided=provided.get(material.code), face_ok=face_ok,
                            real_name=real_name) for material in matter.materials]


def zero_material(matter: Matter, materials: Sequence[Mapping]) -> bool:
    """No required material needs a document (an upload or a visit) from this citizen."""
    required = {material.code for material in matter.materials if material.required}
    return all(item["status"] in DOCUMENT_FREE and item["via"] != "upload"
               for item in materials if item["code"] in required)


def missing(matter: Matter, materials: Sequence[Mapping]) -> dict[str, list[str]]:
    """Required materials not yet met, each with what is left to do (the `materials_missing` details)."""
    todo = {
        "available:face": "请完成刷脸核验",
        "available:promise": "请签署告知承诺",
        "needs_upload": "请上传该材料",
        "in_person": "该材料须到窗口提交",
        "unavailable": "共享数据未查到,请咨询办理部门",
        "awaiting_prefill": "请先授权并预填共享数据",
    }
    required = {material.code for material in matter.materials if material.required}
    def what(item: Mapping) -> str:
        return todo.get(f"{item['status']}:{item['via']}") or todo.get(item["status"], item["status"])

    return {item["code"]: [f"{item['name']}:{what(item)}"]
            for item in materials if item["code"] in required and item["status"] not in MET}


def promise_text(material: Material) -> str | None:
    """The text of the material's written promise (告知承诺), None when it offers none."""
    for option in material.evidence:
        if option["type"] == "promise":
            return option.get("note") or f"本人承诺所述“{material.name}”情况真实有效,如有虚假愿承担相应法律责任。"
    return None
