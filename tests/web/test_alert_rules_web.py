"""A thing's alert rules on the web, over a real AlertService and store: who may open the page, the form's
errors next to their field, a rule that applies at once, and the REST API."""

from __future__ import annotations

import re

from hub.alerting import AlertService
from hub.domain.alerts import AlertState

# fixtures: alert_hood, alert_client, csrf (tests/web/conftest.py)


def rule_rows(html: str) -> dict[str, str]:
    """rule id → where it comes from (default, config, thing) as the rules table lists them."""
    return dict(re.findall(r'<tr data-rule="([^"]+)" data-source="([^"]+)">', html))


def test_only_keepers_open_a_things_rules_page(alert_hood, alert_client) -> None:
    assert alert_client("bruno").get("/things/street-flood/rules").status_code == 200
    assert alert_client("chen").get("/things/street-flood/rules").status_code == 403  # sees it, not a keeper
    assert alert_client("bruno").get("/things/ada-cellar/rules").status_code == 404  # private, not his
    assert alert_client("bruno").get("/things/nothing-here/rules").status_code == 404
    assert alert_client().get("/things/street-flood/rules").status_code == 303  # sign in first
    assert 'id="rules-link"' in alert_client("bruno").get("/things/street-flood").text
    assert 'id="rules-link"' not in alert_client("dee").get("/things/street-flood").text


def test_configured_rules_are_listed_read_only(alert_hood, alert_client) -> None:
    page = alert_client("bruno").get("/things/street-flood/rules").text
    assert rule_rows(page) == {"water-leak": "config", "humid": "config"}
    assert "/rules/water-leak/delete" not in page
    assert "Humidity above 80 % (clears below 70 %)" in page


def test_a_rule_added_on_the_page_applies_at_once_and_goes_with_its_deletion(
    alert_hood, alert_client, csrf
) -> None:
    bruno = alert_client("bruno")
    token = csrf(bruno, "/things/street-flood/rules")
    form = {"csrf_token": token, "kind": "threshold", "measurement": "temperature", "above": "30"}
    added = bruno.post("/things/street-flood/rules", data={**form, "severity": "major"})
    assert added.status_code == 303, added.text
    (record,) = alert_hood.service.store.rules(thing="street-flood")
    assert record.created_by == alert_hood.hood.ids["bruno"]
    assert record.data["above"] == 30.0 and record.data["severity"] == "major"
    page = bruno.get("/things/street-flood/rules").text
    assert rule_rows(page)[record.id] == "thing"
    assert "added by bruno" in page

    (alert_id,) = alert_hood.reading("street-flood", {"temperature": 31.0})
    assert alert_hood.service.engine.get(alert_id).rule == record.id

    deleted = bruno.post(f"/things/street-flood/rules/{record.id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert alert_hood.service.store.rules(thing="street-flood") == []
    assert alert_hood.service.engine.get(alert_id) is None  # its alert cleared with it
    assert record.id not in rule_rows(bruno.get("/things/street-flood/rules").text)


def test_the_rule_form_shows_each_error_next_to_its_field(alert_hood, alert_client, csrf) -> None:
    bruno = alert_client("bruno")
    token = csrf(bruno, "/things/street-flood/rules")
    base = {"csrf_token": token, "kind": "threshold", "measurement": "pm25"}

    crossed = bruno.post("/things/street-flood/rules", data={**base, "above": "30", "below": "40"})
    assert crossed.status_code == 422
    error = re.search(r'<span class="field-error" id="error-(\w+)" role="alert">([^<]+)</span>', crossed.text)
    assert error is not None
    assert error.group(1) == "below"
    assert "must be under" in error.group(2)
    assert 'value="30"' in crossed.text and 'value="40"' in crossed.text  # what was typed stays

    words = bruno.post("/things/street-flood/rules", data={**base, "above": "lots"})
    assert words.status_code == 422
    assert re.search(r'id="error-above" role="alert">[^<]*not a number', words.text)

    battery = bruno.post(
        "/things/street-flood/rules",
        data={"csrf_token": token, "kind": "low_battery", "below": "40", "clear_above": "20"},
    )
    assert battery.status_code == 422
    assert 'id="error-below"' in battery.text
    assert alert_hood.service.store.rules() == []


def test_the_rules_api_lists_adds_and_deletes(alert_hood, alert_client, csrf) -> None:
    bruno = alert_client("bruno")
    headers = {"X-CSRF-Token": csrf(bruno)}
    url = "/api/v1/things/street-flood/rules"
    listed = bruno.get(url).json()["rules"]
    assert {(r["id"], r["editable"]) for r in listed} == {("water-leak", False), ("humid", False)}

    bad = bruno.post(url, json={"kind": "stale", "after_s": -5}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "after_s"
    assert bruno.post(url, json={"kind": "overdue_loan"}, headers=headers).json()["field"] == "kind"
    assert bruno.post(url, json={"kind": "offline", "id": "mine"}, headers=headers).status_code == 422

    made = bruno.post(url, json={"kind": "offline", "debounce_s": 60, "severity": "warning"}, headers=headers)
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["kind"], rule["source"], rule["editable"], rule["created_by"]) == (
        "offline",
        "thing",
        True,
        "bruno",
    )
    assert rule["id"] in {r.id for r in alert_hood.service.engine.rules}

    chen = alert_client("chen")
    chen_headers = {"X-CSRF-Token": csrf(chen)}
    assert chen.get(url).status_code == 403
    assert chen.delete(f"{url}/{rule['id']}", headers=chen_headers).status_code == 403
    assert bruno.delete(f"{url}/water-leak", headers=headers).status_code == 404  # configured: not here
    assert bruno.delete(f"{url}/{rule['id']}", headers=headers).status_code == 204
    assert rule["id"] not in {r.id for r in alert_hood.service.engine.rules}


def test_a_stored_rule_is_loaded_when_alerting_starts_again(alert_hood, alert_client, csrf) -> None:
    bruno = alert_client("bruno")
    token = csrf(bruno, "/things/street-flood/rules")
    form = {"csrf_token": token, "kind": "boolean", "measurement": "smoke", "when": "true"}
    assert bruno.post("/things/street-flood/rules", data=form).status_code == 303
    (record,) = alert_hood.service.store.rules()
    service = alert_hood.service
    service.stop()
    again = AlertService(
        directory=service.directory,
        catalog=service.catalog,
        store=service.store,
        publish=lambda *_: None,
        telemetry=type(service.telemetry)(),
        rules=service.configured,
        clock=service.clock,
    )
    again.start()
    try:
        assert record.id in {r.id for r in again.engine.rules}
        again.on_reading("street-flood", {"smoke": True}, service.clock())
        assert [a.state for a in again.open_alerts() if a.rule == record.id] == [AlertState.ACTIVE]
    finally:
        again.stop()
