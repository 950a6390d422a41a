"""/me/channels over a real alert store: an apprise URL is checked by apprise and never shown in full."""

from __future__ import annotations

import re

# fixtures: alert_hood, alert_client, csrf (tests/web/conftest.py)

SECRET = "hunter2-not-for-eyes"


def test_a_channel_is_added_shown_masked_and_removed(alert_hood, alert_client, csrf) -> None:
    dee = alert_client("dee")
    token = csrf(dee, "/me/channels")
    url = f"ntfys://dee:{SECRET}@ntfy.example.org/street-alerts"
    added = dee.post("/me/channels", data={"csrf_token": token, "url": url})
    assert added.status_code == 303
    assert SECRET not in added.text

    page = dee.get("/me/channels").text
    (shown,) = re.findall(r"<td><code>([^<]+)</code>", page)
    assert SECRET not in page
    assert shown.startswith("ntfys://") and "ntfy.example.org" in shown
    (channel,) = alert_hood.service.store.endpoints(alert_hood.hood.ids["dee"])
    assert channel.target.reveal() == url  # kept in full for sending, shown masked

    removed = dee.post(f"/me/channels/{channel.channel_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert alert_hood.service.store.list_channels(alert_hood.hood.ids["dee"]) == []


def test_a_url_apprise_does_not_know_is_refused_without_echoing_it(alert_hood, alert_client, csrf) -> None:
    dee = alert_client("dee")
    token = csrf(dee, "/me/channels")
    refused = dee.post("/me/channels", data={"csrf_token": token, "url": f"nosuchservice://{SECRET}@x"})
    assert refused.status_code == 422
    assert "Apprise does not recognise this URL" in refused.text
    assert SECRET not in refused.text
    assert alert_hood.service.store.list_channels(alert_hood.hood.ids["dee"]) == []


def test_channels_are_private_to_their_resident(alert_hood, alert_client, csrf) -> None:
    dee = alert_client("dee")
    dee.post("/me/channels", data={"csrf_token": csrf(dee, "/me/channels"), "url": "ntfys://ntfy.sh/dee-x"})
    (channel,) = alert_hood.service.store.list_channels(alert_hood.hood.ids["dee"])
    chen = alert_client("chen")
    assert "dee-x" not in chen.get("/me/channels").text
    stolen = chen.post(f"/me/channels/{channel.id}/remove", data={"csrf_token": csrf(chen, "/me/channels")})
    assert stolen.status_code == 404
    assert dee.post("/me/channels", data={"url": "ntfys://ntfy.sh/y"}).status_code == 403  # no CSRF token
    assert len(alert_hood.service.store.list_channels(alert_hood.hood.ids["dee"])) == 1
