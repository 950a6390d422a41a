"""What devices announce about themselves (model, maker, firmware, power, measurements, attributes),
who retired a thing (a resident, or the device withdrawing its announcement), and the payload fields no
measurement took.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("announced_name", sa.Text),
    ("model", sa.Text),
    ("manufacturer", sa.Text),
    ("sw_version", sa.Text),
    ("power", sa.Text),
    ("measurements", sa.Text),
    ("attributes", sa.Text),
    ("announced_by", sa.Text),
    ("announced_at", sa.Double),
    ("retired_by", sa.Text),
    ("unmapped", sa.Text),
)


def upgrade() -> None:
    # things retired before this revision were retired by residents: retired_by stays NULL for them,
    # so a device announcing itself again never brings them back
    with op.batch_alter_table("things") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("things") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
