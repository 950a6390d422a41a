"""From MQTT messages to typed events: the router and one decoder module per device ecosystem."""
