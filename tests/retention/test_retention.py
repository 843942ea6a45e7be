"""Retention (app/retention): what has expired is gone, files and rows; what has not is untouched.

The applications are made through the API (drafts with uploads through the real endpoints, the upload
storage being the app's), then aged by moving their timestamps back; the pass runs as operators run it by
hand (`flask jobs run retention.purge`), the same function the scheduler queues.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import sqlalchemy as sa

from app.applications.models import Application, ApplicationEvent, ApplicationMaterial
from app.applications.storage import upload_storage
from app.extensions import db
from app.face.models import FaceSession
from app.modelbase import utcnow
from app.notifications.models import Notification
from tests.application_flow import PDF, PNG, UPLOAD_MATTER, create, url, verify_face

DAY = timedelta(days=1)
PHONE = "13800000000"


def draft_with_upload(client, headers, data: bytes, name: str) -> str:
    created = create(client, headers, UPLOAD_MATTER)
    uploaded = client.post(url(created["id"], "materials/SALE_CONTRACT"), headers=headers,
                           data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.json
    saved = client.put(url(created["id"], "form"), headers=headers, json={"fields": {"contact.phone": PHONE}})
    assert saved.status_code == 200, saved.json
    return created["id"]


def age(application_id: str, **values) -> None:
    db.session.execute(sa.update(Application).where(Application.id == application_id).values(**values))
    db.session.commit()


def key_of(application_id: str) -> str | None:
    return db.session.scalar(sa.select(ApplicationMaterial.storage_key)
                             .where(ApplicationMaterial.application_id == application_id))


def events(application_id: str) -> list[str]:
    return list(db.session.scalars(sa.select(ApplicationEvent.kind)
                                   .where(ApplicationEvent.application_id == application_id)))


def purge(app) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run", "retention.purge"])
    assert result.exit_code == 0, result.output
    return result.output


def test_expired_data_is_gone_and_live_data_untouched(app, client, zhang, caplog):
    now = utcnow()
    stale = draft_with_upload(client, zhang, PDF, "contract.pdf")
    fresh = draft_with_upload(client, zhang, PNG, "contract.png")
    decided_long_ago = draft_with_upload(client, zhang, PNG, "same-as-fresh.png")  # shares fresh's file
    archived = draft_with_upload(client, zhang, PDF, "contract.pdf")
    with app.app_context():
        fresh_key, shared_key = key_of(fresh), key_of(decided_long_ago)
        assert fresh_key == shared_key  # identical uploads: one file
        age(stale, updated_at=now - 31 * DAY)
        age(decided_long_ago, status="approved", decided_at=now - 181 * DAY, updated_at=now - 181 * DAY)
        age(archived, status="approved", decided_at=now - 3 * 366 * DAY, updated_at=now - 3 * 366 * DAY)
        stale_key = key_of(stale)
        live_values = db.session.get(Application, fresh).form_values_encrypted
    verify_face(client, zhang)  # with zhang's own proof, two face sessions: one aged past the period, one not
    with app.app_context():
        old, recent = db.session.scalars(sa.select(FaceSession).order_by(FaceSession.created_at)).all()[:2]
        old.expires_at, recent.expires_at = now - 8 * DAY, now - DAY
        db.session.commit()
        old_session, recent_session = old.id, recent.id
        sessions_before = db.session.scalar(sa.select(sa.func.count()).select_from(FaceSession))

    with caplog.at_level(logging.INFO, logger="app.retention.tasks"):
        output = purge(app)
    assert ("'drafts_expired': 1, 'uploads_erased': 2, 'values_erased': 1, 'face_sessions_deleted': 1"
            in output), output

    with app.app_context():
        storage = upload_storage()
        # The stale draft: withdrawn by the system, its values and its file gone, the citizen told.
        draft = db.session.get(Application, stale)
        assert draft.status == "withdrawn"
        assert draft.form_values_encrypted is None and draft.prefill_values_encrypted is None
        assert key_of(stale) is None and not storage.exists(stale_key)  # the archived one's too (below)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                 .where(Notification.application_id == stale)) == 1
        # The application decided 181 days ago: its reference gone, the file kept for the live draft.
        assert key_of(decided_long_ago) is None and "uploads_erased" in events(decided_long_ago)
        assert db.session.get(Application, decided_long_ago).form_values_encrypted is not None
        assert storage.exists(shared_key)
        # The one decided three years ago: values erased too.
        erased = db.session.get(Application, archived)
        assert erased.form_values_encrypted is None and "values_erased" in events(archived)
        # The live draft: untouched.
        live = db.session.get(Application, fresh)
        assert (live.status, live.form_values_encrypted, key_of(fresh)) == ("draft", live_values, fresh_key)
        assert storage.open(fresh_key) == PNG
        # Face sessions: the one expired 8 days ago deleted, the recent one kept.
        assert db.session.get(FaceSession, old_session) is None
        assert db.session.get(FaceSession, recent_session) is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(FaceSession)) == sessions_before - 1

    # What the citizen sees: the withdrawn draft says why; an erased file is a 404 naming itself.
    timeline = client.get(url(stale), headers=zhang).json["timeline"]
    assert timeline[-1]["kind"] == "withdrawn" and timeline[-1]["actor"] == "system"
    assert timeline[-1]["detail"] == {"reason": "expired", "days": 30}
    gone = client.get(url(decided_long_ago, "materials/SALE_CONTRACT"), headers=zhang)
    assert (gone.status_code, gone.json["error"]) == (404, "upload_not_found")
    assert client.get(url(archived), headers=zhang).status_code == 200
    assert client.get(url(fresh, "materials/SALE_CONTRACT"), headers=zhang).data == PNG

    # The log says counts, never what was deleted.
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "drafts_expired 1" in logged
    for secret in (stale, fresh, stale_key, fresh_key, PHONE):
        assert secret not in logged

    # A second pass finds nothing more.
    assert "'drafts_expired': 0, 'uploads_erased': 0, 'values_erased': 0, 'face_sessions_deleted': 0" in purge(app)


def test_the_periods_are_settings(app, make_app, client, zhang):
    draft = draft_with_upload(client, zhang, PDF, "contract.pdf")
    with app.app_context():
        age(draft, updated_at=utcnow() - 31 * DAY)
    patient = make_app(RETENTION_DRAFT_DAYS=60)
    assert "'drafts_expired': 0" in purge(patient)
    with app.app_context():
        assert db.session.get(Application, draft).status == "draft"


def test_a_draft_changed_after_it_was_listed_keeps_everything(app, client, zhang):
    """The pass lists stale drafts first and withdraws each in a transaction of its own: one the citizen
    changed in between is no longer stale there, and nothing of it is touched."""
    from app.applications.services import retention

    draft = draft_with_upload(client, zhang, PDF, "contract.pdf")
    cutoff = utcnow() - 30 * DAY
    with app.app_context():
        age(draft, updated_at=utcnow() - 31 * DAY)
        key = key_of(draft)
    edited = client.put(url(draft, "form"), headers=zhang, json={"fields": {"contact.phone": "13900000000"}})
    assert edited.status_code == 200
    with app.app_context():
        assert retention._expire_draft(draft, cutoff, 30) == 0
        assert db.session.get(Application, draft).status == "draft"
        assert key_of(draft) == key and upload_storage().exists(key)
