"""Privacy grading: coarse locations, contacts only through a relation, pseudonyms, derived state."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.model import (
    Contact,
    LendPolicy,
    Location,
    Relation,
    RelationKind,
    Resident,
    Share,
    Thing,
    Visibility,
)
from hub.domain.privacy import (
    FORMER_NEIGHBOR,
    coarse_location,
    contact_for,
    derived_state,
    location_for,
    public_pseudonym,
    visible_values,
)

NOW = 1_790_000_000.0
DAY = 86_400.0
M_PER_DEG = 111_195.0  # metres per degree of latitude, close enough for test offsets


def metres_between(a: Location, b: Location) -> float:
    """Equirectangular distance; exact enough over a few hundred metres."""
    assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
    mean_lat = math.radians((a.lat + b.lat) / 2)
    dy = (a.lat - b.lat) * M_PER_DEG
    dx = (a.lon - b.lon) * M_PER_DEG * math.cos(mean_lat)
    return math.hypot(dx, dy)


def moved(point: Location, north_m: float = 0.0, east_m: float = 0.0) -> Location:
    assert point.lat is not None and point.lon is not None
    lat = point.lat + north_m / M_PER_DEG
    return Location(lat=lat, lon=point.lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))))


HOME = Location(lat=52.5200081, lon=13.4049543)


# --- coarse_location ---------------------------------------------------------------------------------


def test_two_points_ten_metres_apart_in_one_cell_give_the_same_coarse_location() -> None:
    centre = coarse_location(HOME)
    assert centre is not None
    for offsets in (((-5.0, 0.0), (5.0, 0.0)), ((0.0, -5.0), (0.0, 5.0)), ((-3.0, -4.0), (3.0, 4.0))):
        (n1, e1), (n2, e2) = offsets
        a, b = moved(centre, n1, e1), moved(centre, n2, e2)
        assert metres_between(a, b) == pytest.approx(10.0, abs=0.1)
        assert coarse_location(a) == coarse_location(b) == centre


def test_coarse_location_never_carries_the_exact_coordinates() -> None:
    coarse = coarse_location(HOME)
    assert coarse is not None and coarse.lat is not None and coarse.lon is not None
    assert coarse.lat != HOME.lat and coarse.lon != HOME.lon
    assert "5200081" not in repr(coarse) and "4049543" not in repr(coarse)
    assert metres_between(coarse, HOME) <= 50 * math.sqrt(2) + 1


@pytest.mark.parametrize("lat", [0.0, 45.0, 60.0, 69.65, -33.9])
def test_cells_are_about_one_hundred_metres_wide_at_any_latitude(lat: float) -> None:
    centre = coarse_location(Location(lat=lat, lon=10.0))
    assert centre is not None
    east = coarse_location(moved(centre, east_m=100.0))
    north = coarse_location(moved(centre, north_m=100.0))
    assert east is not None and north is not None
    assert east != centre and north != centre
    assert metres_between(centre, east) == pytest.approx(100.0, abs=2.0)
    assert metres_between(centre, north) == pytest.approx(100.0, abs=2.0)
    assert coarse_location(moved(centre, north_m=40.0, east_m=-40.0)) == centre


@given(lat=st.floats(-80.0, 80.0), lon=st.floats(-179.0, 179.0))
def test_coarse_location_is_within_half_a_cell_and_stable(lat: float, lon: float) -> None:
    coarse = coarse_location(Location(lat=lat, lon=lon))
    assert coarse is not None
    assert metres_between(coarse, Location(lat=lat, lon=lon)) <= 50 * math.sqrt(2) + 2
    assert coarse_location(coarse) == coarse


def test_larger_grid_makes_larger_cells() -> None:
    centre = coarse_location(HOME, grid_m=1000.0)
    assert centre is not None
    assert coarse_location(moved(centre, north_m=300.0, east_m=300.0), grid_m=1000.0) == centre
    assert coarse_location(moved(centre, north_m=300.0)) != coarse_location(centre)


def test_named_place_wins_and_drops_coordinates() -> None:
    located = Location(lat=HOME.lat, lon=HOME.lon, place="community center")
    assert coarse_location(located) == Location(place="community center")


def test_nothing_to_coarsen_gives_none() -> None:
    assert coarse_location(None) is None
    assert coarse_location(Location()) is None
    assert coarse_location(Location(lat=52.5)) is None


def test_non_positive_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="grid_m"):
        coarse_location(HOME, grid_m=0.0)


# --- location_for ------------------------------------------------------------------------------------

OWNER = Resident("o", "Drill Owner", contacts=(Contact("email", "owner@example.org"),))
LENDER = Resident("l", "Lender", contacts=(Contact("phone", "+49 30 1234567"),))
BORROWER = Resident("b", "Borrower")
NEIGHBOR = Resident("u", "Quiet Fox")
WATCHER = Resident("w", "Watcher")

LOAN = Relation("loan", "b", "drill", RelationKind.BORROWS, valid_from=NOW - DAY, valid_until=NOW + DAY)
RELATIONS = [
    Relation("own", "o", "drill", RelationKind.OWNS),
    Relation("lend", "l", "drill", RelationKind.LENDS, policy=LendPolicy()),
    LOAN,
    Relation("watch", "w", "drill", RelationKind.WATCHES),
]


def drill(visibility: Visibility, share: Share = Share.FULL) -> Thing:
    return Thing("drill", "Drill", visibility=visibility, watcher_share=share, location=HOME)


def test_owner_sees_exact_location_others_the_cell_or_nothing() -> None:
    shared = drill(Visibility.NEIGHBORS)
    coarse = coarse_location(HOME)
    assert location_for(OWNER, shared, RELATIONS, NOW) == HOME
    assert location_for(NEIGHBOR, shared, RELATIONS, NOW) == coarse
    assert location_for(BORROWER, shared, RELATIONS, NOW) == coarse
    assert location_for(None, shared, RELATIONS, NOW) is None
    assert location_for(None, drill(Visibility.PUBLIC), RELATIONS, NOW) == coarse


def test_private_thing_location_reaches_no_unrelated_resident() -> None:
    private = drill(Visibility.PRIVATE)
    assert location_for(NEIGHBOR, private, RELATIONS, NOW) is None
    assert location_for(WATCHER, private, RELATIONS, NOW) == coarse_location(HOME)


# --- contact_for -------------------------------------------------------------------------------------


def test_borrower_sees_owner_and_lender_contacts_only_while_the_loan_runs() -> None:
    private = drill(Visibility.PRIVATE)
    assert contact_for(BORROWER, OWNER, private, RELATIONS, NOW) == OWNER.contacts
    assert contact_for(BORROWER, LENDER, private, RELATIONS, NOW) == LENDER.contacts
    assert contact_for(BORROWER, OWNER, private, RELATIONS, NOW + DAY) == ()


def test_neighbors_watchers_and_kiosk_never_see_contacts() -> None:
    shared = drill(Visibility.PUBLIC)
    for viewer in (NEIGHBOR, WATCHER, None):
        assert contact_for(viewer, OWNER, shared, RELATIONS, NOW) == ()


def test_contact_of_a_resident_unrelated_to_the_thing_is_never_disclosed() -> None:
    stranger = Resident("s", "Stranger", contacts=(Contact("email", "s@example.org"),))
    assert contact_for(BORROWER, stranger, drill(Visibility.NEIGHBORS), RELATIONS, NOW) == ()


def test_erased_owner_has_no_contacts_to_show() -> None:
    erased = Resident("o", "Drill Owner", contacts=OWNER.contacts, erased=True)
    assert contact_for(BORROWER, erased, drill(Visibility.NEIGHBORS), RELATIONS, NOW) == ()


# --- public_pseudonym --------------------------------------------------------------------------------


def test_erased_residents_show_as_the_same_placeholder() -> None:
    assert public_pseudonym(NEIGHBOR) == "Quiet Fox"
    one = Resident("x", "Alice in Chains", real_name="Alice", erased=True)
    other = Resident("y", "Bob", erased=True)
    assert public_pseudonym(one) == public_pseudonym(other) == FORMER_NEIGHBOR == "former neighbor"


# --- derived_state and visible_values ------------------------------------------------------------------

BASEMENT = {"water_leak": True, "humidity": 81.5, "smoke": False, "temperature": 14.0, "door_open": True}


def test_derived_state_keeps_only_the_named_booleans() -> None:
    thing = Thing("flood", "Flood", derived_from=("water_leak", "humidity", "occupancy"))
    assert derived_state(thing, BASEMENT) == {"water_leak": True}


def test_derived_state_without_names_keeps_every_canonical_boolean() -> None:
    assert derived_state(Thing("flood", "Flood"), BASEMENT) == {"water_leak": True, "smoke": False}


def test_derived_state_never_passes_a_number_under_a_boolean_name() -> None:
    assert derived_state(Thing("flood", "Flood"), {"water_leak": 1.0}) == {}


def flood(visibility: Visibility, share: Share) -> Thing:
    return Thing("flood", "Flood", visibility=visibility, watcher_share=share, derived_from=("water_leak",))


FLOOD_RELATIONS = [
    Relation("own", "o", "flood", RelationKind.OWNS),
    Relation("watch", "w", "flood", RelationKind.WATCHES),
    Relation("loan", "b", "flood", RelationKind.BORROWS, valid_from=NOW - DAY, valid_until=NOW + DAY),
]


@pytest.mark.parametrize(
    ("viewer", "visibility", "share", "expected"),
    [
        (WATCHER, Visibility.PRIVATE, Share.FULL, BASEMENT),
        (WATCHER, Visibility.PRIVATE, Share.DERIVED, {"water_leak": True}),
        (WATCHER, Visibility.PRIVATE, Share.NONE, None),
        (OWNER, Visibility.PRIVATE, Share.NONE, BASEMENT),
        (BORROWER, Visibility.PRIVATE, Share.NONE, BASEMENT),
        (NEIGHBOR, Visibility.PRIVATE, Share.FULL, None),
        (NEIGHBOR, Visibility.NEIGHBORS, Share.DERIVED, {"water_leak": True}),
        (None, Visibility.NEIGHBORS, Share.FULL, None),
        (None, Visibility.PUBLIC, Share.DERIVED, {"water_leak": True}),
        (None, Visibility.PUBLIC, Share.FULL, BASEMENT),
    ],
)
def test_visible_values_are_full_derived_or_none_as_permitted(
    viewer: Resident | None, visibility: Visibility, share: Share, expected: dict[str, object] | None
) -> None:
    assert visible_values(viewer, flood(visibility, share), FLOOD_RELATIONS, NOW, BASEMENT) == expected


def test_visible_values_is_a_copy_the_caller_may_change() -> None:
    values = dict(BASEMENT)
    shown = visible_values(OWNER, flood(Visibility.PRIVATE, Share.FULL), FLOOD_RELATIONS, NOW, values)
    assert shown is not None
    shown["water_leak"] = False
    assert values["water_leak"] is True
