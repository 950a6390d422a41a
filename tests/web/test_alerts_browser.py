"""Alerts in a real browser (Debian's Chromium): the kiosk's list updates live through /events and
live.js; a watcher signs in, sees the alert among "Alerts for me", acknowledges it and sees it
acknowledged. Screenshots of each step are kept in the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from hub.domain.alerts import AlertState

# fixtures: alert_hood (tests/web/conftest.py)

DEE_PASSWORD = "dee borrows things"


def test_the_kiosk_list_follows_alerts_live(browser: Browser, alert_hood, tmp_path: Path) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{alert_hood.server.url}/")
    expect(page.locator("#live")).to_have_attribute("data-state", "on")
    expect(page.locator("#no-alerts")).to_be_visible()

    (public,) = alert_hood.reading("street-flood", {"water_leak": True})
    alert_hood.reading("ada-cellar", {"water_leak": True})  # private: never on the kiosk

    item = page.locator(f'#alerts li[data-alert="{public}"]')
    expect(item).to_be_visible()
    expect(item.locator(".badge")).to_have_text("critical")
    expect(item.locator(".alert-title")).to_contain_text("Street flood sensor")
    expect(page.locator("#alerts li")).to_have_count(1)
    expect(page.locator("#no-alerts")).to_be_hidden()
    page.screenshot(path=tmp_path / "kiosk-alert.png")
    assert errors == []
    page.close()


def test_a_watcher_signs_in_and_acknowledges_an_alert(browser: Browser, alert_hood, tmp_path: Path) -> None:
    (alert_id,) = alert_hood.reading("street-flood", {"water_leak": True})
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

    page.goto(f"{alert_hood.server.url}/me")
    expect(page).to_have_url(f"{alert_hood.server.url}/login?next=/me")
    page.get_by_label("Pseudonym").fill("dee")
    page.get_by_label("Password").fill(DEE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    alert = page.locator(f'#my-alerts li[data-alert="{alert_id}"]')
    expect(alert).to_be_visible()
    expect(alert.locator(".alert-state")).to_have_text("active")
    expect(alert.locator(".alert-body")).to_contain_text("Water leak detected")
    page.screenshot(path=tmp_path / "1-alerts-for-me.png")
    alert.get_by_role("button", name="Acknowledge").click()

    expect(page.locator("#message")).to_have_text("Acknowledged.")
    expect(alert.locator(".alert-state")).to_have_text("acknowledged")
    expect(alert.locator(".alert-body")).to_contain_text("Acknowledged by dee")
    expect(alert.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(alert.get_by_role("button", name="Claim")).to_be_visible()
    page.screenshot(path=tmp_path / "2-acknowledged.png")
    assert alert_hood.service.engine.get(alert_id).state is AlertState.ACKNOWLEDGED
    assert errors == []
    assert all((tmp_path / f"{n}.png").stat().st_size > 0 for n in ("1-alerts-for-me", "2-acknowledged"))
    page.close()
