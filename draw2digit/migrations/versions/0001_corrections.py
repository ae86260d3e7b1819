"""The corrections table as the first release made it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 9"), nullable=False),
        sa.Column(
            "predicted", sa.Integer, sa.CheckConstraint("predicted IS NULL OR predicted BETWEEN 0 AND 9")
        ),
        sa.Column("original", sa.LargeBinary, nullable=False),
        sa.Column("image", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("corrections")
