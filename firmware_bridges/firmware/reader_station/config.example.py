"""Settings of one reader station. Copy to ``config.py``, fill in, and upload both to the board.

No value here is a real secret: the MQTT password is made at hub set-up
(``mosquitto_passwd /etc/mosquitto/hub.passwd <READER_ID>``), one user per reader.
"""

# Wi-Fi (2.4 GHz; the ESP32 has no 5 GHz radio).
WIFI_SSID = "your-network"
WIFI_PASSWORD = "your-wifi-password"

# The hub's broker. An IP address avoids a DNS lookup on every reconnect.
MQTT_HOST = "192.168.1.10"
MQTT_PORT = 1883
# The broker's ACL lets a reader write only under its own user name, so the user is the reader id;
# leave MQTT_USER out to use READER_ID.
# MQTT_USER = "workshop-door"
MQTT_PASSWORD = ""  # required: the password made for this reader's user
BASE_TOPIC = "neighborhood"  # the hub's mqtt.base_topic

# This reader's id in topics: letters, digits, _ . : - (at most 64, starting with a letter or digit).
READER_ID = "workshop-door"

# "rdm6300" (125 kHz, UART 9600) or "pn532" (13.56 MHz NFC, HSU 115200).
READER = "rdm6300"
UART_ID = 2
UART_RX = 16  # ESP32 pin that receives from the reader's TX
UART_TX = 17  # ESP32 pin that sends to the reader's RX (PN532 only; the RDM6300 only talks)

NTP_HOST = "pool.ntp.org"  # or the hub's own address if it serves NTP
QUEUE_SIZE = 200  # scans kept in RAM while the broker is out of reach; the oldest go first
DEBOUNCE_MS = 1000  # a tag held on the reader is one scan; lifted this long, the next is a new one
WATCHDOG_MS = 30000  # reset the board if the loop stalls this long; 0 turns it off (development)
