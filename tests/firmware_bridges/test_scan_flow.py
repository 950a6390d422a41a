"""Debouncing, the bounded scan queue and --mqtt URL parsing: the pure parts of the bridge runtime."""

from __future__ import annotations

import pytest

from firmware_bridges.broker_url import parse_broker_url
from firmware_bridges.debounce import Debouncer
from firmware_bridges.scan_queue import Scan, ScanQueue


def test_debounce_card_held_on_reader_is_one_scan() -> None:
    debouncer = Debouncer(1.0)
    # an RDM6300 repeating every 50 ms for 5 s
    accepted = [debouncer.accept("01000734E0", i * 0.05) for i in range(100)]
    assert accepted.count(True) == 1


def test_debounce_card_presented_again_after_window_is_a_new_scan() -> None:
    debouncer = Debouncer(1.0)
    assert debouncer.accept("A", 0.0)
    assert not debouncer.accept("A", 0.5)
    assert debouncer.accept("A", 1.6)  # lifted for 1.1 s
    assert debouncer.accept("B", 1.6)  # another tag is never held back by A


def test_debounce_memory_stays_bounded_under_many_tags() -> None:
    debouncer = Debouncer(1.0)
    for i in range(10_000):
        debouncer.accept(f"{i:08X}", float(i))
    assert len(debouncer._last_seen) <= Debouncer._PRUNE_AT + 1


def test_scan_queue_full_drops_oldest_and_counts() -> None:
    queue = ScanQueue(capacity=3)
    for i in range(5):
        queue.put(Scan(f"T{i}", float(i)))
    assert queue.dropped == 2
    assert len(queue) == 3
    head = queue.peek(timeout=0)
    assert head is not None and head.tag == "T2"
    queue.done(head)
    assert queue.peek(0) == Scan("T3", 3.0)


def test_scan_queue_done_after_head_was_dropped_removes_nothing_else() -> None:
    queue = ScanQueue(capacity=1)
    first = Scan("A", 0.0)
    queue.put(first)
    in_flight = queue.peek(0)
    queue.put(Scan("B", 1.0))  # drops A while it is being published
    queue.done(in_flight)
    assert queue.peek(0) == Scan("B", 1.0)


def test_mqtt_url_user_password_host_port() -> None:
    url = parse_broker_url("mqtt://bridge:s%40cret@broker.local:1884", {})
    assert (url.host, url.port, url.tls, url.username, url.password) == (
        "broker.local",
        1884,
        False,
        "bridge",
        "s@cret",
    )


def test_mqtt_url_defaults_and_tls_port() -> None:
    assert parse_broker_url("mqtt://h", {}).port == 1883
    tls = parse_broker_url("mqtts://h", {})
    assert (tls.port, tls.tls) == (8883, True)


def test_mqtt_password_from_environment_when_not_in_url() -> None:
    assert parse_broker_url("mqtt://bridge@h", {"HUB_MQTT_PASSWORD": "pw"}).password == "pw"
    assert parse_broker_url("mqtt://bridge:url@h", {"HUB_MQTT_PASSWORD": "pw"}).password == "url"


def test_mqtt_password_not_shown_in_repr() -> None:
    assert "hunter2" not in repr(parse_broker_url("mqtt://u:hunter2@h", {}))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "port"),
        ("mqtt://h/topic", "path"),
        ("h:1883", "scheme"),
    ],
)
def test_mqtt_url_errors_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_broker_url(url, {})


def test_mqtt_url_error_never_echoes_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_broker_url("mqtt://u:hunter2@h/x", {})
    assert "hunter2" not in str(info.value)
