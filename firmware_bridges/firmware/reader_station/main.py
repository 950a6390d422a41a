"""Reader station: an ESP32 running MicroPython with an RDM6300 or a PN532 (HSU) on UART2.

It publishes exactly what ``hub-bridge serial`` publishes: ``<base>/readers/<id>/scan`` with
``{"tag": "<uppercase hex>", "time": <epoch seconds>}`` at QoS 1, and ``<base>/readers/<id>/availability``
``online`` (retained) with a retained ``offline`` last will. ``"time"`` is left out while the clock
has not been set by NTP, so the hub uses the arrival time instead of a 1970 or 2000 date.

One cooperative loop, no threads: feed the watchdog, read the UART, keep Wi-Fi, NTP and MQTT up
(reconnecting with backoff), deliver queued scans. Scans wait in a bounded in-RAM queue while the
broker is out of reach (oldest dropped first, counted) and leave it only once the broker has
acknowledged them. Settings come from ``config.py`` (see ``config.example.py``).

Hardware modules (``machine``, ``network``, ``ntptime``, ``umqtt.simple``) are only touched through
the objects handed to the classes below, so the logic also runs on CPython for the tests.
"""

import json
import socket
import time

import machine
import network
import ntptime
import pn532
import rdm6300
from umqtt.simple import MQTTClient, MQTTException

TAG = rdm6300.TAG  # the parsers share their event kinds: ("tag", id) and ("reject", reason)
REJECT = rdm6300.REJECT

MIN_EPOCH = 1577836800  # 2020-01-01: anything earlier is an unset clock, never a real scan time
EPOCH_2000 = 946684800  # seconds from 1970 to 2000, the epoch of older MicroPython ports
UNKNOWN_AGE_MS = 86400000  # beyond a day the ms tick counter may have wrapped: age no longer known
MQTT_KEEPALIVE_S = 60
PUBACK_TIMEOUT_S = 5
PROBE_TIMEOUT_S = 2
NTP_RESYNC_MS = 6 * 3600 * 1000
LOOP_SLEEP_MS = 10
DELIVER_PER_STEP = 5  # bounded so the UART is read between publishes

_REFUSED = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "broker unavailable",
    4: "bad user name or password (config.py MQTT_USER, MQTT_PASSWORD)",
    5: "not authorized (the broker's ACL for MQTT_USER)",
}


def log(event, **fields):
    """One console line, ``event key=value …`` (the USB serial console is the station's log)."""
    print(event, " ".join([f"{k}={v}" for k, v in fields.items()]))


class ConfigError(ValueError):
    """config.py is missing a setting or has an unusable one; the message names the key."""


class Settings:
    """The station's settings from a ``config`` module, with defaults and checks."""

    DEFAULTS = (
        ("MQTT_PORT", 1883),
        ("MQTT_USER", None),  # then READER_ID: the broker's ACL lets a user write only its own topics
        ("BASE_TOPIC", "neighborhood"),
        ("READER", "rdm6300"),
        ("UART_ID", 2),
        ("UART_RX", 16),
        ("UART_TX", 17),
        ("NTP_HOST", "pool.ntp.org"),
        ("QUEUE_SIZE", 200),
        ("DEBOUNCE_MS", 1000),
        ("WATCHDOG_MS", 30000),
    )
    REQUIRED = ("WIFI_SSID", "WIFI_PASSWORD", "MQTT_HOST", "MQTT_PASSWORD", "READER_ID")

    def __init__(self, config):
        for key in self.REQUIRED:
            value = getattr(config, key, None)
            if value is None or value == "":
                raise ConfigError(f"config.py: {key} is required (see config.example.py)")
            setattr(self, key.lower(), value)
        for key, default in self.DEFAULTS:
            setattr(self, key.lower(), getattr(config, key, default))
        if not valid_id(self.reader_id):
            raise ConfigError(
                f"config.py: READER_ID {self.reader_id!r} is not a valid id "
                "(letters, digits, _ . : -, starting with a letter or digit, at most 64)"
            )
        if self.reader not in ("rdm6300", "pn532"):
            raise ConfigError(f"config.py: READER {self.reader!r} must be 'rdm6300' or 'pn532'")
        if self.mqtt_user is None:
            self.mqtt_user = self.reader_id
        for key in ("QUEUE_SIZE", "DEBOUNCE_MS", "MQTT_PORT"):
            if not isinstance(getattr(self, key.lower()), int) or getattr(self, key.lower()) < 1:
                raise ConfigError(f"config.py: {key} must be a positive whole number")
        if not isinstance(self.watchdog_ms, int) or (self.watchdog_ms and self.watchdog_ms < 10000):
            raise ConfigError("config.py: WATCHDOG_MS must be 0 (off) or at least 10000")
        self.scan_topic = f"{self.base_topic}/readers/{self.reader_id}/scan"
        self.availability_topic = f"{self.base_topic}/readers/{self.reader_id}/availability"
        self.baud = 9600 if self.reader == "rdm6300" else 115200


def valid_id(text):
    """The hub's id rule (hub.ingest.native.ID_PATTERN) without ``re`` repetition counts."""
    if not isinstance(text, str) or not 1 <= len(text) <= 64 or not _id_char(text[0], ""):
        return False
    return all(_id_char(c, "_.:-") for c in text)


def _id_char(c, extra):
    return "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in extra


class Clock:
    """Millisecond ticks for timers, and epoch seconds once NTP has set the real-time clock."""

    def __init__(self):
        self.synced = False
        # Ports built with the 2000 epoch count time.time() from 2000-01-01; the hub wants 1970.
        self._offset = EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0

    def ticks_ms(self):
        return time.ticks_ms()

    def diff(self, later, earlier):
        return time.ticks_diff(later, earlier)

    def elapsed_ms(self, since):
        return self.diff(self.ticks_ms(), since)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def epoch(self):
        """Whole seconds since 1970, or None while the clock is not known to be right."""
        if not self.synced:
            return None
        now = int(time.time()) + self._offset
        return now if now >= MIN_EPOCH else None

    def sync(self, host):
        """Set the clock from NTP; True when it now reads a plausible date."""
        ntptime.host = host
        try:
            ntptime.settime()
        except Exception as exc:  # OSError on timeout, IndexError or OSError when DNS fails
            log("ntp failed", host=host, error=repr(exc))
            return self.synced
        self.synced = int(time.time()) + self._offset >= MIN_EPOCH
        return self.synced


class Backoff:
    """When to try again: at once the first time, then 1×, 2×, 4× … ``first_ms`` up to ``max_ms``."""

    def __init__(self, clock, first_ms, max_ms):
        self._clock = clock
        self.first_ms = first_ms
        self.max_ms = max_ms
        self.delay_ms = 0
        self._last = None

    def ready(self):
        return self._last is None or self._clock.elapsed_ms(self._last) >= self.delay_ms

    def failed(self):
        self._last = self._clock.ticks_ms()
        self.delay_ms = min(self.delay_ms * 2, self.max_ms) if self.delay_ms else self.first_ms

    def reset(self):
        self.delay_ms = 0
        self._last = None


class Debouncer:
    """One presentation of a tag is one scan: a tag is new unless last *seen* within ``window_ms``
    (an RDM6300 repeats its frame every ~50 ms, a PN532 poll finds the card every round)."""

    _PRUNE_AT = 64

    def __init__(self, clock, window_ms):
        self._clock = clock
        self.window_ms = window_ms
        self._seen = {}

    def accept(self, tag, now):
        last = self._seen.get(tag)
        self._seen[tag] = now
        if len(self._seen) > self._PRUNE_AT:
            self._seen = {t: s for t, s in self._seen.items() if self._clock.diff(now, s) <= self.window_ms}
        return last is None or self._clock.diff(now, last) > self.window_ms


class ScanQueue:
    """FIFO of scans ``[tag, epoch or None, ticks]`` with a fixed capacity; when full the oldest is
    dropped and counted, and the overflow is logged once per episode."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.dropped = 0
        self._items = []
        self._full_logged = False

    def put(self, scan):
        if len(self._items) >= self.capacity:
            self._items.pop(0)
            self.dropped += 1
            if not self._full_logged:
                log("scan queue full", capacity=self.capacity, action="drop_oldest")
                self._full_logged = True
        self._items.append(scan)

    def peek(self):
        return self._items[0] if self._items else None

    def pop(self):
        self._items.pop(0)
        if not self._items:
            self._full_logged = False

    def forget_old_ages(self, clock):
        """Scans without a clock time whose age the tick counter can no longer vouch for keep none."""
        now = clock.ticks_ms()
        for scan in self._items:
            if scan[1] is None and scan[2] is not None and clock.diff(now, scan[2]) > UNKNOWN_AGE_MS:
                scan[2] = None

    def __len__(self):
        return len(self._items)


def scan_payload(scan, clock):
    """The scan's JSON. A scan made before NTP answered gets its time back-dated from the tick
    counter once the clock is set; with no trustworthy time the key is left out."""
    tag, at, ticks = scan
    if at is None and ticks is not None:
        now = clock.epoch()
        if now is not None:
            at = now - clock.elapsed_ms(ticks) // 1000
    message = {"tag": tag}
    if at is not None and at >= MIN_EPOCH:
        message["time"] = at
    return json.dumps(message)


class Rdm6300Reader:
    """An RDM6300 speaks on its own: read what the UART has and parse it."""

    def __init__(self, uart):
        self._uart = uart
        self._parser = rdm6300.Rdm6300Parser()

    def poll(self):
        data = self._uart.read()
        return self._parser.feed(data) if data else []


class Pn532Reader:
    """A PN532 never speaks first: wake it and send SAMConfiguration and RFConfiguration, then
    InListPassiveTarget every ``poll_ms``. Each command gets an ACK and then its answer; one not
    answered in time is aborted with an ACK, and after ``reinit_after`` silences the chip is woken
    and configured again. Non-blocking: each ``poll`` does what is due and returns."""

    def __init__(self, uart, clock, poll_ms=100, ack_ms=500, response_ms=1000, reinit_after=3):
        self._uart = uart
        self._clock = clock
        self._parser = pn532.Pn532Parser()
        self.poll_ms = poll_ms
        self.ack_ms = ack_ms
        self.response_ms = response_ms
        self.reinit_after = reinit_after
        self.configured = False
        self._next = pn532.SAM_CONFIGURATION
        self._pending = None
        self._acked = False
        self._since = None  # when the pending command was sent (or ACKed), or the last one ended
        self._wait_ms = 0
        self._failures = 0
        self._silence_logged = False

    def poll(self):
        events = []
        data = self._uart.read()
        if data:
            for kind, value in self._parser.feed(data):
                if kind == pn532.ACK:
                    if self._pending is not None:
                        self._acked = True
                        self._since = self._clock.ticks_ms()
                elif kind == pn532.NACK:
                    if self._pending is not None:
                        self._failed("nack")
                elif kind == pn532.FRAME:
                    # Anything but our answer (a late answer to an aborted command) is ignored.
                    tfi, command, _ = value
                    pending = self._pending
                    ours = pending is not None and (tfi, command) == (pn532.TFI_CHIP, pending + 1)
                    if ours and self._acked:
                        self._answered()
                else:
                    events.append((kind, value))  # tags follow their answer frame
        if self._pending is not None:
            limit = self.response_ms if self._acked else self.ack_ms
            if self._clock.elapsed_ms(self._since) > limit:
                self._failed("timeout")
        elif self._since is None or self._clock.elapsed_ms(self._since) >= self._wait_ms:
            self._send(self._next)
        return events

    def _send(self, command):
        if command == pn532.SAM_CONFIGURATION:
            frame = pn532.WAKEUP + pn532.sam_configuration()
        elif command == pn532.RF_CONFIGURATION:
            frame = pn532.rf_configuration_max_retries()
        else:
            frame = pn532.in_list_passive_target()
        self._uart.write(frame)
        self._pending = command
        self._acked = False
        self._since = self._clock.ticks_ms()

    def _answered(self):
        done = self._pending
        self._pending = None
        self._since = self._clock.ticks_ms()
        self._wait_ms = 0
        if done == pn532.SAM_CONFIGURATION:
            self._next = pn532.RF_CONFIGURATION
        elif done == pn532.RF_CONFIGURATION:
            self.configured = True
            self._silence_logged = False
            self._next = pn532.IN_LIST_PASSIVE_TARGET
            log("pn532 configured", polling="106kbps_type_a")
        else:
            self._failures = 0
            self._wait_ms = self.poll_ms

    def _failed(self, why):
        self._uart.write(pn532.ACK_FRAME)  # abort the pending command before the next one
        self._pending = None
        self._since = self._clock.ticks_ms()
        self._wait_ms = 0
        if self.configured:
            self._failures += 1
            if self._failures < self.reinit_after:
                return
            log("pn532 stopped answering", why=why, action="waking_again")
            self.configured = False
            self._failures = 0
        else:
            if not self._silence_logged:
                log("no answer from pn532", why=why, hint="check wiring (PN532 TX to RX pin), HSU switches")
                self._silence_logged = True
            self._wait_ms = 2000
        self._next = pn532.SAM_CONFIGURATION


class WifiLink:
    """Station-mode Wi-Fi: ``up()`` says whether it is connected and, when not, (re)starts the
    association with backoff. ``wlan.connect`` returns at once; the loop keeps running meanwhile."""

    def __init__(self, wlan, ssid, password, backoff):
        self._wlan = wlan
        self._ssid = ssid
        self._password = password
        self._backoff = backoff
        self._was_up = False

    def up(self):
        if self._wlan.isconnected():
            if not self._was_up:
                log("wifi up", ssid=self._ssid, ip=self._wlan.ifconfig()[0])
                self._was_up = True
                self._backoff.reset()
            return True
        if self._was_up:
            log("wifi lost", ssid=self._ssid, action="reconnecting")
            self._was_up = False
        if self._backoff.ready():
            self._backoff.failed()  # counts as failed until isconnected() says otherwise
            try:
                self._wlan.connect(self._ssid, self._password)
            except OSError as exc:  # e.g. "Wifi Internal Error" while a previous attempt still runs
                log("wifi connect failed", ssid=self._ssid, error=repr(exc))
        return False


def tcp_probe(host, port):
    """Raise OSError unless a TCP connection to the broker opens within PROBE_TIMEOUT_S.

    umqtt.simple connects without a timeout; against a powered-off broker host that blocks far
    longer than the watchdog allows, so a short probe goes first."""
    addr = socket.getaddrinfo(host, port)[0][-1]
    sock = socket.socket()
    try:
        sock.settimeout(PROBE_TIMEOUT_S)
        sock.connect(addr)
    finally:
        sock.close()


class BrokerLink:
    """The MQTT session: last will, ``online`` on connect, QoS 1 publishes with a bounded wait
    for PUBACK, keepalive pings. Any failure drops the session; ``connect`` is retried with backoff."""

    def __init__(self, settings, make_client, backoff, clock, probe=tcp_probe):
        self._settings = settings
        self._make_client = make_client
        self._probe = probe
        self._clock = clock
        self.backoff = backoff
        self.client = None
        self.connects = 0
        self._last_sent = 0
        self._outage_logged = False

    @property
    def connected(self):
        return self.client is not None

    def connect(self):
        """One attempt; True when connected and ``online`` was acknowledged."""
        s = self._settings
        client = None
        try:
            self._probe(s.mqtt_host, s.mqtt_port)
            client = self._make_client()
            client.set_last_will(s.availability_topic, b"offline", retain=True, qos=1)
            client.connect()
            self.client = client
            self._publish(s.availability_topic, b"online", retain=True)
        except MQTTException as exc:
            code = exc.args[0] if exc.args else None
            reason = _REFUSED.get(code, f"code {code}")
            self._lost(client, f"broker {s.mqtt_host}:{s.mqtt_port} refused the connection: {reason}")
            return False
        except Exception as exc:  # OSError from the network; umqtt asserts on a non-MQTT answer
            self._lost(client, f"cannot reach broker {s.mqtt_host}:{s.mqtt_port}: {exc!r}")
            return False
        self.connects += 1
        self.backoff.reset()
        self._outage_logged = False
        log("mqtt connected", broker=f"{s.mqtt_host}:{s.mqtt_port}", client_id=client_id(s))
        return True

    def publish(self, topic, payload, retain=False):
        """QoS 1; True once the broker acknowledged. On failure the session is dropped."""
        try:
            self._publish(topic, payload, retain)
        except Exception as exc:  # OSError (timeout, reset); umqtt asserts on a garbled answer
            self._lost(self.client, f"publish failed: {exc!r}")
            return False
        return True

    def keepalive(self):
        """Ping between publishes so the broker keeps the session, and notice a closed connection."""
        try:
            if self._clock.elapsed_ms(self._last_sent) >= MQTT_KEEPALIVE_S * 1000 // 3:
                self.client.ping()
                self._last_sent = self._clock.ticks_ms()
            self.client.check_msg()  # reads PINGRESP; raises OSError when the broker closed the socket
        except Exception as exc:
            self._lost(self.client, f"connection lost: {exc!r}")

    def _publish(self, topic, payload, retain):
        self.client.sock.settimeout(PUBACK_TIMEOUT_S)  # umqtt waits for PUBACK without a limit
        self.client.publish(topic, payload, retain=retain, qos=1)
        self._last_sent = self._clock.ticks_ms()

    def _lost(self, client, message):
        sock = getattr(client, "sock", None)  # None when the connect never opened one
        if sock is not None:
            try:
                sock.close()
            except OSError as exc:
                log("mqtt socket close failed", error=repr(exc))
        self.client = None
        self.backoff.failed()
        if not self._outage_logged:
            log("mqtt down", reason=message, action="retrying", retry_in_ms=self.backoff.delay_ms)
            self._outage_logged = True


def client_id(settings):
    return f"reader-station-{settings.reader_id}"


class Station:
    """The loop's one step, and the counters a console line reports."""

    def __init__(self, settings, reader, wifi, broker, clock, watchdog=None):
        self.settings = settings
        self.reader = reader
        self.wifi = wifi
        self.broker = broker
        self.clock = clock
        self.watchdog = watchdog
        self.queue = ScanQueue(settings.queue_size)
        self.debouncer = Debouncer(clock, settings.debounce_ms)
        self.ntp_backoff = Backoff(clock, 30000, 600000)
        self.scans = 0
        self.published = 0
        self.rejections = {}
        self._synced_at = None
        self._aged_at = clock.ticks_ms()

    def step(self):
        if self.watchdog is not None:
            self.watchdog.feed()
        for kind, value in self.reader.poll():
            if kind == TAG:
                self.scanned(value)
            elif kind == REJECT:
                self._rejected(value)
        if self.clock.elapsed_ms(self._aged_at) >= 60000:
            self.queue.forget_old_ages(self.clock)
            self._aged_at = self.clock.ticks_ms()
        if not self.wifi.up():
            return
        self._keep_time()
        if not self.broker.connected and self.broker.backoff.ready():
            self.broker.connect()
        if self.broker.connected:
            self.deliver()
        if self.broker.connected:
            self.broker.keepalive()

    def scanned(self, tag):
        """A tag the reader saw: queued as a scan unless it is the same presentation as before."""
        now = self.clock.ticks_ms()
        if not self.debouncer.accept(tag, now):
            return
        self.scans += 1
        log("tag scanned", tag=tag, queued=len(self.queue) + 1)
        self.queue.put([tag, self.clock.epoch(), now])

    def deliver(self):
        """Publish queued scans, oldest first; each leaves the queue only once acknowledged."""
        for _ in range(DELIVER_PER_STEP):
            scan = self.queue.peek()
            if scan is None:
                return
            if not self.broker.publish(self.settings.scan_topic, scan_payload(scan, self.clock)):
                return
            self.queue.pop()
            self.published += 1

    def run(self):
        log(
            "station started",
            reader=self.settings.reader,
            topic=self.settings.scan_topic,
            queue=self.settings.queue_size,
            watchdog_ms=self.settings.watchdog_ms,
        )
        while True:
            self.step()
            self.clock.sleep_ms(LOOP_SLEEP_MS)

    def _keep_time(self):
        due = self._synced_at is None or self.clock.elapsed_ms(self._synced_at) >= NTP_RESYNC_MS
        if not due or not self.ntp_backoff.ready():
            return
        if self.clock.sync(self.settings.ntp_host):
            self._synced_at = self.clock.ticks_ms()
            self.ntp_backoff.reset()
            log("clock set", epoch=self.clock.epoch(), host=self.settings.ntp_host)
        else:
            self.ntp_backoff.failed()

    def _rejected(self, reason):
        count = self.rejections.get(reason, 0) + 1
        self.rejections[reason] = count
        if count == 1 or count % 100 == 0:  # a noisy line must not flood the console
            log("frame rejected", reason=reason, count=count)


def build(settings):
    """The station wired to the ESP32's UART, Wi-Fi, MQTT client and watchdog."""
    clock = Clock()
    uart = machine.UART(
        settings.uart_id,
        baudrate=settings.baud,
        bits=8,
        parity=None,
        stop=1,
        rx=settings.uart_rx,
        tx=settings.uart_tx,
        timeout=0,
        rxbuf=1024,
    )
    reader = Rdm6300Reader(uart) if settings.reader == "rdm6300" else Pn532Reader(uart, clock)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wifi = WifiLink(wlan, settings.wifi_ssid, settings.wifi_password, Backoff(clock, 10000, 60000))

    def make_client():
        return MQTTClient(
            client_id(settings),
            settings.mqtt_host,
            port=settings.mqtt_port,
            user=settings.mqtt_user,
            password=settings.mqtt_password,
            keepalive=MQTT_KEEPALIVE_S,
        )

    broker = BrokerLink(settings, make_client, Backoff(clock, 1000, 60000), clock)
    watchdog = machine.WDT(timeout=settings.watchdog_ms) if settings.watchdog_ms else None
    return Station(settings, reader, wifi, broker, clock, watchdog)


def main():
    try:
        import config
    except ImportError:
        log("config.py missing", hint="copy config.example.py to config.py, fill it in, upload it")
        return
    try:
        settings = Settings(config)
    except ConfigError as exc:
        log("config error", error=str(exc))
        return
    if settings.mqtt_user != settings.reader_id:
        log(
            "warning",
            detail="MQTT_USER differs from READER_ID: the hub's broker ACL only lets a reader "
            "write under its own user name",
        )
    build(settings).run()


if __name__ == "__main__":
    main()
