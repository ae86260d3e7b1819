"""Each person's memory of what they taught, and whose corrections are whose.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("user_id", sa.String(36)))
    op.create_index("ix_corrections_user_id", "corrections", ["user_id"])
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("drawing", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 10"), nullable=False),
        sa.Column("corrected", sa.Boolean, nullable=False),
        sa.Column("features", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("user_id", "model", "drawing", name="uq_memories_user_model_drawing"),
    )
    op.create_index("ix_memories_user_created", "memories", ["user_id", "created"])


def downgrade() -> None:
    op.drop_index("ix_memories_user_created", "memories")
    op.drop_table("memories")
    op.drop_index("ix_corrections_user_id", "corrections")
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("user_id")
