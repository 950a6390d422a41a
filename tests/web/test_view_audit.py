"""thing.view in the audit log: who opened a thing's page or asked the API for it, at most once per
viewer and thing per hour, and /me/audit where the owner reads it."""

from __future__ import annotations

import re

# fixtures: neighborhood, client_for (tests/web/conftest.py)


def views(neighborhood, thing: str) -> list[tuple[str, str]]:
    """(viewer pseudonym, via) of each thing.view entry of a thing, oldest first."""
    names = {rid: name for name, rid in neighborhood.ids.items()}
    return [
        (names[e.actor], e.detail["via"])
        for e in neighborhood.directory.audit(thing=thing)
        if e.action == "thing.view"
    ]


def test_a_neighbor_viewing_a_thing_is_logged_once_an_hour(neighborhood, client_for) -> None:
    dee = client_for("dee")
    assert dee.get("/things/drill").status_code == 200
    assert dee.get("/things/drill").status_code == 200
    assert dee.get("/api/v1/things/drill").status_code == 200  # same viewer, same hour: not again
    assert views(neighborhood, "drill") == [("dee", "page")]

    neighborhood.clock.advance(3601)
    assert dee.get("/api/v1/things/drill").status_code == 200
    assert views(neighborhood, "drill") == [("dee", "page"), ("dee", "api")]


def test_owners_and_things_one_may_not_see_leave_no_view(neighborhood, client_for) -> None:
    bruno = client_for("bruno")
    assert bruno.get("/things/drill").status_code == 200
    assert bruno.get("/api/v1/things/drill").status_code == 200
    assert bruno.get("/things/ada-cellar").status_code == 404
    assert bruno.get("/api/v1/things/ada-cellar").status_code == 404
    assert client_for().get("/api/v1/things/drill").status_code == 404  # the kiosk: not public
    assert views(neighborhood, "drill") == []
    assert views(neighborhood, "ada-cellar") == []


def test_my_audit_page_lists_who_saw_my_things(neighborhood, client_for) -> None:
    client_for("dee").get("/things/drill")
    client_for("chen").get("/api/v1/things/drill")
    page = client_for("bruno").get("/me/audit")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr data-action="thing.view" data-thing="drill">\s*<td>[^<]+</td><td class="who">([^<]+)</td>',
        page.text,
    )
    assert rows == ["chen", "dee"]  # newest first, by pseudonym
    assert "thing.create" in page.text  # and what changed: bruno created the drill
    # dee's own page shows her view (by her), not chen's
    mine = client_for("dee").get("/me/audit").text
    assert re.findall(
        r'data-action="thing.view"[^>]*>\s*<td>[^<]+</td><td class="who">([^<]+)</td>', mine
    ) == ["you"]
