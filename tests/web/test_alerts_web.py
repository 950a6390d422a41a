"""Alerts on the web over a real AlertService and store: the kiosk's graded list (page, API, live stream),
acting on an alert from /me with CSRF, 404 alike for forbidden and missing, and the history page."""

from __future__ import annotations

import re

from waiting import wait_for

from hub.domain.alerts import AlertState

# fixtures: alert_hood, alert_client, csrf, open_stream (tests/web/conftest.py)


def alert_ids(html: str) -> list[str]:
    return re.findall(r'data-alert="([^"]+)"', html)


def test_kiosk_shows_a_public_alert_and_not_a_private_one(alert_hood, alert_client, open_stream) -> None:
    stream = open_stream(f"{alert_hood.server.url}/events")
    assert stream.next("alerts").json() == {"alerts": []}

    (public,) = alert_hood.reading("street-flood", {"humidity": 91.5})
    (private,) = alert_hood.reading("ada-cellar", {"water_leak": True})

    live = stream.next("alerts").json()["alerts"]
    assert [a["id"] for a in live] == [public]
    kiosk = alert_client()
    page = kiosk.get("/")
    assert page.status_code == 200
    assert alert_ids(page.text) == [public]
    assert "Ada&#39;s cellar" not in page.text and "ada-cellar" not in page.text
    listed = kiosk.get("/api/v1/alerts").json()["alerts"]
    assert [a["id"] for a in listed] == [public]
    # the owner shares only a derived state with everyone: no humidity value on the kiosk
    assert "91" not in listed[0]["body"] and "91" not in page.text.split('id="alerts"')[1].split("</ul>")[0]
    assert listed[0]["body"] == live[0]["body"]
    assert listed[0]["severity"] == "minor" and listed[0]["state"] == "active"
    # its owner reads the value; ada (admin) sees her cellar's leak; chen only the public one
    owner = alert_client("bruno").get("/api/v1/alerts").json()["alerts"]
    assert "91.5" in owner[0]["body"]
    assert {a["id"] for a in alert_client("ada").get("/api/v1/alerts").json()["alerts"]} == {public, private}
    assert [a["id"] for a in alert_client("chen").get("/api/v1/alerts").json()["alerts"]] == [public]


def test_a_watcher_acknowledges_then_claims_from_the_web_and_the_state_follows(
    alert_hood, alert_client, csrf
) -> None:
    (alert_id,) = alert_hood.reading("street-flood", {"water_leak": True})
    dee = alert_client("dee")
    me = dee.get("/me")
    assert alert_ids(me.text) == [alert_id]
    assert f'action="/alerts/{alert_id}/acknowledge"' in me.text
    token = csrf(dee)

    refused = dee.post(f"/alerts/{alert_id}/acknowledge", data={})
    assert refused.status_code == 403
    forged = dee.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert alert_hood.service.engine.get(alert_id).state is AlertState.ACTIVE

    done = dee.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"] == "/me?done=alert-acknowledge#alerts"
    alert = alert_hood.service.engine.get(alert_id)
    assert alert.state is AlertState.ACKNOWLEDGED
    assert alert.acknowledged_by == alert_hood.hood.ids["dee"]
    assert 'data-state="acknowledged"' in dee.get("/me").text

    claimed = dee.post(
        f"/alerts/{alert_id}/claim", data={"csrf_token": token, "note": "I'm going to check the drain"}
    )
    assert claimed.status_code == 303
    alert = alert_hood.service.engine.get(alert_id)
    assert alert.state is AlertState.CLAIMED
    assert alert.claimed_by == alert_hood.hood.ids["dee"]
    assert alert.claim_note == "I'm going to check the drain"
    page = dee.get("/me").text
    assert f'action="/alerts/{alert_id}/release"' in page
    assert f'action="/alerts/{alert_id}/acknowledge"' not in page
    # the kiosk says who is on it, by pseudonym
    assert "claimed by dee" in alert_client().get("/").text

    # the history page shows each step with its time and who did it
    wait_for(lambda: len(alert_hood.service.store.history(alert_id)) >= 3, 5, "the history to be stored")
    history = dee.get(f"/alerts/{alert_id}")
    assert history.status_code == 200
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", history.text)
    assert [(what, who) for _, what, who in rows] == [
        ("opened", "the hub"),
        ("acknowledged", "you"),
        ("claimed", "you"),
    ]
    assert all(when.endswith("UTC") for when, _, _ in rows)
    assert "acknowledged</td><td>dee" in alert_client("bruno").get(f"/alerts/{alert_id}").text


def test_the_api_acts_for_a_token_or_a_session_with_its_csrf_header(alert_hood, alert_client, csrf) -> None:
    (alert_id,) = alert_hood.reading("street-flood", {"water_leak": True})
    bruno = alert_client("bruno")
    assert bruno.post(f"/api/v1/alerts/{alert_id}/claim", json={"note": "on it"}).status_code == 403
    answer = bruno.post(
        f"/api/v1/alerts/{alert_id}/claim", json={"note": "on it"}, headers={"X-CSRF-Token": csrf(bruno)}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["claimed_by"]) == ("claimed", "bruno")
    assert "on it" in body["body"]
    # dee may not release bruno's claim: the lifecycle says why
    dee = alert_client("dee")
    again = dee.post(f"/api/v1/alerts/{alert_id}/release", headers={"X-CSRF-Token": csrf(dee)})
    assert again.status_code == 409
    assert again.json()["reason"] == "not_claimer"


def test_an_unrelated_resident_gets_the_same_404_as_for_a_missing_alert(
    alert_hood, alert_client, csrf
) -> None:
    (private,) = alert_hood.reading("ada-cellar", {"water_leak": True})
    (public,) = alert_hood.reading("street-flood", {"water_leak": True})
    chen = alert_client("chen")
    headers = {"X-CSRF-Token": csrf(chen)}

    def refusal(alert_id: str) -> tuple[int, dict]:
        response = chen.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=headers)
        return response.status_code, response.json()

    missing = refusal("no-such-alert")
    assert missing == (404, {"reason": "not_found", "detail": "no open alert with id 'no-such-alert'"})
    for alert_id in (private, public):  # a private thing's, and a public one chen may see but not handle
        status, body = refusal(alert_id)
        assert (status, body) == (
            404,
            {**missing[1], "detail": missing[1]["detail"].replace("no-such-alert", alert_id)},
        )
    page = chen.post(f"/alerts/{private}/acknowledge", data={"csrf_token": headers["X-CSRF-Token"]})
    assert page.status_code == 404
    assert chen.get(f"/alerts/{private}").status_code == 404  # nor its history
    assert chen.get(f"/alerts/{public}").status_code == 200  # a public thing's history is the neighbors'
    assert {a.state for a in alert_hood.service.open_alerts()} == {AlertState.ACTIVE}
