"""The authorization matrix of the whole web app: every role × every route the app serves × the caller's
own things (private and shared) and someone else's shared thing, with the status written out per cell;
and CSRF on every unsafe route, cookie flags, and session ids kept out of URLs.

- The routes are read from the FastAPI app itself: a route added without a row in ``MATRIX`` fails
  ``test_every_route_of_the_app_has_a_matrix_row``.
- Someone else's *private* thing is not a column: for it every role must get exactly the answer of a
  thing that does not exist (same status, content type, body but for the id), on every route that
  names a thing, loan, alert, relation or rule
  (``test_a_private_thing_of_someone_else_answers_like_a_missing_one``).
- Roles: anonymous (no session), a resident related to nothing, the owner, a steward (relation), the
  lender, the borrower (a loan out), a watcher, an admin (role) and a keeper (the steward role), the last
  two related to nothing.
- The hub follows residents' own Home Assistant (a real, unstarted link manager over the same store), so
  /me/homeassistant and /api/v1/me/homeassistant are served: the owner has linked hers and shares an
  entity, so does someone else; every Home Assistant is a bound, never listening port on 127.0.0.1, so
  linking, listing and sharing are refused with what to do, never a 500. Nobody, admin included, sees or
  unshares another resident's entity: it answers like one that is not shared at all.
- Every unsafe route (POST, PUT, PATCH, DELETE) with a signed-in browser session and no or a wrong CSRF
  token answers 403 and changes no row of the store; with the right token, the matrix's status. /login
  and /join check their double-submit form cookie; the airrohr push (no session) is exempt.

One app serves the whole module (templates compiled once) over a copy of one prepared store; a request
that was not refused may have changed it, so the next one gets a fresh copy (SQLite backup, with fresh
in-memory parts). Requests go in process through Starlette's TestClient.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.testclient import TestClient
from webkit import NOW, Clock, Health, form_field

from hub.alerting import AlertService
from hub.domain.alert_rules import BooleanRule, Severity
from hub.domain.events import Reading
from hub.domain.livestate import LiveState
from hub.domain.model import (
    LendPolicy,
    Loan,
    LoanState,
    Relation,
    RelationKind,
    Role,
    Share,
    Thing,
    Visibility,
)
from hub.integrations.ha_source import HaLinkDesk, HaSource, SourceSettings
from hub.loans import LendingDesk
from hub.storage.accounts import Accounts
from hub.storage.alertstore import AlertStore
from hub.storage.catalog import Catalog
from hub.storage.directory import Directory
from hub.storage.embedded import EmbeddedSink
from hub.storage.halinks import HaLinks, HaShare
from hub.storage.sink import Point
from hub.storage.store import Store
from hub.telemetry import Telemetry
from hub.web import WebContext, create_app
from hub.web.auth import LoginThrottle
from hub.web.disclosure import ViewLog

ROLES = ("anonymous", "resident", "owner", "steward", "lender", "borrower", "watcher", "admin", "keeper")
#: the pseudonym playing each role (admin: the hub's first admin, related to none of these things;
#: keeper: a resident with the steward role, related to none of them)
PLAYERS = {
    "resident": "rita",
    "owner": "olga",
    "steward": "sam",
    "lender": "lena",
    "borrower": "bea",
    "watcher": "wes",
    "admin": "ada",
    "keeper": "kim",
}
#: rita's password, for the tests that sign in through the form
RITA_PASSWORD = "rita's long passphrase"
#: the caller's own private and shared thing (related to every relation role), and someone else's
THINGS = {"P": "p-box", "S": "s-box", "XS": "x-shared", "XP": "x-priv"}
UNMAPPED = "cellar-wifi-name"  # an unmapped field's value: only those who manage the thing see it
MISSING_THING = "no-thg"  # as long as "x-priv", so the bodies compare byte for byte after the swap
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
RULE = {"kind": "threshold", "measurement": "humidity", "above": 90, "severity": "minor"}
#: Home Assistant entities shared by the owner (olga) and by someone else (zed); long-lived access tokens
#: (a JWT's shape) that no answer may ever show, the last one only ever typed into a form
OWN_ENTITY, OTHERS_ENTITY, MISSING_ENTITY = "sensor.olga_rain", "sensor.zed_rain", "sensor.no_rain"
HA_TOKENS = {
    "olga": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJvbGdhIn0.b2xnYS1saW5rLXNpZ25hdHVyZQ",
    "zed": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ6ZWQifQ.emVkLWxpbmstc2lnbmF0dXJl",
    "typed": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0eXBlZCJ9.dHlwZWQtdG9rZW4tc2lnbmF0dXJl",
}

# (method, path) → {target: statuses for the ROLES in order}. Placeholders: {T} the target thing,
# {L} its loan, {A} its open alert, {R} the relation "wes watches it" (yan's watch on others' things),
# {U} its stored rule; {K} and {C} someone else's access token and channel (target "-"); {E} a shared
# Home Assistant entity: the owner's on P, someone else's on XS.
# Targets: "-" the route names no thing; "P"/"S" own private/shared; "XS" someone else's shared thing.
MATRIX_TEXT = """
# method route                              target anon resid owner stew lender borrow watch admin keeper
GET    /                                            -   200 200 200 200 200 200 200 200 200
GET    /openapi.json                                -   200 200 200 200 200 200 200 200 200
GET    /healthz                                     -   200 200 200 200 200 200 200 200 200
GET    /metrics                                     -   200 200 200 200 200 200 200 200 200
GET    /events                                      -   200 200 200 200 200 200 200 200 200
# the device push has its own credentials (ingest.ecosystems.airrohr.password), never a session's
POST   /api/v1/push/airrohr                         -   200 200 200 200 200 200 200 200 200
# sign-in and joining: forms before sign-in; the throttle answers 429 after five wrong tries
GET    /login                                       -   200 303 303 303 303 303 303 303 303
POST   /login                                       -   401 401 401 401 401 429 429 429 429
POST   /logout                                      -   303 303 303 303 303 303 303 303 303
GET    /join                                        -   200 200 200 200 200 200 200 200 200
POST   /join                                        -   400 400 400 400 400 429 429 429 429
# the resident's own pages; {K} and {C} are someone else's token and channel
GET    /me                                          -   303 200 200 200 200 200 200 200 200
GET    /me/audit                                    -   303 200 200 200 200 200 200 200 200
GET    /me/channels                                 -   303 200 200 200 200 200 200 200 200
POST   /me/channels                                 -   303 303 303 303 303 303 303 303 303
POST   /me/channels/{channel_id}/remove             -   303 404 404 404 404 404 404 404 404
GET    /me/password                                 -   303 200 200 200 200 200 200 200 200
POST   /me/password                                 -   303 400 400 400 400 400 400 400 400
GET    /me/tokens                                   -   303 200 200 200 200 200 200 200 200
POST   /me/tokens                                   -   303 201 201 201 201 201 201 201 201
POST   /me/tokens/{token_id}/revoke                 -   303 404 404 404 404 404 404 404 404
# the admin pages: the admin role (a steward relation to one thing opens none of them)
GET    /admin/residents                             -   303 403 403 403 403 403 403 200 403
POST   /admin/residents/role                        -   303 403 403 403 403 403 403 303 403
POST   /admin/invites                               -   303 403 403 403 403 403 403 200 403
GET    /admin/things                                -   303 403 403 403 403 403 403 200 200
GET    /admin/readers                               -   303 403 403 403 403 403 403 200 200
GET    /admin/relations                             -   303 403 403 403 403 403 403 200 200
GET    /admin/audit                                 -   303 403 403 403 403 403 403 200 200
GET    /admin/audit?thing={T}                       P   303 403 403 403 403 403 403 404 404
GET    /admin/audit?thing={T}                       S   303 403 403 403 403 403 403 200 403
GET    /admin/audit?thing={T}                       XS  303 403 403 403 403 403 403 200 403
POST   /admin/relations                             P   303 403 403 403 403 403 403 404 404
POST   /admin/relations                             S   303 403 403 403 403 403 403 303 303
POST   /admin/relations                             XS  303 403 403 403 403 403 403 303 303
POST   /admin/relations/{relation_id}/revoke        P   303 403 403 403 403 403 403 404 404
POST   /admin/relations/{relation_id}/revoke        S   303 403 403 403 403 403 403 303 303
POST   /admin/relations/{relation_id}/revoke        XS  303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}                     P   303 403 403 403 403 403 403 404 404
POST   /admin/things/{thing_id}                     S   303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}                     XS  303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}/retire              P   303 403 403 403 403 403 403 404 404
POST   /admin/things/{thing_id}/retire              S   303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}/retire              XS  303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}/tags                P   303 403 403 403 403 403 403 404 404
POST   /admin/things/{thing_id}/tags                S   303 403 403 403 403 403 403 303 303
POST   /admin/things/{thing_id}/tags                XS  303 403 403 403 403 403 403 303 303
# residents, relations and audit API
GET    /api/v1/residents                            -   401 200 200 200 200 200 200 200 200
GET    /api/v1/residents/{pseudonym}                -   401 200 200 200 200 200 200 200 200
GET    /api/v1/relations                            -   401 200 200 200 200 200 200 200 200
GET    /api/v1/relations?thing={T}                  P   401 404 200 200 200 200 200 404 404
GET    /api/v1/relations?thing={T}                  S   401 200 200 200 200 200 200 200 200
GET    /api/v1/relations?thing={T}                  XS  401 200 200 200 200 200 200 200 200
POST   /api/v1/relations                            P   401 404 201 201 403 403 403 404 404
POST   /api/v1/relations                            S   401 403 201 201 403 403 403 201 201
POST   /api/v1/relations                            XS  401 403 403 403 403 403 403 201 201
DELETE /api/v1/relations/{relation_id}              P   401 404 200 200 403 403 200 404 404
DELETE /api/v1/relations/{relation_id}              S   401 403 200 200 403 403 200 200 200
DELETE /api/v1/relations/{relation_id}              XS  401 403 403 403 403 403 403 200 200
GET    /api/v1/audit                                -   401 403 403 403 403 403 403 200 200
GET    /api/v1/audit?thing={T}                      P   401 403 403 403 403 403 403 404 404
GET    /api/v1/audit?thing={T}                      S   401 403 403 403 403 403 403 200 403
GET    /api/v1/audit?thing={T}                      XS  401 403 403 403 403 403 403 200 403
# things, readings, rules
GET    /api/v1/things                               -   200 200 200 200 200 200 200 200 200
GET    /api/v1/things/{thing_id}                    P   404 404 200 200 200 200 200 404 404
GET    /api/v1/things/{thing_id}                    S   200 200 200 200 200 200 200 200 200
GET    /api/v1/things/{thing_id}                    XS  200 200 200 200 200 200 200 200 200
GET    /api/v1/things/{thing_id}/readings           P   404 404 200 200 200 200 200 404 404
GET    /api/v1/things/{thing_id}/readings           S   200 200 200 200 200 200 200 200 200
GET    /api/v1/things/{thing_id}/readings           XS  200 200 200 200 200 200 200 200 200
GET    /things/{thing_id}                           P   303 404 200 200 200 200 200 404 404
GET    /things/{thing_id}                           S   303 200 200 200 200 200 200 200 200
GET    /things/{thing_id}                           XS  303 200 200 200 200 200 200 200 200
GET    /api/v1/things/{thing_id}/rules              P   401 404 200 200 403 403 403 404 404
GET    /api/v1/things/{thing_id}/rules              S   401 403 200 200 403 403 403 200 200
GET    /api/v1/things/{thing_id}/rules              XS  401 403 403 403 403 403 403 200 200
POST   /api/v1/things/{thing_id}/rules              P   401 404 201 201 403 403 403 404 404
POST   /api/v1/things/{thing_id}/rules              S   401 403 201 201 403 403 403 201 201
POST   /api/v1/things/{thing_id}/rules              XS  401 403 403 403 403 403 403 201 201
DELETE /api/v1/things/{thing_id}/rules/{rule_id}    P   401 404 204 204 403 403 403 404 404
DELETE /api/v1/things/{thing_id}/rules/{rule_id}    S   401 403 204 204 403 403 403 204 204
DELETE /api/v1/things/{thing_id}/rules/{rule_id}    XS  401 403 403 403 403 403 403 204 204
GET    /things/{thing_id}/rules                     P   303 404 200 200 403 403 403 404 404
GET    /things/{thing_id}/rules                     S   303 403 200 200 403 403 403 200 200
GET    /things/{thing_id}/rules                     XS  303 403 403 403 403 403 403 200 200
POST   /things/{thing_id}/rules                     P   303 404 303 303 403 403 403 404 404
POST   /things/{thing_id}/rules                     S   303 403 303 303 403 403 403 303 303
POST   /things/{thing_id}/rules                     XS  303 403 403 403 403 403 403 303 303
POST   /things/{thing_id}/rules/{rule_id}/delete    P   303 404 303 303 403 403 403 404 404
POST   /things/{thing_id}/rules/{rule_id}/delete    S   303 403 303 303 403 403 403 303 303
POST   /things/{thing_id}/rules/{rule_id}/delete    XS  303 403 403 403 403 403 403 303 303
# loans: every thing is out with its borrower, so borrowing again is a 409 for whoever may try
GET    /api/v1/loans                                -   401 200 200 200 200 200 200 200 200
GET    /api/v1/loans?thing={T}                      P   401 200 200 200 200 200 200 200 200
GET    /api/v1/loans?thing={T}                      S   401 200 200 200 200 200 200 200 200
GET    /api/v1/loans?thing={T}                      XS  401 200 200 200 200 200 200 200 200
POST   /api/v1/loans                                P   401 404 409 409 409 409 409 404 404
POST   /api/v1/loans                                S   401 409 409 409 409 409 409 409 409
POST   /api/v1/loans                                XS  401 409 409 409 409 409 409 409 409
GET    /api/v1/loans/{loan_id}                      P   401 404 200 200 200 200 404 404 404
GET    /api/v1/loans/{loan_id}                      S   401 200 200 200 200 200 200 200 200
GET    /api/v1/loans/{loan_id}                      XS  401 200 200 200 200 200 200 200 200
POST   /api/v1/loans/{loan_id}/approve              P   401 404 409 409 403 403 404 404 404
POST   /api/v1/loans/{loan_id}/approve              S   401 403 409 409 403 403 403 409 409
POST   /api/v1/loans/{loan_id}/approve              XS  401 403 403 403 403 403 403 409 409
POST   /api/v1/loans/{loan_id}/decline              P   401 404 409 409 403 403 404 404 404
POST   /api/v1/loans/{loan_id}/decline              S   401 403 409 409 403 403 403 409 409
POST   /api/v1/loans/{loan_id}/decline              XS  401 403 403 403 403 403 403 409 409
POST   /api/v1/loans/{loan_id}/cancel               P   401 404 409 409 403 409 404 404 404
POST   /api/v1/loans/{loan_id}/cancel               S   401 403 409 409 403 409 403 409 409
POST   /api/v1/loans/{loan_id}/cancel               XS  401 403 403 403 403 403 403 409 409
POST   /loans/{loan_id}/{decision}                  P   303 404 409 409 403 403 404 404 404
POST   /loans/{loan_id}/{decision}                  S   303 403 409 409 403 403 403 409 409
POST   /loans/{loan_id}/{decision}                  XS  303 403 403 403 403 403 403 409 409
POST   /api/v1/things/{thing_id}/checkout           P   401 404 409 409 409 409 409 404 404
POST   /api/v1/things/{thing_id}/checkout           S   401 409 409 409 409 409 409 409 409
POST   /api/v1/things/{thing_id}/checkout           XS  401 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/borrow                    P   303 404 409 409 409 409 409 404 404
POST   /things/{thing_id}/borrow                    S   303 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/borrow                    XS  303 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/reserve                   P   303 404 409 409 409 409 409 404 404
POST   /things/{thing_id}/reserve                   S   303 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/reserve                   XS  303 409 409 409 409 409 409 409 409
# returning: the borrower, the lender and the keepers; a resident never returns another's loan
POST   /api/v1/things/{thing_id}/return             P   401 404 200 200 200 200 403 404 404
POST   /api/v1/things/{thing_id}/return             S   401 403 200 200 200 200 403 200 200
POST   /api/v1/things/{thing_id}/return             XS  401 403 403 403 403 403 403 200 200
POST   /things/{thing_id}/return                    P   303 404 303 303 303 303 403 404 404
POST   /things/{thing_id}/return                    S   303 403 303 303 303 303 403 303 303
POST   /things/{thing_id}/return                    XS  303 403 403 403 403 403 403 303 303
POST   /api/v1/things/{thing_id}/waitlist           P   401 404 403 201 403 201 201 404 404
POST   /api/v1/things/{thing_id}/waitlist           S   401 201 403 201 403 201 201 201 201
POST   /api/v1/things/{thing_id}/waitlist           XS  401 201 201 201 201 201 201 201 201
DELETE /api/v1/things/{thing_id}/waitlist           P   401 404 409 409 409 409 409 404 404
DELETE /api/v1/things/{thing_id}/waitlist           S   401 409 409 409 409 409 409 409 409
DELETE /api/v1/things/{thing_id}/waitlist           XS  401 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/waitlist                  P   303 404 403 303 403 303 303 404 404
POST   /things/{thing_id}/waitlist                  S   303 303 403 303 403 303 303 303 303
POST   /things/{thing_id}/waitlist                  XS  303 303 303 303 303 303 303 303 303
POST   /things/{thing_id}/waitlist/leave            P   303 404 409 409 409 409 409 404 404
POST   /things/{thing_id}/waitlist/leave            S   303 409 409 409 409 409 409 409 409
POST   /things/{thing_id}/waitlist/leave            XS  303 409 409 409 409 409 409 409 409
# alerts: acknowledging needs a relation (or the steward/admin role on a shared thing)
GET    /api/v1/alerts                               -   200 200 200 200 200 200 200 200 200
POST   /api/v1/alerts/{alert_id}/{step}             P   401 404 200 200 404 200 200 404 404
POST   /api/v1/alerts/{alert_id}/{step}             S   401 404 200 200 404 200 200 200 200
POST   /api/v1/alerts/{alert_id}/{step}             XS  401 404 404 404 404 404 404 200 200
GET    /alerts/{alert_id}                           P   303 404 200 200 200 200 200 404 404
GET    /alerts/{alert_id}                           S   303 200 200 200 200 200 200 200 200
GET    /alerts/{alert_id}                           XS  303 200 200 200 200 200 200 200 200
POST   /alerts/{alert_id}/{step}                    P   303 404 303 303 404 303 303 404 404
POST   /alerts/{alert_id}/{step}                    S   303 404 303 303 404 303 303 303 303
POST   /alerts/{alert_id}/{step}                    XS  303 404 404 404 404 404 404 303 303
# a resident's own Home Assistant: only the owner has linked hers (the others: not linked, 409 / 404);
# reaching any Home Assistant fails (422 when linking; 502, the upstream's failure, when listing or
# sharing); another's entity answers like one not shared (404), for the admin too
GET    /me/homeassistant                            -   303 200 200 200 200 200 200 200 200
POST   /me/homeassistant/link                       -   303 422 422 422 422 422 422 422 422
POST   /me/homeassistant/unlink                     -   303 303 303 303 303 303 303 303 303
POST   /me/homeassistant/share                      -   303 422 422 422 422 422 422 422 422
POST   /me/homeassistant/unshare                    P   303 404 303 404 404 404 404 404 404
POST   /me/homeassistant/unshare                    XS  303 404 404 404 404 404 404 404 404
GET    /api/v1/me/homeassistant                     -   401 200 200 200 200 200 200 200 200
PUT    /api/v1/me/homeassistant                     -   401 422 422 422 422 422 422 422 422
DELETE /api/v1/me/homeassistant                     -   401 404 204 404 404 404 404 404 404
GET    /api/v1/me/homeassistant/entities            -   401 409 502 409 409 409 409 409 409
POST   /api/v1/me/homeassistant/shares              -   401 409 502 409 409 409 409 409 409
DELETE /api/v1/me/homeassistant/shares/{entity_id}  P   401 404 204 404 404 404 404 404 404
DELETE /api/v1/me/homeassistant/shares/{entity_id}  XS  401 404 404 404 404 404 404 404 404
"""


def _parse(text: str) -> dict[tuple[str, str], dict[str, tuple[int, ...]]]:
    table: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}
    for line in text.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        method, path, target, *statuses = line.split()
        assert len(statuses) == len(ROLES), line
        table.setdefault((method, path), {})[target] = tuple(int(s) for s in statuses)
    return table


# -- the routes of the app ---------------------------------------------------------------------------


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD and the static mount aside)."""
    found: set[tuple[str, str]] = set()

    def add(path: str | None, methods: set[str] | None) -> None:
        for method in methods or ():
            if path is not None and method != "HEAD":
                found.add((method, path))

    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI ≥ 0.16x keeps included routers as one route
            for c in contexts():
                add(c.path, c.methods)
        else:
            add(getattr(route, "path", None), getattr(route, "methods", None))
    return found


# -- the prepared world ----------------------------------------------------------------------------------


@dataclass
class World:
    """Ids in the prepared store, shared by every copy of it."""

    file: Path
    residents: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # pseudonym → (cookie, csrf)
    loans: dict[str, str] = field(default_factory=dict)  # thing → its loan
    alerts: dict[str, str] = field(default_factory=dict)
    watches: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    token_id: str = ""
    channel_id: str = ""
    entities: dict[str, str] = field(default_factory=dict)  # thing → a shared Home Assistant entity
    ha_url: str = ""  # every linked Home Assistant: a port that never answers


def _alerting(d: Directory, store: Store, clock: Clock, telemetry: Telemetry) -> AlertService:
    return AlertService(
        directory=d,
        catalog=Catalog(d, ttl=0.0, clock=clock),
        store=AlertStore(store),
        publish=lambda *_: None,
        telemetry=telemetry,
        rules=(BooleanRule("water_leak", id="water-leak", severity=Severity.CRITICAL),),
        clock=clock,
    )


def _build(directory: Path, ha_url: str) -> World:
    world = World(directory / "hub.sqlite", ha_url=ha_url)
    store = Store(f"sqlite:///{world.file}")
    store.migrate()
    d, accounts, clock = Directory(store), Accounts(store, hasher=FAST_HASH), Clock(NOW - 1000)
    ids = world.residents
    ids["ada"] = d.bootstrap_admin("ada", now=clock()).id
    for name in (*PLAYERS.values(), "zed", "yan"):
        if name != "ada":
            role = Role.STEWARD if name == PLAYERS["keeper"] else Role.RESIDENT
            ids[name] = d.add_resident(name, role=role, actor=ids["ada"], now=clock()).id
    accounts.set_password(ids["rita"], RITA_PASSWORD, now=clock())
    for name in PLAYERS.values():
        new = accounts.create_session(ids[name], now=NOW - 10)
        world.sessions[name] = (new.token, new.session.csrf_token)

    def thing(thing_id: str, visibility: Visibility, owner: str) -> None:
        shared = {"watcher_share": Share.DERIVED, "derived_from": ("water_leak",)}
        d.create_thing(
            Thing(id=thing_id, name=f"box {thing_id}", kind="tool", visibility=visibility, **shared),
            owner=ids[owner],
            actor=ids[owner],
            now=clock(),
        )

    def relate(who: str, thing_id: str, kind: RelationKind, **extra: Any) -> str:
        return d.grant(Relation("", ids[who], thing_id, kind, **extra), actor=ids[who], now=clock()).id

    def lend(thing_id: str, lender: str, borrower: str) -> None:
        relate(lender, thing_id, RelationKind.LENDS, policy=LendPolicy(loan_days=3))
        loan = Loan(
            f"loan-{thing_id}", thing_id, ids[borrower], ids[lender], LoanState.OUT, NOW - 500, NOW + 86400,
            out_at=NOW - 500,
        )  # fmt: skip
        d.save_loan(loan, actor=ids[lender], now=NOW - 500, action="loan.out")
        world.loans[thing_id] = loan.id

    for key in ("P", "S"):
        t = THINGS[key]
        thing(t, Visibility.PRIVATE if key == "P" else Visibility.PUBLIC, "olga")
        relate("sam", t, RelationKind.STEWARDS)
        lend(t, "lena", "bea")
        world.watches[t] = relate("wes", t, RelationKind.WATCHES)
    for key in ("XS", "XP"):
        t = THINGS[key]
        thing(t, Visibility.PRIVATE if key == "XP" else Visibility.PUBLIC, "zed")
        lend(t, "zed", "yan")
        world.watches[t] = relate("yan", t, RelationKind.WATCHES)

    telemetry = Telemetry()
    service = _alerting(d, store, clock, telemetry)
    service.start()
    for t in THINGS.values():
        world.rules[t] = service.add_rule(t, RULE, created_by=ids["olga" if t[0] != "x" else "zed"]).id
        service.on_reading(t, {"water_leak": True}, NOW - 100)
    deadline = time.monotonic() + 10
    while len(AlertStore(store).active_alerts()) < len(THINGS) and time.monotonic() < deadline:
        time.sleep(0.02)  # the alerting thread stores what the engine raised
    service.stop()
    world.alerts = {a.thing: a.id for a in AlertStore(store).active_alerts()}
    assert set(world.alerts) == set(THINGS.values()), world.alerts
    token, _ = accounts.create_token(ids["zed"], "zed's script", now=NOW - 100)
    world.token_id = token.id
    world.channel_id = AlertStore(store).add_channel(ids["zed"], "apprise", "json://zed.example/", now=NOW).id
    # the owner and someone else have each linked their Home Assistant and share one entity of it
    links = HaLinks(store)
    for who, entity in (("olga", OWN_ENTITY), ("zed", OTHERS_ENTITY)):
        links.link(ids[who], ha_url, HA_TOKENS[who], now=clock())
        rain = Thing(id=f"ha_link.{who}-rain", name="rain gauge", visibility=Visibility.PUBLIC)
        d.create_thing(rain, owner=ids[who], actor=ids[who], now=clock())
        links.add_share(HaShare(ids[who], entity, rain.id, "precipitation", False, clock()))
    world.entities = {THINGS["P"]: OWN_ENTITY, THINGS["XS"]: OTHERS_ENTITY, THINGS["XP"]: OTHERS_ENTITY}
    store.close()
    return world


@pytest.fixture(scope="module")
def ha_url() -> Iterator[str]:
    """A Home Assistant that never answers: a port bound on 127.0.0.1 but not listening, so every
    connection is refused at once and no other process can take the port while the module runs."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, ha_url: str) -> World:
    return _build(tmp_path_factory.mktemp("matrix-template"), ha_url)


class Case:
    """The module's one app and client over a copy of the prepared store. ``reset()`` puts a fresh copy
    (and fresh in-memory parts: live state, alert engine, login throttle, view log) under the same app,
    so templates are compiled once and only a request that may have changed something costs a copy."""

    def __init__(self, world: World, directory: Path) -> None:
        self.world, self.directory = world, directory
        self.clock, self.telemetry = Clock(NOW), Telemetry()
        self.sink = EmbeddedSink(directory / "ts.sqlite")
        self.sink.write_points(
            [Point(t, "native", {"humidity": 55.0}, int((NOW - 60) * 1e9)) for t in THINGS.values()]
        )
        self.store: Store | None = None
        self.copies = 0
        self.dirty = True
        self.app = create_app(self._context(), keepalive_interval=0.05, poll_interval=0.05)
        self.client = TestClient(self.app, base_url="http://hub", follow_redirects=False)

    def _context(self) -> WebContext:
        if self.store is not None:
            self.store.close()
            Path(self.store.url.database or "").unlink()
        self.copies += 1
        file = self.directory / f"hub-{self.copies}.sqlite"
        source = sqlite3.connect(self.world.file)
        target = sqlite3.connect(file)
        with target:
            source.backup(target)  # a consistent copy, WAL included
        source.close()
        target.close()
        self.store = store = Store(f"sqlite:///{file}")
        d, clock = Directory(store), self.clock
        live = LiveState()
        for t in THINGS.values():
            live.apply_reading(
                Reading(
                    t, "native", {"water_leak": True, "humidity": 55.0}, unmapped={"Wifi.SSId": UNMAPPED}
                ),
                at=NOW - 5,
            )
        service = _alerting(d, store, clock, self.telemetry)
        service.prepare()
        self.dirty = False
        return WebContext(
            live=live,
            catalog=Catalog(d, ttl=3600.0, clock=clock),
            telemetry=self.telemetry,
            health=Health(),
            version="9.8.7",
            clock=clock,
            directory=d,
            desk=LendingDesk(d, lambda *_: None, self.telemetry, clock=clock),
            accounts=Accounts(store, hasher=FAST_HASH),
            alerts=service,
            history=self.sink,
            push=lambda topic, payload: True,
            # the link manager as the hub builds it over this store, not started (no thread, no
            # connection until an operation needs one); its counters on a registry of its own
            homeassistant_source=HaSource(
                HaLinkDesk(HaLinks(store), d, SourceSettings(timeout_s=3.0), clock=clock),
                lambda topic, payload: True,
                Telemetry(),
            ),
        )

    def reset(self) -> None:
        """A fresh store copy when a request may have changed the last one; always a fresh throttle."""
        if self.dirty:
            self.app.state.ctx = self._context()
        self.app.state.login_throttle = LoginThrottle(self.clock)
        self.app.state.view_log = ViewLog(self.clock)
        self.client.cookies.clear()

    def close(self) -> None:
        self.client.close()
        self.sink.close()
        if self.store is not None:
            self.store.close()


@pytest.fixture(scope="module")
def case(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    shared = Case(world, tmp_path_factory.mktemp("matrix-case"))
    with shared.client:  # the app's lifespan runs once
        yield shared
    shared.close()


@pytest.fixture
def fresh(case: Case) -> Case:
    """The shared case, reset: nothing an earlier test did shows."""
    case.dirty = True
    case.reset()
    return case


# -- requests ------------------------------------------------------------------------------------------

#: JSON bodies of the API's unsafe requests; form fields of the pages' ({T} filled in)
JSON_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/loans": {"thing": "{T}"},
    "/api/v1/relations": {"resident": "rita", "thing": "{T}", "kind": "stewards"},
    "/api/v1/things/{thing_id}/rules": RULE,
    "/api/v1/alerts/{alert_id}/{step}": {},
    "/api/v1/push/airrohr": {"esp8266id": "77", "sensordatavalues": [{"value_type": "SDS_P1", "value": "3"}]},
    "/api/v1/me/homeassistant": {"url": "{H}", "token": HA_TOKENS["typed"]},
    "/api/v1/me/homeassistant/shares": {"entity_id": "sensor.new_rain", "visibility": "neighbors"},
}
FORM_BODIES: dict[str, dict[str, str]] = {
    "/login": {"pseudonym": "rita", "password": "not the password"},
    "/join": {
        "code": "no-such-code",
        "pseudonym": "newbie",
        "password": "x" * 12,
        "password_again": "x" * 12,
    },
    "/me/tokens": {"name": "a script"},
    "/me/password": {"current": "wrong", "password": "y" * 12, "password_again": "y" * 12},
    "/me/channels": {"url": "json://example.invalid/"},
    "/things/{thing_id}/rules": {"kind": "threshold", "measurement": "humidity", "above": "90"},
    "/things/{thing_id}/reserve": {"start": "", "days": "1"},
    "/admin/residents/role": {"pseudonym": "rita", "role": "steward"},
    "/admin/invites": {"role": "resident"},
    "/admin/things/{thing_id}": {"name": "Renamed", "visibility": "public", "share": "none", "place": ""},
    "/admin/things/{thing_id}/tags": {"tag": "0A0B0C0D"},
    "/admin/relations": {"pseudonym": "rita", "thing": "{T}", "kind": "stewards", "until": ""},
    "/me/homeassistant/link": {"url": "{H}", "token": HA_TOKENS["typed"]},
    "/me/homeassistant/share": {"entity_id": "sensor.new_rain", "visibility": "neighbors"},
    "/me/homeassistant/unshare": {"entity_id": "{E}"},
}
#: the concrete path each route is called on, by its template
CONCRETE = {
    "{thing_id}": "{T}",
    "{loan_id}": "{L}",
    "{alert_id}": "{A}",
    "{relation_id}": "{R}",
    "{rule_id}": "{U}",
    "{token_id}": "{K}",
    "{channel_id}": "{C}",
    "{entity_id}": "{E}",
    "{pseudonym}": "rita",
    "{step}": "acknowledge",
    "{decision}": "approve",
}


def concrete(path: str, world: World, thing: str) -> str:
    for name, placeholder in CONCRETE.items():
        path = path.replace(name, placeholder)
    values = {
        "{T}": thing,
        "{L}": world.loans.get(thing, f"loan-{thing}"),
        "{A}": world.alerts.get(thing, f"alert-{thing}"),
        "{R}": world.watches.get(thing, f"rel-{thing}"),
        "{U}": world.rules.get(thing, f"rule-{thing}"),
        "{K}": world.token_id,
        "{C}": world.channel_id,
        "{E}": world.entities.get(thing, MISSING_ENTITY),
        "{H}": world.ha_url,
    }
    for placeholder, value in values.items():
        path = path.replace(placeholder, value)
    return path


def request(
    case: Case, role: str, method: str, route: str, thing: str, *, csrf: str | None = "session"
) -> Any:
    """Call ``route`` as ``role`` on ``thing``; ``csrf`` "session" sends the session's token, None none,
    any other string that string."""
    world, client = case.world, case.client
    client.cookies.clear()
    headers: dict[str, str] = {}
    token = None
    if role != "anonymous":
        cookie, session_csrf = world.sessions[PLAYERS[role]]
        client.cookies.set("hub_session", cookie)
        token = session_csrf if csrf == "session" else csrf
    url = concrete(route, world, thing)
    route = route.split("?")[0]
    if method == "GET" and route == "/events":
        case.app.state.closing.set()  # the stream ends after its first events
    if method in ("GET", "HEAD"):
        return client.request(method, url, headers=headers)
    if token is not None:
        headers["X-CSRF-Token"] = token
    if route in JSON_BODIES:
        body = {
            k: concrete(v, world, thing) if isinstance(v, str) else v for k, v in JSON_BODIES[route].items()
        }
        if route == "/api/v1/push/airrohr":
            headers["X-Sensor"] = "esp8266-77"
        return client.request(method, url, json=body, headers=headers)
    form = {k: concrete(v, world, thing) for k, v in FORM_BODIES.get(route, {}).items()}
    if route in ("/login", "/join"):  # forms shown before sign-in: the double-submit cookie
        client.cookies.set("hub_form", "form-token")
        if csrf is not None:
            form["csrf_token"] = "form-token" if csrf == "session" else csrf
        headers.pop("X-CSRF-Token", None)
    elif token is not None:
        form["csrf_token"] = token
        headers.pop("X-CSRF-Token", None)
    return client.request(method, url, data=form, headers=headers)


MATRIX = _parse(MATRIX_TEXT)
#: the route parameters that name a thing, or something of one thing
THING_ROUTES = ("{thing_id}", "{loan_id}", "{alert_id}", "{relation_id}", "{rule_id}", "{entity_id}", "{T}")
#: routes whose body names the thing (or a Home Assistant entity shared as one)
BODY_THING_ROUTES = (
    "POST /api/v1/loans",
    "POST /api/v1/relations",
    "POST /admin/relations",
    "POST /me/homeassistant/unshare",
)


def names_a_thing(method: str, route: str) -> bool:
    return any(p in route for p in THING_ROUTES) or f"{method} {route}" in BODY_THING_ROUTES


def statuses(case: Case, method: str, route: str, target: str) -> list[Any]:
    """The response of every role in order. A request that was not refused may have changed the store,
    so the next role gets a fresh copy; refused ones share it (and the login throttle)."""
    thing = THINGS.get(target, "")
    case.reset()
    found = []
    for role in ROLES:
        if case.dirty:
            case.reset()
        response = request(case, role, method, route, thing)
        found.append(response)
        if method != "GET" and response.status_code < 400:
            case.dirty = True
    return found


def session_tokens(world: World) -> list[str]:
    return [cookie for cookie, _ in world.sessions.values()]


@pytest.mark.parametrize(("method", "route"), sorted(MATRIX))
def test_each_role_gets_the_written_status(case: Case, method: str, route: str) -> None:
    world = case.world
    wrong = []
    for target, expected in MATRIX[(method, route)].items():
        for role, want, response in zip(ROLES, expected, statuses(case, method, route, target), strict=True):
            got, body = response.status_code, response.text
            if got != want:
                wrong.append(f"{role} on {target}: {got}, expected {want}: {body[:200]!r}")
            # nobody unrelated reads the owner's private thing, or anyone its unmapped fields
            related = role in ("owner", "steward", "lender", "borrower", "watcher")  # to P, S
            if not related:
                assert THINGS["P"] not in body or (target == "P" and got >= 400), (role, target, body[:300])
            assert THINGS["XP"] not in body, (role, target, body[:300])
            manages = role in ("owner", "steward") or (role in ("admin", "keeper") and target in ("S", "XS"))
            if not manages:  # the admin and steward roles manage every thing that is not private
                assert UNMAPPED not in body, (role, target, body[:300])
            # a session id travels in its cookie only: never in a URL, a Location or a page
            location = response.headers.get("location", "")
            for token in session_tokens(world):
                assert token not in location and token not in body, (role, target)
            # a Home Assistant token is taken, never shown: not even its owner gets it back
            for token in HA_TOKENS.values():
                assert token not in body and token not in location, (role, target)
            if got == 303 and role == "anonymous":
                assert location.startswith("/login?next="), (role, target, location)
    assert not wrong, f"{method} {route}:\n" + "\n".join(wrong)


def test_every_route_of_the_app_has_a_matrix_row(case: Case) -> None:
    served = app_routes(case.app)
    written = {(method, route.split("?")[0]) for method, route in MATRIX}
    assert served - written == set(), "routes without a row in the authorization matrix"
    assert written - served == set(), "matrix rows for routes the app no longer serves"
    assert len(served) > 60  # the enumeration itself works


def test_a_resident_who_does_not_exist_answers_404_to_everyone_signed_in(fresh: Case) -> None:
    for role in ROLES[1:]:
        assert request(fresh, role, "GET", "/api/v1/residents/nobody", "").status_code == 404, role


def _masked(text: str, world: World, thing: str) -> str:
    for value in (
        world.entities.get(thing, MISSING_ENTITY),
        world.loans.get(thing, f"loan-{thing}"),
        world.alerts.get(thing, f"alert-{thing}"),
        world.watches.get(thing, f"rel-{thing}"),
        world.rules.get(thing, f"rule-{thing}"),
        thing,
    ):
        # case aside: a message that starts with the id starts with a capital
        text = re.sub(re.escape(value), "ID", text, flags=re.IGNORECASE)
    return text


@pytest.mark.parametrize(
    ("method", "route"), sorted({(m, r) for m, r in MATRIX if names_a_thing(m, r.split("?")[0])})
)
def test_a_private_thing_of_someone_else_answers_like_a_missing_one(
    fresh: Case, method: str, route: str
) -> None:
    """Every role, on someone else's private thing (its loan, alert, relation, rule): the answer of a
    thing that does not exist, status, body and content type alike."""
    world, differ = fresh.world, []
    for role in ROLES:
        hidden = request(fresh, role, method, route, THINGS["XP"])
        missing = request(fresh, role, method, route, MISSING_THING)
        assert hidden.status_code < 500 and hidden.status_code not in (200, 201, 204), (role, hidden.text)
        seen = (
            hidden.status_code,
            hidden.headers.get("content-type"),
            _masked(hidden.text, world, THINGS["XP"]),
        )
        if seen != (
            missing.status_code,
            missing.headers.get("content-type"),
            _masked(missing.text, world, MISSING_THING),
        ):
            differ.append(f"{role}: {hidden.status_code} {hidden.text[:150]!r} / "
                          f"{missing.status_code} {missing.text[:150]!r}")  # fmt: skip
    assert not differ, f"{method} {route}: a forbidden id answers unlike a missing one\n" + "\n".join(differ)


# -- CSRF on every unsafe route ------------------------------------------------------------------------

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
#: no session, its own credentials (ingest.ecosystems.airrohr.password): no CSRF token to ask for
CSRF_EXEMPT = {("POST", "/api/v1/push/airrohr")}


def _through(method: str, route: str) -> tuple[str, str, int]:
    """(role, target, status) of a signed-in caller the matrix lets through on this route, or, where
    every signed-in role is refused, one refused past the sign-in, role and CSRF checks (404, 409...)."""
    rows = MATRIX[(method, route)]
    candidates = [
        (role, target, want)
        for target, expected in rows.items()
        for role, want in zip(ROLES, expected, strict=True)
        if role != "anonymous" and want not in (403, 429)
    ]
    passed = [c for c in candidates if c[2] < 400]
    past_sign_in = [c for c in candidates if c[2] != 401]
    return (passed or past_sign_in or candidates)[0]


def snapshot(case: Case) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the case's store."""
    assert case.store is not None
    conn = sqlite3.connect(case.store.url.database or "")
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "route"), sorted(k for k in MATRIX if k[0] in UNSAFE and k not in CSRF_EXEMPT)
)
def test_every_unsafe_route_refuses_a_signed_in_browser_without_the_right_csrf_token(
    fresh: Case, method: str, route: str
) -> None:
    role, target, want = _through(method, route)
    thing = THINGS.get(target, "")
    before = snapshot(fresh)
    for token in (None, "not-the-token"):
        refused = request(fresh, role, method, route, thing, csrf=token)
        assert refused.status_code == 403, (role, target, token, refused.status_code, refused.text[:200])
    assert snapshot(fresh) == before, "a request refused for its CSRF token changed the store"
    done = request(fresh, role, method, route, thing)
    assert done.status_code == want != 403, (role, target, done.status_code, done.text[:200])


def test_every_unsafe_route_the_app_serves_is_checked(case: Case) -> None:
    served = {(m, r) for m, r in app_routes(case.app) if m in UNSAFE}
    checked = {(m, r.split("?")[0]) for m, r in MATRIX if m in UNSAFE} - CSRF_EXEMPT
    assert served - CSRF_EXEMPT == checked
    assert len(checked) > 30  # the enumeration itself works


def test_the_airrohr_push_needs_no_csrf_token_even_next_to_a_session(fresh: Case) -> None:
    for token in (None, "not-the-token"):
        answer = request(fresh, "owner", "POST", "/api/v1/push/airrohr", "", csrf=token)
        assert answer.status_code == 200, answer.text


# -- cookie flags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_cookies_are_secure_on_a_direct_https_request_and_the_session_stays_out_of_urls(
    fresh: Case, scheme: str, secure: bool
) -> None:
    with TestClient(fresh.app, base_url=f"{scheme}://hub", follow_redirects=False) as client:
        page = client.get("/login?next=/me")
        token = form_field(page.text, "csrf_token")
        answer = client.post(
            "/login",
            data={"pseudonym": "rita", "password": RITA_PASSWORD, "csrf_token": token, "next": "/me"},
        )
        assert answer.status_code == 303, answer.text
        cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
        cookies["hub_form@page"] = page.headers["set-cookie"]
        assert {"hub_session", "hub_device", "hub_form", "hub_form@page"} <= set(cookies)
        for name, header in cookies.items():
            flags = [f.strip().lower() for f in header.split(";")]
            assert ("secure" in flags) is secure, (name, header)
            assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags, (name, header)
        session = client.cookies.get("hub_session")
        assert session and session not in answer.headers["location"] and answer.headers["location"] == "/me"
        me = client.get("/me")
        assert me.status_code == 200 and session not in me.text
