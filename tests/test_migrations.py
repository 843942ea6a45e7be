"""The migrations are the only way the schema is made: they must produce exactly the models' schema."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_build_exactly_the_models_schema(make_app, empty_database_url):
    app = make_app(DATABASE_URL=empty_database_url)
    with app.app_context():
        upgrade()
    assert schema_differences(app) == []


def test_migrations_downgrade_to_nothing_and_up_again(make_app, empty_database_url):
    app = make_app(DATABASE_URL=empty_database_url)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
    assert schema_differences(app) == []


def test_citizens_bound_before_assurance_become_claims(make_app, empty_database_url):
    """0005: a real name bound on a name and number alone was never proven; it becomes a claim."""
    app = make_app(DATABASE_URL=empty_database_url)
    now = "2026-11-01 08:00:00+00:00"
    with app.app_context():
        upgrade(revision="5d2b7c91e0a4")  # 0004, before assurance levels
        with db.engine.begin() as connection:
            for citizen_id, openid, number_hash in (("a" * 32, "bound", "h" * 64), ("b" * 32, "plain", None)):
                connection.execute(sa.text(
                    "INSERT INTO citizens (id, openid, id_number_hash, real_name_verified_at, created_at, updated_at)"
                    " VALUES (:id, :openid, :hash, :verified, :now, :now)"),
                    {"id": citizen_id, "openid": openid, "hash": number_hash,
                     "verified": now if number_hash else None, "now": now})
        upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT openid, assurance, token_epoch, claimed_at IS NOT NULL FROM citizens ORDER BY openid")).all()
        assert [tuple(row) for row in rows] == [("bound", "claimed", 0, True), ("plain", "none", 0, False)]
        # Two accounts may now claim one identity; going back keeps one of them (the earliest).
        with db.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO citizens (id, openid, id_number_hash, assurance, token_epoch, created_at, updated_at)"
                " VALUES (:id, 'later', :hash, 'claimed', 0, '2026-12-01 08:00:00+00:00', :now)"),
                {"id": "c" * 32, "hash": "h" * 64, "now": now})
        downgrade(revision="5d2b7c91e0a4")
        with db.engine.connect() as connection:
            kept = connection.execute(sa.text(
                "SELECT openid FROM citizens WHERE id_number_hash IS NOT NULL")).scalars().all()
        assert kept == ["bound"]


def test_every_log_appends_and_verifies_on_a_migrated_database(make_app, empty_database_url):
    """A migrated table has its columns in the order the migrations added them, not the models' order: the
    writers (on PostgreSQL the sequencer's one-statement batches) must name columns, never count them."""
    from app.audit import services as audit
    from app.connectors.models import DataAccessRecord
    from app.face.models import FaceVerificationRecord
    from app.ledger import chain
    from app.ledger.verify import verify_chain

    app = make_app(DATABASE_URL=empty_database_url)
    with app.app_context():
        upgrade()
        # Twice each: a sequencer's first batch takes the careful path; the later ones, the batch statement.
        for _ in range(2):
            audit.record_access("auditor:migrated", "query", "face-verifications", {}, 0, "req-migrated")
            chain.append(DataAccessRecord, connector_id="c", bureau="gjj", bureau_name="公积金",
                         citizen_pseudonym="p" * 64, purpose="核验", actor="citizen:x",
                         elements_requested=["housing_fund.balance"], elements_returned=[], outcome="ok",
                         latency_ms=1, request_id="req-migrated")
            chain.append(FaceVerificationRecord, event="consent_granted", citizen_pseudonym="p" * 64,
                         actor="citizen:x", provider="sandbox", adapter_version="1", request_id="req-migrated")
        for model in audit.CHAINED_LOGS.values():
            result = verify_chain(model)
            assert result.ok and result.checked == 2, (model.CHAIN, result)
        db.session.remove()
