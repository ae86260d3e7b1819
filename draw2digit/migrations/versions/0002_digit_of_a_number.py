"""Which digit of which drawing: a number's digits are corrected one at a time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {"drawing": sa.String(16), "position": sa.Integer(), "box": sa.String(64)}


def upgrade() -> None:
    # A file from a pre-Alembic build may already have them (it added them itself): add only what is missing.
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("corrections")}
    with op.batch_alter_table("corrections") as batch:
        for name, kind in COLUMNS.items():
            if name not in have:
                batch.add_column(sa.Column(name, kind))
    op.create_index("ix_corrections_drawing", "corrections", ["drawing"])


def downgrade() -> None:
    op.drop_index("ix_corrections_drawing", "corrections")
    with op.batch_alter_table("corrections") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
