"""conditions as data (智能预审) and 免申即享: a matter's proactive flag, the pre-check frozen with an
application and a reviewer's decisions on its conditions, citizens' opt-ins and the notices sent under them

Conditions themselves need no column: `matters.conditions` is JSON and now also holds `{text, rule,
reviewer_may_decide}` objects beside plain strings (which stay valid, as text-only conditions).

Revision ID: 9b4e2f7a1c63
Revises: 3c81f0a4d6e2
Create Date: 2026-12-07 16:45:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '9b4e2f7a1c63'
down_revision = '3c81f0a4d6e2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('matters') as batch:
        batch.add_column(sa.Column('proactive', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('applications') as batch:
        batch.add_column(sa.Column('eligibility_result', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('condition_decisions', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('condition_notes_encrypted', sa.Text(), nullable=True))
    op.create_table(
        'proactive_opt_ins',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('citizen_id', sa.String(length=32), nullable=False),
        sa.Column('matter_codes', sa.JSON(), nullable=False),
        sa.Column('elements', sa.JSON(), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_evaluated_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizens.id'], name=op.f('fk_proactive_opt_ins_citizen_id_citizens')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_proactive_opt_ins')),
    )
    op.create_index('ix_proactive_opt_ins_citizen_id_granted_at', 'proactive_opt_ins', ['citizen_id', 'granted_at'])
    op.create_table(
        'proactive_notices',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('opt_in_id', sa.String(length=32), nullable=False),
        sa.Column('matter_code', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=32), nullable=False),
        sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'],
                                name=op.f('fk_proactive_notices_application_id_applications')),
        sa.ForeignKeyConstraint(['opt_in_id'], ['proactive_opt_ins.id'],
                                name=op.f('fk_proactive_notices_opt_in_id_proactive_opt_ins')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_proactive_notices')),
        sa.UniqueConstraint('opt_in_id', 'matter_code', name=op.f('uq_proactive_notices_opt_in_id')),
    )


def downgrade():
    op.drop_table('proactive_notices')
    op.drop_index('ix_proactive_opt_ins_citizen_id_granted_at', table_name='proactive_opt_ins')
    op.drop_table('proactive_opt_ins')
    with op.batch_alter_table('applications') as batch:
        batch.drop_column('condition_notes_encrypted')
        batch.drop_column('condition_decisions')
        batch.drop_column('eligibility_result')
    with op.batch_alter_table('matters') as batch:
        batch.drop_column('proactive')
