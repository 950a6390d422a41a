"""A resident in a real browser (Debian's Chromium): sign in, open a tool's page, borrow it, see it out
to them, return it. Screenshots of each step are kept in the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect
from webkit import PASSWORDS, Neighborhood

from hub.domain.model import LoanState
from hub.web import WebServer


def test_resident_signs_in_borrows_a_tool_and_returns_it(
    browser: Browser, neighborhood: Neighborhood, hood_server: WebServer, tmp_path: Path
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

    page.goto(f"{hood_server.url}/things/drill")
    expect(page).to_have_url(f"{hood_server.url}/login?next=/things/drill")
    page.get_by_label("Pseudonym").fill("dee")
    page.get_by_label("Password").fill(PASSWORDS["dee"])
    page.screenshot(path=tmp_path / "1-login.png")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{hood_server.url}/things/drill")
    expect(page.get_by_role("heading", name="Cordless drill")).to_be_visible()
    expect(page.locator("#custody")).to_have_text("available")
    expect(page.locator('#people li[data-kind="owns"]')).to_contain_text("bruno")
    page.screenshot(path=tmp_path / "2-tool.png")
    page.get_by_role("button", name="Borrow now").click()

    expect(page.locator("#message")).to_have_text("It is out to you now.")
    expect(page.locator("#custody")).to_contain_text("out: held by you")
    expect(page.get_by_role("button", name="Borrow now")).to_have_count(0)
    expect(page.get_by_role("button", name="Join the waitlist")).to_have_count(0)  # not for the holder
    page.screenshot(path=tmp_path / "3-borrowed.png")
    assert [loan.state for loan in neighborhood.directory.loans(thing="drill")] == [LoanState.OUT]

    page.goto(f"{hood_server.url}/me")
    row = page.locator('#my-loans tr[data-thing="drill"]')
    expect(row).to_contain_text("out")
    page.screenshot(path=tmp_path / "4-my-page.png")
    row.get_by_role("button", name="Return").click()

    expect(page.locator("#message")).to_have_text("It is back.")
    expect(page.locator("#custody")).to_have_text("available")
    page.screenshot(path=tmp_path / "5-returned.png")
    assert [loan.state for loan in neighborhood.directory.loans(thing="drill")] == [LoanState.RETURNED]
    assert errors == []
    shots = ("1-login", "2-tool", "3-borrowed", "4-my-page", "5-returned")
    assert all((tmp_path / f"{name}.png").stat().st_size > 0 for name in shots)
    page.close()
