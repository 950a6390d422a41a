"""A scan is stored once and handled once: scans are unique by (reader, tag, time), and the scans that
changed a loan are marked in the loan's own transaction.

A reader's scan keeps the device's time, or its arrival time journaled like a reading's, so the broker
delivering it again after a crash brings the same row back; the mark keeps the lending desk from
handing a tool over (or taking it back) a second time.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # copies stored before this revision: keep the first of each (reader, tag, time)
    op.execute(
        "DELETE FROM scans WHERE id NOT IN (SELECT min(id) FROM scans GROUP BY reader, tag, time)"
    )
    with op.batch_alter_table("scans") as batch:
        batch.create_unique_constraint("scans_once", ["reader", "tag", "time"])
    op.create_table(
        "handled_scans",
        sa.Column("reader", sa.Text, primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
        sa.Column("time", sa.Double, primary_key=True),
        sa.Column("loan_id", sa.Text, nullable=False),
        sa.Column("handled_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("handled_scans")
    with op.batch_alter_table("scans") as batch:
        batch.drop_constraint("scans_once", type_="unique")
