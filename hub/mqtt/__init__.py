"""The MQTT side of the hub: client, embedded broker, publishing hub state."""
