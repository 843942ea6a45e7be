"""The migrations are the only way the schema is made: they must produce exactly the models' schema."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app import create_app
from app.extensions import db


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_build_exactly_the_models_schema(test_settings, empty_database_url):
    app = create_app({**test_settings, "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade()
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()


def test_migrations_downgrade_to_nothing_and_up_again(test_settings, empty_database_url):
    app = create_app({**test_settings, "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
    assert schema_differences(app) == []
    with app.app_context():
        db.engine.dispose()
