"""Home Assistant REST and notification channels."""
