"""identity assurance: claimed and face-bound identities, the face-bound uniqueness, token epochs

Every citizen bound before this revision was bound on a name and an ID number alone, which anyone holding
leaked data could do: they become `claimed` (their identity is kept, nothing is proven) and must pass a face
verification (purpose `real_name`) before any personal data is served again. docs/operations.md says what to
tell them.

Revision ID: 7a3e9c2d5b18
Revises: 5d2b7c91e0a4
Create Date: 2026-12-06 21:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3e9c2d5b18'
down_revision = '5d2b7c91e0a4'
branch_labels = None
depends_on = None

FACE_BOUND = sa.text("assurance = 'face'")


def upgrade():
    with op.batch_alter_table('citizens') as batch:
        batch.add_column(sa.Column('assurance', sa.String(length=8), server_default='none', nullable=False))
        batch.add_column(sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('token_epoch', sa.Integer(), server_default='0', nullable=False))
        batch.alter_column('real_name_verified_at', new_column_name='claimed_at',
                           existing_type=sa.DateTime(timezone=True), existing_nullable=True)
        batch.drop_constraint('uq_citizens_id_number_hash', type_='unique')
        batch.create_index('ix_citizens_id_number_hash', ['id_number_hash'], unique=False)
    # Bound on a claim only: now a claim (see the docstring).
    op.execute("UPDATE citizens SET assurance = 'claimed' WHERE id_number_hash IS NOT NULL")
    op.create_index('uq_citizens_face_bound_identity', 'citizens', ['id_number_hash'], unique=True,
                    sqlite_where=FACE_BOUND, postgresql_where=FACE_BOUND)


def downgrade():
    op.drop_index('uq_citizens_face_bound_identity', table_name='citizens',
                  sqlite_where=FACE_BOUND, postgresql_where=FACE_BOUND)
    # One account per ID number again: of several claims, the face-bound account (else the earliest) keeps it.
    op.execute("""
        UPDATE citizens SET real_name_encrypted = NULL, id_number_encrypted = NULL, id_number_hash = NULL,
               id_number_masked = NULL, claimed_at = NULL
        WHERE id IN (
            SELECT c.id FROM citizens c JOIN citizens o ON o.id_number_hash = c.id_number_hash AND o.id <> c.id
            WHERE (o.assurance = 'face' AND c.assurance <> 'face')
               OR ((o.assurance = 'face') = (c.assurance = 'face')
                   AND (o.created_at < c.created_at OR (o.created_at = c.created_at AND o.id < c.id))))
    """)
    with op.batch_alter_table('citizens') as batch:
        batch.drop_index('ix_citizens_id_number_hash')
        batch.create_unique_constraint('uq_citizens_id_number_hash', ['id_number_hash'])
        batch.alter_column('claimed_at', new_column_name='real_name_verified_at',
                           existing_type=sa.DateTime(timezone=True), existing_nullable=True)
        batch.drop_column('token_epoch')
        batch.drop_column('bound_at')
        batch.drop_column('assurance')
