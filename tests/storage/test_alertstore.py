"""The alert store (alerts, history, channels, delivery log) on a real SQLite file and real PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.storage.alertstore import (
    MASK,
    AlertRecord,
    AlertStore,
    AlertStoreError,
    Secret,
    mask_target,
)
from hub.storage.directory import Directory
from hub.storage.store import Store

T0 = 1_750_000_000.0
HA_TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-ha-token"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    s = Store(url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def alerts(store: Store) -> AlertStore:
    return AlertStore(store)


@pytest.fixture
def people(store: Store) -> tuple[str, str]:
    d = Directory(store)
    admin = d.bootstrap_admin("root", now=T0).id
    return admin, d.add_resident("ada", actor=admin, now=T0).id


def leak_alert(**changes: object) -> AlertRecord:
    base = AlertRecord(
        id="a1",
        rule_id="leak",
        thing="basement-flood",
        kind="boolean",
        severity="critical",
        state="active",
        message="water_leak is true",
        opened_at=T0,
        updated_at=T0,
        value=1.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -- alerts ------------------------------------------------------------------------------------------


def test_alert_round_trips_every_field(alerts: AlertStore) -> None:
    alert = leak_alert(acknowledged_by="r1", acknowledged_at=T0 + 5, state="acknowledged", triggers=3)
    assert alerts.upsert_alert(alert) is True
    assert alerts.alert("a1") == alert


def test_retrigger_updates_the_open_alert_instead_of_adding_one(alerts: AlertStore, store: Store) -> None:
    alerts.upsert_alert(leak_alert())
    alerts.upsert_alert(leak_alert(updated_at=T0 + 60, triggers=2, value=2.0))
    with store._engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one() == 1
    got = alerts.alert("a1")
    assert got is not None and got.triggers == 2 and got.value == 2.0


def test_an_older_decision_never_overwrites_a_newer_one(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert(updated_at=T0 + 60, state="claimed", claimed_by="r1", claimed_at=T0 + 60))
    assert alerts.upsert_alert(leak_alert(updated_at=T0 + 30)) is False
    got = alerts.alert("a1")
    assert got is not None and got.state == "claimed" and got.claimed_by == "r1"


def test_opening_time_and_thing_are_kept_from_the_first_insert(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    alerts.upsert_alert(leak_alert(opened_at=T0 + 99, thing="elsewhere", updated_at=T0 + 100))
    got = alerts.alert("a1")
    assert got is not None and got.opened_at == T0 and got.thing == "basement-flood"


def test_active_alerts_leave_out_cleared_ones_and_filter_by_thing(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    alerts.upsert_alert(leak_alert(id="a2", thing="air-1", opened_at=T0 + 1, updated_at=T0 + 1))
    alerts.upsert_alert(leak_alert(id="a3", state="cleared", cleared_at=T0 + 2, updated_at=T0 + 2))
    assert [a.id for a in alerts.active_alerts()] == ["a1", "a2"]
    assert [a.id for a in alerts.active_alerts(thing="air-1")] == ["a2"]
    assert [a.id for a in alerts.alerts()] == ["a3", "a2", "a1"]


def test_open_alert_finds_the_rules_open_alert_on_a_thing_only(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert(state="cleared", cleared_at=T0 + 1, updated_at=T0 + 1))
    assert alerts.open_alert("leak", "basement-flood") is None
    alerts.upsert_alert(leak_alert(id="a2", opened_at=T0 + 5, updated_at=T0 + 5))
    found = alerts.open_alert("leak", "basement-flood")
    assert found is not None and found.id == "a2"
    assert alerts.open_alert("leak", "other-thing") is None


def test_unknown_alert_state_is_refused(alerts: AlertStore) -> None:
    with pytest.raises(AlertStoreError) as refused:
        alerts.upsert_alert(leak_alert(state="resolved"))
    assert refused.value.reason == "alert.state"


def test_history_lists_events_in_order_with_actor_and_detail(
    alerts: AlertStore, people: tuple[str, str]
) -> None:
    _, ada = people
    assert alerts.record(leak_alert(), "opened", time=T0, detail={"value": 1.0}) is not None
    claimed = leak_alert(state="claimed", claimed_by=ada, claimed_at=T0 + 30, updated_at=T0 + 30)
    alerts.record(claimed, "claimed", time=T0 + 30, actor=ada, detail={"note": "I'm going to check"})
    alerts.append_event("a1", "reminded", time=T0 + 20)
    history = alerts.history("a1")
    assert [(e.action, e.actor) for e in history] == [("opened", None), ("reminded", None), ("claimed", ada)]
    assert history[0].detail == {"value": 1.0}
    assert history[2].detail == {"note": "I'm going to check"}
    assert history[1].detail == {}


def test_a_stale_record_writes_no_history_line(alerts: AlertStore) -> None:
    alerts.record(leak_alert(updated_at=T0 + 10), "opened", time=T0 + 10)
    assert alerts.record(leak_alert(updated_at=T0), "retriggered", time=T0) is None
    assert [e.action for e in alerts.history("a1")] == ["opened"]


# -- channels ----------------------------------------------------------------------------------------


def test_listed_channels_mask_credentials_and_never_show_the_secret(
    alerts: AlertStore, people: tuple[str, str]
) -> None:
    _, ada = people
    alerts.add_channel(ada, "apprise", "ntfy://ada:hunter2pass@ntfy.example.org/flood", now=T0)
    alerts.add_channel(ada, "homeassistant", "http://ha.local:8123", HA_TOKEN, now=T0 + 1)
    listed = alerts.list_channels(ada)
    shown = repr(listed) + str(listed)
    assert "hunter2pass" not in shown and HA_TOKEN not in shown
    assert [c.kind for c in listed] == ["apprise", "homeassistant"]
    assert listed[0].target.startswith("ntfy://ada:****@ntfy.example.org/flood")
    assert listed[1].target == "http://ha.local:8123" and listed[1].has_secret


def test_endpoint_gives_the_full_target_and_secret_only_on_reveal(
    alerts: AlertStore, people: tuple[str, str]
) -> None:
    _, ada = people
    channel = alerts.add_channel(ada, "homeassistant", "http://ha.local:8123", HA_TOKEN, now=T0)
    endpoint = alerts.endpoint(channel.id)
    assert endpoint is not None and endpoint.secret is not None
    assert endpoint.secret.reveal() == HA_TOKEN and endpoint.target.reveal() == "http://ha.local:8123"
    assert HA_TOKEN not in repr(endpoint) and HA_TOKEN not in f"{endpoint.secret}"


def test_a_token_as_the_bare_user_part_is_masked() -> None:
    masked = mask_target("apprise", "ntfys://tk_wrentoken0123456789@ntfy.wren.example/wren-alerts")
    assert "tk_wrentoken" not in masked
    assert masked.startswith(f"ntfys://{MASK}@ntfy.wren.example/wren-alerts")


def test_a_telegram_bot_token_in_the_path_is_masked_too() -> None:
    masked = mask_target("apprise", "tgram://123456789:AAHsecretbottoken/98765")
    assert "AAHsecretbottoken" not in masked and masked.startswith("tgram://")


def test_channel_secret_stays_out_of_log_records(
    alerts: AlertStore, people: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, ada = people
    caplog.set_level(logging.DEBUG)
    channel = alerts.add_channel(ada, "homeassistant", "http://ha.local:8123", HA_TOKEN, now=T0)
    endpoint = alerts.endpoint(channel.id)
    logging.getLogger("test").info("sending via %s with %s", endpoint, endpoint and endpoint.secret)
    assert HA_TOKEN not in caplog.text


def test_channels_are_refused_with_a_reason(alerts: AlertStore, people: tuple[str, str]) -> None:
    _, ada = people
    cases = [
        ("sms", "tel:123", None, "channel.kind"),
        ("apprise", "nosuchservice://x", None, "channel.target"),
        ("homeassistant", "ha.local:8123", HA_TOKEN, "channel.target"),
        ("homeassistant", "http://ha.local:8123", None, "channel.secret"),
        ("homeassistant", "http://user:pw@ha.local:8123", HA_TOKEN, "channel.target"),
    ]
    for kind, target, secret, reason in cases:
        with pytest.raises(AlertStoreError) as refused:
            alerts.add_channel(ada, kind, target, secret, now=T0)
        assert refused.value.reason == reason, (kind, target)
    assert alerts.list_channels(ada) == []


def test_endpoints_list_enabled_channels_only(alerts: AlertStore, people: tuple[str, str]) -> None:
    _, ada = people
    first = alerts.add_channel(ada, "apprise", "json://127.0.0.1:9/a", now=T0)
    second = alerts.add_channel(ada, "apprise", "json://127.0.0.1:9/b", now=T0 + 1)
    assert alerts.set_channel_enabled(first.id, False) is True
    assert [e.channel_id for e in alerts.endpoints(ada)] == [second.id]
    assert alerts.set_channel_enabled("missing", True) is False


def test_a_channel_is_removed_only_by_its_resident(alerts: AlertStore, people: tuple[str, str]) -> None:
    admin, ada = people
    channel = alerts.add_channel(ada, "apprise", "json://127.0.0.1:9/a", now=T0)
    assert alerts.remove_channel(channel.id, admin) is False
    assert alerts.remove_channel(channel.id, ada) is True
    assert alerts.list_channels(ada) == []


def test_erasing_a_resident_removes_their_channels_and_keeps_the_delivery_log(
    alerts: AlertStore, people: tuple[str, str]
) -> None:
    admin, ada = people
    alerts.upsert_alert(leak_alert())
    channel = alerts.add_channel(ada, "apprise", "ntfy://ada:pw@ntfy.example.org/t", now=T0)
    alerts.add_channel(admin, "apprise", "json://127.0.0.1:9/a", now=T0)
    alerts.enqueue("a1", ada, f"apprise:{channel.id}", "opened", now=T0)
    assert alerts.erase_resident(ada) == 1
    assert alerts.list_channels(ada) == [] and len(alerts.list_channels(admin)) == 1
    assert len(alerts.deliveries("a1")) == 1


def test_secret_compares_by_value_and_prints_masked() -> None:
    assert Secret("x") == Secret("x") and Secret("x") != Secret("y")
    assert str(Secret("x")) == "****" and "x" not in repr(Secret("x"))


# -- delivery log -----------------------------------------------------------------------------------


def test_an_enqueued_delivery_is_pending_and_due_at_once(alerts: AlertStore, people: tuple[str, str]) -> None:
    _, ada = people
    alerts.upsert_alert(leak_alert())
    delivery_id = alerts.enqueue("a1", ada, "apprise:ch1", "opened", now=T0)
    assert [d.id for d in alerts.due(T0)] == [delivery_id]
    assert alerts.due(T0 - 1) == []
    got = alerts.delivery(delivery_id)
    assert got is not None
    assert (got.state, got.attempts, got.channel_kind, got.resident) == ("pending", 0, "apprise", ada)


def test_a_failed_attempt_waits_for_its_next_attempt(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    delivery_id = alerts.enqueue("a1", None, "mqtt", "opened", now=T0)
    alerts.mark_failed(delivery_id, "broker down", T0, T0 + 5)
    assert alerts.due(T0 + 4) == []
    (row,) = alerts.due(T0 + 5)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "broker down")


def test_giving_up_marks_the_delivery_failed_and_never_due_again(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    delivery_id = alerts.enqueue("a1", None, "mqtt", "opened", now=T0)
    alerts.mark_failed(delivery_id, "x" * 2000, T0, None)
    got = alerts.delivery(delivery_id)
    assert got is not None and got.state == "failed" and got.next_attempt_at is None
    assert got.last_error is not None and len(got.last_error) == 500
    assert alerts.due(T0 + 10**9) == []


def test_a_sent_delivery_counts_its_attempts_and_when(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    delivery_id = alerts.enqueue("a1", None, "mqtt", "opened", now=T0)
    alerts.mark_failed(delivery_id, "timeout", T0, T0 + 5)
    alerts.mark_sent(delivery_id, T0 + 5)
    (row,) = alerts.deliveries("a1")
    assert (row.state, row.attempts, row.sent_at, row.next_attempt_at) == ("sent", 2, T0 + 5, None)
    assert alerts.due(T0 + 10**9) == []


def test_due_returns_the_most_overdue_first_up_to_the_limit(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    late = alerts.enqueue("a1", None, "mqtt", "reminder", now=T0 + 10)
    early = alerts.enqueue("a1", None, "mqtt", "opened", now=T0)
    assert [d.id for d in alerts.due(T0 + 20)] == [early, late]
    assert [d.id for d in alerts.due(T0 + 20, limit=1)] == [early]


def test_a_malformed_channel_name_is_refused(alerts: AlertStore) -> None:
    alerts.upsert_alert(leak_alert())
    with pytest.raises(AlertStoreError) as refused:
        alerts.enqueue("a1", None, "apprise:ntfy://x", "opened", now=T0)
    assert refused.value.reason == "delivery.channel"
