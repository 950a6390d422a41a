"""People, relations, loans and the audit log; what residents say about things.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUT = "state IN ('out', 'overdue')"


def upgrade() -> None:
    # rows that ingest already made stay unclaimed: private, nothing shared with watchers
    with op.batch_alter_table("things") as batch:
        batch.add_column(sa.Column("visibility", sa.Text, nullable=False, server_default="private"))
        batch.add_column(sa.Column("watcher_share", sa.Text, nullable=False, server_default="none"))
        batch.add_column(sa.Column("lat", sa.Double))
        batch.add_column(sa.Column("lon", sa.Double))
        batch.add_column(sa.Column("place", sa.Text))
        batch.add_column(sa.Column("derived_from", sa.Text))
        batch.add_column(sa.Column("created_at", sa.Double))
        batch.add_column(sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()))

    op.create_table(
        "residents",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("pseudonym", sa.Text, nullable=False),
        sa.Column("pseudonym_key", sa.Text, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("real_name", sa.Text),
        sa.Column("joined_at", sa.Double, nullable=False),
        sa.Column("erased", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "contacts",
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "invites",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("created_by", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("redeemed_by", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("redeemed_at", sa.Double),
    )
    op.create_table(
        "tags",
        sa.Column("tag", sa.Text, primary_key=True),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id")),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("added_at", sa.Double, nullable=False),
        sa.CheckConstraint("(thing_id IS NULL) <> (resident_id IS NULL)", name="tags_thing_xor_card"),
    )
    op.create_index("tags_thing", "tags", ["thing_id"])
    op.create_index("tags_resident", "tags", ["resident_id"])
    op.create_table(
        "loans",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False),
        sa.Column("borrower", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("lender", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("start", sa.Double, nullable=False),
        sa.Column("due", sa.Double, nullable=False),
        sa.Column("requested_at", sa.Double, nullable=False),
        sa.Column("out_at", sa.Double),
        sa.Column("returned_at", sa.Double),
        sa.Column("out_reader", sa.Text),
        sa.Column("return_reader", sa.Text),
        sa.Column("damage", sa.Text),
    )
    op.create_index("loans_thing", "loans", ["thing_id", "start"])
    op.create_index("loans_borrower", "loans", ["borrower"])
    op.create_index(
        "loans_one_out_per_thing",
        "loans",
        ["thing_id"],
        unique=True,
        sqlite_where=sa.text(_OUT),
        postgresql_where=sa.text(_OUT),
    )
    op.create_table(
        "relations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("granted_by", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("valid_from", sa.Double, nullable=False),
        sa.Column("valid_until", sa.Double),
        sa.Column("revoked_at", sa.Double),
        sa.Column("policy", sa.Text),
        sa.Column("watch", sa.Text),
        sa.Column("loan_id", sa.Text, sa.ForeignKey("loans.id")),
    )
    op.create_index("relations_thing", "relations", ["thing_id"])
    op.create_index("relations_resident", "relations", ["resident_id"])
    op.create_index("relations_loan", "relations", ["loan_id"])
    op.create_table(
        "waitlist",
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), primary_key=True),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("joined_at", sa.Double, nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("loan_id", sa.Text, sa.ForeignKey("loans.id"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("sent_at", sa.Double, nullable=False),
    )
    op.create_table(
        "vouches",
        sa.Column("from_resident", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("to_resident", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("time", sa.Double, nullable=False),
        sa.CheckConstraint("from_resident <> to_resident", name="vouches_not_self"),
    )
    op.create_index("vouches_to", "vouches", ["to_resident"])
    op.create_table(
        "maintenance",
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id"), primary_key=True),
        sa.Column("every_days", sa.Double),
        sa.Column("every_hours_used", sa.Double),
        sa.Column("last_done_at", sa.Double),
        sa.Column("last_done_hours", sa.Double),
        sa.Column("hours_used", sa.Double),
        sa.Column("notified_for", sa.Double),
    )
    op.create_table(
        "audit",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("thing_id", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("audit_thing_time", "audit", ["thing_id", "time"])
    op.create_index("audit_subject_time", "audit", ["subject", "time"])
    op.create_index("audit_actor_time", "audit", ["actor", "time"])


def downgrade() -> None:
    for table in (
        "audit",
        "maintenance",
        "vouches",
        "notices",
        "waitlist",
        "relations",
        "loans",
        "tags",
        "invites",
        "contacts",
        "residents",
    ):
        op.drop_table(table)
    with op.batch_alter_table("things") as batch:
        for column in (
            "retired",
            "created_at",
            "derived_from",
            "place",
            "lon",
            "lat",
            "watcher_share",
            "visibility",
        ):
            batch.drop_column(column)
