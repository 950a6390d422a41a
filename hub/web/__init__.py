"""Dashboard, REST API, health and metrics endpoints."""
