"""/healthz status codes and /metrics exposition."""

from __future__ import annotations

import httpx

from hub.telemetry import Telemetry


def test_healthz_ok_is_200_with_version_and_components(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": "9.8.7",
        "components": {"mqtt": {"status": "ok", "detail": "connected to 127.0.0.1:1883"}},
    }


def test_healthz_degraded_is_still_200(http: httpx.Client, health) -> None:
    health.report = {
        "mqtt": {"status": "ok", "detail": ""},
        "timeseries": {"status": "degraded", "detail": "writing to spool"},
    }
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_healthz_any_component_down_is_503(http: httpx.Client, health) -> None:
    health.report = {
        "mqtt": {"status": "down", "detail": "broker refused the connection"},
        "timeseries": {"status": "degraded", "detail": "writing to spool"},
    }
    response = http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["components"]["mqtt"] == {"status": "down", "detail": "broker refused the connection"}


def test_healthz_failing_probe_reports_down_not_500(http: httpx.Client, health) -> None:
    health.error = RuntimeError("store locked")
    response = http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["health"]["detail"] == "health probe failed: store locked"


def test_healthz_unreadable_component_status_counts_as_down(http: httpx.Client, health) -> None:
    health.report = {"spool": {"status": "fine"}}
    response = http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["spool"]["status"] == "down"


def test_metrics_is_prometheus_text_with_hub_counters(http: httpx.Client, telemetry: Telemetry) -> None:
    telemetry.messages.inc(3)
    telemetry.rejections.labels(source="native", reason="bad_json").inc()
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "hub_messages_received_total 3.0" in text
    assert 'hub_rejections_total{reason="bad_json",source="native"} 1.0' in text
    for name in ("hub_points_stored_total", "hub_points_spooled_total", "hub_mqtt_connected"):
        assert f"\n{name} " in text, name
