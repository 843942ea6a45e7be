"""transparency log: a Merkle tree over each audit chain, its salted leaves and signed checkpoints

Every chained record gets the random salt of its leaf (tlog.records.leaf_data); records written before this
revision get one here. Their tree is built by the next append to each chain (`audit_chain_heads.tree_size`
starts at 0 and the writer catches up), so this migration does no hashing and needs none of the app's code.

Revision ID: 3c81f0a4d6e2
Revises: 7a3e9c2d5b18
Create Date: 2026-12-07 06:30:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c81f0a4d6e2'
down_revision = '7a3e9c2d5b18'
branch_labels = None
depends_on = None

CHAINED_TABLES = ('face_verification_records', 'data_access_records', 'auditor_access_records')


def upgrade():
    op.add_column('audit_chain_heads', sa.Column('tree_size', sa.Integer(), server_default='0', nullable=False))
    op.create_table(
        'audit_tree_nodes',
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('idx', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('chain', 'level', 'idx', name=op.f('pk_audit_tree_nodes')),
    )
    op.create_table(
        'audit_checkpoints',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('tree_size', sa.Integer(), nullable=False),
        sa.Column('root_hash', sa.String(length=64), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
        sa.UniqueConstraint('chain', 'tree_size', name='uq_audit_checkpoints_chain_size'),
    )
    connection = op.get_bind()
    for name in CHAINED_TABLES:
        op.add_column(name, sa.Column('leaf_salt', sa.String(length=32), nullable=True))
        table = sa.table(name, sa.column('id', sa.String), sa.column('leaf_salt', sa.String))
        ids = connection.execute(sa.select(table.c.id)).scalars().all()
        for record_id in ids:  # a salt of its own for each record: a shared one would let leaves be compared
            connection.execute(table.update().where(table.c.id == record_id).values(leaf_salt=secrets.token_hex(16)))
        with op.batch_alter_table(name) as batch:
            batch.alter_column('leaf_salt', existing_type=sa.String(length=32), nullable=False)
    # Records written but not yet sequenced into their chain (app/ledger/sequencer.py; PostgreSQL only uses it).
    op.create_table(
        'audit_pending',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False),
                  nullable=False),
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('record_id', sa.String(length=32), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_pending')),
    )
    op.create_index('ix_audit_pending_chain_id', 'audit_pending', ['chain', 'id'])


def downgrade():
    op.drop_index('ix_audit_pending_chain_id', table_name='audit_pending')
    op.drop_table('audit_pending')
    for name in CHAINED_TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column('leaf_salt')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_tree_nodes')
    with op.batch_alter_table('audit_chain_heads') as batch:
        batch.drop_column('tree_size')
