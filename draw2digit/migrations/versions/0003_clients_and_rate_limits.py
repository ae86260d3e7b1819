"""Who sent what, without storing who: a keyed hash of the client per correction; rate-limit counters.

Rows from before have no client: they count as one unknown client. The key of the
hash is made here, once per database, so that every worker and pod hashes alike;
``DRAW2DIGIT_CLIENT_KEY`` overrides it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("client", sa.String(16)))
    op.create_index("ix_corrections_client", "corrections", ["client"])
    settings = op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.bulk_insert(settings, [{"name": "client_key", "value": secrets.token_hex(32)}])
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("settings")
    op.drop_index("ix_corrections_client", "corrections")
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("client")
