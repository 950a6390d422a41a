"""Web sign-in (credentials, sessions, personal access tokens) and alerts (rules, alerts, their
history, residents' channels, the delivery log).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("web_sessions_resident", "web_sessions", ["resident_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_used", sa.Double),
        sa.Column("revoked_at", sa.Double),
    )
    op.create_index("api_tokens_resident", "api_tokens", ["resident_id"])
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("thing_id", sa.Text, sa.ForeignKey("things.id")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("thing_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("opened_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("cleared_at", sa.Double),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledged_at", sa.Double),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_at", sa.Double),
        sa.Column("triggers", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("alerts_thing_state", "alerts", ["thing_id", "state"])
    op.create_index("alerts_rule_thing", "alerts", ["rule_id", "thing_id"])
    op.create_table(
        "alert_events",
        _id(),
        sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("alert_events_alert", "alert_events", ["alert_id", "time"])
    op.create_table(
        "channels",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_index("channels_resident", "channels", ["resident_id"])
    op.create_table(
        "deliveries",
        _id(),
        sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id")),
        sa.Column("resident_id", sa.Text, sa.ForeignKey("residents.id")),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("sent_at", sa.Double),
    )
    op.create_index("deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("deliveries_alert", "deliveries", ["alert_id"])


def downgrade() -> None:
    for table in ("deliveries", "channels", "alert_events", "alerts", "alert_rules", "api_tokens",
                  "web_sessions", "credentials"):
        op.drop_table(table)
