"""Things, their sources, their latest values, and tag scans.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "things",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("online", sa.Boolean),
    )
    op.create_table(
        "sources",
        sa.Column("ecosystem", sa.Text, primary_key=True),
        sa.Column("identity", sa.Text, primary_key=True),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id", ondelete="CASCADE"), nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
    )
    op.create_index("sources_thing", "sources", ["thing_id"])
    op.create_table(
        "latest",
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("measurement", sa.Text, primary_key=True),
        sa.Column("value_num", sa.Double),
        sa.Column("value_bool", sa.Boolean),
        sa.Column("time", sa.Double, nullable=False),
    )
    op.create_table(
        "scans",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("reader", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("received", sa.Double, nullable=False),
    )
    op.create_index("scans_reader_time", "scans", ["reader", "time"])
    op.create_index("scans_tag_time", "scans", ["tag", "time"])


def downgrade() -> None:
    op.drop_table("scans")
    op.drop_table("latest")
    op.drop_index("sources_thing", table_name="sources")
    op.drop_table("sources")
    op.drop_table("things")
