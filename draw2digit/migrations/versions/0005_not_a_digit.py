"""A correction may say "not a digit": label 10, kept out of digit fine-tuning.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD, NEW = "label BETWEEN 0 AND 9", "label BETWEEN 0 AND 10"


def _relabel(check: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a constraint: the table is copied with its columns' checks given here
        # (Alembic warns that it leaves the reflected, unnamed ones out: these replace them)
        with (
            warnings.catch_warnings(),
            op.batch_alter_table(
                "corrections",
                recreate="always",
                reflect_args=[
                    sa.Column("label", sa.Integer, sa.CheckConstraint(check), nullable=False),
                    sa.Column(
                        "predicted",
                        sa.Integer,
                        sa.CheckConstraint("predicted IS NULL OR predicted BETWEEN 0 AND 9"),
                    ),
                ],
            ),
        ):
            warnings.filterwarnings("ignore", "Unnamed CHECK constraint", UserWarning)
    else:
        op.drop_constraint("corrections_label_check", "corrections", type_="check")
        op.create_check_constraint("corrections_label_check", "corrections", check)


def upgrade() -> None:
    _relabel(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM corrections WHERE label = 10")
    _relabel(OLD)
