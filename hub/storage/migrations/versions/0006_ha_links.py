"""Residents' Home Assistant as a source of readings: one link per resident (base URL and long-lived
token) and the entities each shares, every one recorded as a thing the resident owns.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ha_links",
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "ha_shares",
        sa.Column("resident_id", sa.Text, sa.ForeignKey("ha_links.resident_id"), primary_key=True),
        sa.Column("entity_id", sa.Text, primary_key=True),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False, unique=True),
        sa.Column("measurement", sa.Text, nullable=False),
        sa.Column("invert", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ha_shares")
    op.drop_table("ha_links")
