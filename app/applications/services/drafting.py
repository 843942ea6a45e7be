"""Drafting: a citizen (or an agent they authorised) opens a draft for a matter, sees its materials and the
consent its prefill needs, consents, and reads the application back (BRIEF §4).

Material statuses (app/applications/services/materials.py): each material is met by shared data, an
e-licence, face verification, an upload, a signed promise or a deferral, or says what is left (`available`,
`needs_upload`, `in_person`, `unavailable`, `awaiting_prefill`); `zero_material` is true when no required
material needs a document from this citizen. Consent is consent.py's, the prefill prefill.py's; everything
after (form, materials, submission) is submitting.py's, the department's side review.py's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.accounts.models import Citizen
from app.applications.models import Application
from app.applications.services import consent, eligibility, lifecycle, materials, state
from app.applications.services.lifecycle import Actor
from app.catalogue import services as catalogue
from app.catalogue.models import Matter
from app.errors import ValidationFailed
from app.extensions import db
from app.pii import vault
from app.web import readcache
from app.web.paging import Page, page_of

# ----------------------------------------------------------------------------------------------- drafts


def apply(actor: Actor, matter_code: str, on_behalf_of: str | None) -> Application:
    """A draft for the calling citizen, or for the citizen `on_behalf_of` who authorised the calling agent for
    this matter (403 `agent_not_authorised` otherwise); 404 for an unknown matter."""
    if actor.kind == "agent":
        if not on_behalf_of:
            raise ValidationFailed.field("on_behalf_of", "代办时须填写委托人的编号")
        catalogue.get_matter(matter_code)
        citizen = state.principal_for(actor.id, on_behalf_of, matter_code)
    else:
        if on_behalf_of:
            raise ValidationFailed.field("on_behalf_of", "本人办理时不需要填写此字段")
        citizen = db.session.get(Citizen, actor.id)
    return create_draft(citizen, matter_code, actor)


def create_draft(citizen: Citizen, matter_code: str, actor: Actor | None = None) -> Application:
    """A draft application of the citizen for the matter, by the citizen or an authorised agent; 404 for an
    unknown matter."""
    application = state.new_draft(citizen, catalogue.get_matter(matter_code), actor or Actor.of(citizen))
    db.session.commit()
    return application


# What the list shows (each application's columns, and its matter's name) renews the citizen's list stamp, or
# every cached read for a change to the catalogue (rare): app/web/readcache.py.
readcache.watch(Application, lambda row: [readcache.applications_stamp(row.citizen_id)])
readcache.watch(Matter, lambda row: [readcache.GENERATION])


def list_applications(citizen: Citizen, *, page: int = 1, per_page: int = 20, status: str | None = None) -> Page:
    """A page of the citizen's applications, newest first."""
    condition = Application.citizen_id == citizen.id
    if status:
        condition = condition & (Application.status == status)
    return page_of(
        sa.select(Application).where(condition).options(joinedload(Application.matter))
        .order_by(Application.created_at.desc(), Application.id),
        page=page, per_page=per_page,
    )


@dataclass(frozen=True)
class ApplicationRead:
    """An application as its reader sees it: the model's own columns (reached through it, so the schema reads
    `status` or `submitted_at` straight off the application) with what was worked out for this one read —
    the materials now, the consent they need, and for the detail the decrypted prefill, form and submission."""

    application: Application
    materials: list[dict]
    consent_required: dict
    consent: Any = None
    prefill: dict | None = None
    form: dict[str, Any] = field(default_factory=dict)
    submission: dict | None = None
    zero_material: bool = False
    delivery: dict | None = None
    timeline: list[dict] = field(default_factory=list)

    def __getattr__(self, name: str):
        # Only called for names the dataclass does not have: those are the application's columns.
        if name == "application":
            raise AttributeError(name)
        return getattr(self.application, name)


def draft_view(application: Application) -> ApplicationRead:
    """The answer to creating a draft: its materials and the consent its prefill needs."""
    matter = catalogue.get_matter(application.matter_code)
    return ApplicationRead(
        application,
        materials=state.current_materials(application, matter, state.citizen_of(application)),
        consent_required=consent.consent_required(matter),
    )


def detail_view(application: Application) -> ApplicationRead:
    """The application with its timeline, consent, last prefill, deadlines and decision.

    Values (prefill, form, submission) are decrypted for the applicant and the reviewing department only;
    callers have checked the viewer may see this application.
    """
    matter = catalogue.get_matter(application.matter_code)
    citizen = state.citizen_of(application)
    fields = state.stored_fields(application)
    materials_now = state.current_materials(application, matter, citizen)
    prefill = None
    if fields is not None:
        prefill = {
            "fields": fields,
            "materials": materials_now,
            "zero_material": materials.zero_material(matter, materials_now),
            # Worked out again from the stored values: the same rules, the same data, today's date for ages.
            "eligibility": eligibility.evaluate(matter, fields, citizen),
            "prefilled_at": application.prefilled_at,
        }
    required = consent.consent_required(matter)
    frozen = state.thawed_submission(application)
    submitted = None
    if frozen is not None:
        # Erased under retention (app/retention) once the application has long been decided: names stay.
        encrypted = application.submission_values_encrypted
        values = json.loads(vault().decrypt(encrypted)) if encrypted else {}
        submitted = {
            "fields": {name: {**meta, "value": values.get(name)} for name, meta in frozen["fields"].items()},
            "form": {name: values.get(name) for name in frozen["form_fields"]},
            "materials": frozen["materials"],
            "eligibility": state.submitted_eligibility(application, values),
            "conditions_to_decide": application.conditions_to_decide,
        }
    delivery = dict(application.delivery) if application.delivery else None
    if delivery and application.delivery_address_encrypted:
        delivery["recipient"] = json.loads(vault().decrypt(application.delivery_address_encrypted))
    return ApplicationRead(
        application,
        materials=frozen["materials"] if frozen and application.status not in lifecycle.EDITABLE
        else materials_now,
        consent_required=required,
        consent=consent.valid_consent(application, required),
        prefill=prefill,
        form=state.form_values(application),
        submission=submitted,
        zero_material=application.zero_material if frozen else materials.zero_material(matter, materials_now),
        delivery=delivery,
        timeline=lifecycle.timeline(application),
    )
